"""API routes of reports: every metric for a period, one metric's daily series, and a Grafana-shaped time series."""

# No `from __future__ import annotations`: ninja reads the annotations of the schemas at runtime.
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.http import HttpRequest
from django.utils import timezone
from ninja import Field, Query, Router, Schema

from patchday.accounts.guards import Guard
from patchday.core.errors import InvalidInput
from patchday.core.roles import Permission
from patchday.reports import metrics

router = Router(tags=["metrics"])

DEFAULT_DAYS = 30


class MetricOut(Schema):
    name: str
    label: str
    value: float | None = Field(description="None when the period has no data; detail.no_data says why")
    unit: str = Field(description="days, ratio (0..1), count or score")
    detail: dict[str, Any] = Field(description="breakdowns; see docs/metrics.md for each metric's keys")
    excluded: int = Field(description="inputs the metric could not use")
    excluded_reasons: dict[str, int]


class SummaryOut(Schema):
    start: date
    end: date
    group: str
    environment: str
    metrics: dict[str, MetricOut]


class PeriodQuery(Schema):
    start: date | None = Field(None, description="first day (UTC), included; default 29 days before end")
    end: date | None = Field(None, description="last day (UTC), included; default today")

    def period(self) -> tuple[date, date]:
        end = self.end or timezone.now().astimezone(UTC).date()
        start = self.start or end - timedelta(days=DEFAULT_DAYS - 1)
        metrics.check_period(start, end)
        return start, end


class SummaryQuery(PeriodQuery):
    group: str = Field("", max_length=100, description="only the hosts of this host group")
    environment: str = Field("", max_length=64, description="only the hosts of this environment")


class PointOut(Schema):
    date: date
    value: float | None = Field(description="the day's snapshot value; None when no snapshot was taken that day")


class SeriesOut(Schema):
    name: str
    label: str
    unit: str
    start: date
    end: date
    points: list[PointOut]


class GrafanaQuery(Schema):
    target: list[str] = Field(description="metric names; repeat the parameter for several")
    from_: str = Field("", alias="from", max_length=40, description="a day, an ISO timestamp or epoch milliseconds")
    to: str = Field("", max_length=40, description="a day, an ISO timestamp or epoch milliseconds; default today")


class GrafanaSeriesOut(Schema):
    target: str
    datapoints: list[list[float | None]] = Field(description="[value, epoch milliseconds (the day's 00:00 UTC)]")


@router.get("/metrics", response=SummaryOut, auth=Guard(Permission.VIEW), summary="Every metric for a period")
def summary(request: HttpRequest, query: Query[SummaryQuery]) -> dict[str, Any]:
    start, end = query.period()
    result = metrics.summary(start, end, group=query.group, environment=query.environment)
    return {
        "start": start,
        "end": end,
        "group": query.group,
        "environment": query.environment,
        "metrics": {name: metric.to_data() for name, metric in result.items()},
    }


def _instant(text: str, field: str) -> date:
    """A day from "2026-03-01", an ISO timestamp, or epoch milliseconds (Grafana's ${__from} and ${__to})."""
    value = text.strip()
    try:
        if value.isdigit():
            return datetime.fromtimestamp(int(value) / 1000, UTC).date()
        if len(value) == 10:
            return date.fromisoformat(value)
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC).date()
    except (ValueError, OverflowError, OSError) as exc:
        raise InvalidInput(f"{field} {text!r} is not a date, an ISO timestamp or epoch milliseconds", field) from exc


@router.get(
    "/metrics/grafana",
    response=list[GrafanaSeriesOut],
    auth=Guard(Permission.VIEW),
    summary="Daily series in the Grafana JSON shape",
)
def grafana(request: HttpRequest, query: Query[GrafanaQuery]) -> list[dict[str, Any]]:
    target, from_, to = query.target, query.from_, query.to
    end = _instant(to, "to") if to else timezone.now().astimezone(UTC).date()
    start = _instant(from_, "from") if from_ else end - timedelta(days=DEFAULT_DAYS - 1)
    if len(target) > len(metrics.METRIC_NAMES):
        raise InvalidInput(f"at most {len(metrics.METRIC_NAMES)} targets per request", field="target")
    answer = []
    for name in target:
        points = metrics.series(name, start, end)
        epoch = [int(datetime.combine(day, datetime.min.time(), UTC).timestamp() * 1000) for day, _ in points]
        answer.append(
            {"target": name, "datapoints": [[value, ms] for (_, value), ms in zip(points, epoch, strict=True)]}
        )
    return answer


@router.get("/metrics/{name}/series", response=SeriesOut, auth=Guard(Permission.VIEW), summary="One metric, day by day")
def series(request: HttpRequest, name: str, query: Query[PeriodQuery]) -> dict[str, Any]:
    metrics.check_name(name)
    start, end = query.period()
    label, unit = metrics.LABELS[name]
    points = [{"date": day, "value": value} for day, value in metrics.series(name, start, end)]
    return {"name": name, "label": label, "unit": unit, "start": start, "end": end, "points": points}
