"""Dashboard pages of reports: the executive overview (KPI tiles with trends, charts, top risks) and the
operations page (what needs doing today). Both only read: metrics come from patchday.reports.metrics."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

from django import forms
from django.db.models import Count, F, Max, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_GET

from patchday.accounts.guards import page_guard
from patchday.core import windows as core_windows
from patchday.core.roles import Permission
from patchday.core.rollout import JobState, PlanState, RolloutState
from patchday.inventory import queries as inventory
from patchday.inventory.models import Host
from patchday.reports import metrics, snapshots
from patchday.reports.models import MetricSnapshot
from patchday.reports.snapshots import FLEET
from patchday.rollouts import windows
from patchday.rollouts.models import Job, MaintenanceWindow, Plan, Rollout

PERIODS: Final = ((30, "Last 30 days"), (90, "Last 90 days"), (365, "Last 365 days"))
DEFAULT_PERIOD: Final = 30
TREND_DAYS: Final = 30  # each tile compares its value with the one this many days before
TOP: Final = 10
SHOWN: Final = 10  # rows per list on the operations page; each list links to its full page
HORIZON: Final = timedelta(hours=24)  # the operations page shows windows opening within this
JOB_FAILED: Final = (JobState.FAILED, JobState.UNKNOWN, JobState.ROLLBACK_FAILED)
ACTIVE_ROLLOUTS: Final = (RolloutState.RUNNING, RolloutState.PAUSED, RolloutState.HALTED)
EXCLUSION_LIMIT: Final = 3  # reasons named in a tile's note; the rest are summed up
ROLLOUT_TONES: Final = ("rollout-1", "rollout-2", "rollout-3", "rollout-4")
MINUS: Final = "\u2212"  # the typographic minus sign: as wide as the plus sign, read as "minus"
DECISION_TONES: Final = {"Act": "act", "Attend": "attend", "Track*": "track-star", "Track": "track"}


# -- presenting a metric ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TileSpec:
    """How one KPI tile shows a metric: its title, which direction is good news, and the list behind it."""

    metric: str
    title: str
    better: str  # "higher" or "lower": which way the trend arrow is good news
    url_name: str
    query: Mapping[str, str] = field(default_factory=dict)
    link_label: str = ""


TILES: Final = (
    TileSpec("risk_open", "Risk now", "lower", "findings", {"sort": "-priority"}, "open findings, most urgent first"),
    TileSpec("open_findings", "Open findings", "lower", "findings", {}, "all open findings"),
    TileSpec("kev_exposure", "KEV-exposed hosts", "lower", "findings", {"kev": "yes"}, "open findings in KEV"),
    TileSpec("sla_compliance", "SLA compliance", "higher", "findings", {"overdue": "yes"}, "overdue findings"),
    TileSpec("coverage_hosts", "Patch coverage", "higher", "hosts", {"security": "yes"}, "hosts with updates pending"),
    TileSpec("time_to_patch_fix", "Median time to patch", "lower", "findings", {"status": "fixed"}, "fixed findings"),
    TileSpec("failure_rate", "Patch failure rate", "lower", "rollouts", {"state": "halted"}, "halted rollouts"),
    TileSpec("mttd", "Mean time to detect", "lower", "feeds", {}, "feed runs"),
)
# What a tile's value says, in words (the metric's own label is the precise definition, in the tooltip).
NOTES: Final[Mapping[str, str]] = {
    "risk_open": "sum of open findings' priority scores",
    "open_findings": "",
    "kev_exposure": "hosts with an open finding in CISA's KEV",
    "sla_compliance": "fixed by their due date",
    "coverage_hosts": "hosts with no open Act or Attend finding",
    "time_to_patch_fix": "from fix available to verified fix",
    "failure_rate": "failed host jobs of those attempted",
    "mttd": "from publication to first detection",
}


def formatted(value: float | None, unit: str) -> str:
    """A metric value as the page shows it: ratios in percent, days with one decimal, counts and scores whole."""
    if value is None:
        return "—"
    if unit == "ratio":
        return f"{value * 100:.1f}%"
    if unit == "days":
        return f"{value:.1f}"
    return f"{value:,.0f}"


def _link(url_name: str, query: Mapping[str, str]) -> str:
    url = reverse(url_name)
    return f"{url}?{urlencode(dict(query))}" if query else url


@dataclass(frozen=True, slots=True)
class Trend:
    """A tile's change against `days` days before: arrow, wording and whether it is good news."""

    arrow: str  # "↑", "↓", "→" or ""
    tone: str  # "good", "bad", "flat" or "none"
    text: str  # "+3.0 pts", "\u221212" (a minus sign), "no change"
    spoken: str  # for screen readers: "up 3.0 pts since 30 days before, better"


def trend(now: float | None, before: float | None, unit: str, better: str, days: int = TREND_DAYS) -> Trend:
    """Up or down against `before`; good news when it moves the `better` way ("higher" or "lower")."""
    if now is None or before is None:
        return Trend("", "none", "no trend", f"no value {days} days before to compare with")
    delta = now - before
    shown = delta * 100 if unit == "ratio" else delta
    suffix = " pts" if unit == "ratio" else (" days" if unit == "days" else "")
    precision = 0 if unit in ("count", "score") else 1
    if round(abs(shown), precision) == 0:
        return Trend("→", "flat", "no change", f"unchanged since {days} days before")
    up = delta > 0
    good = up == (better == "higher")
    amount = f"{abs(shown):,.{precision}f}{suffix}"
    return Trend(
        "↑" if up else "↓",
        "good" if good else "bad",
        f"{'+' if up else MINUS}{amount}",
        f"{'up' if up else 'down'} {amount} since {days} days before, {'better' if good else 'worse'}",
    )


def excluded_note(excluded: int, reasons: Mapping[str, int]) -> str:
    """What a metric could not count, and why: "12 excluded: no fix available since 10, fix not verified 2"."""
    if not excluded:
        return ""
    named = sorted(reasons.items(), key=lambda item: (-item[1], item[0]))
    parts = [f"{reason.replace('_', ' ')} {n}" for reason, n in named[:EXCLUSION_LIMIT]]
    rest = sum(n for _, n in named[EXCLUSION_LIMIT:])
    if rest:
        parts.append(f"other {rest}")
    return f"{excluded} excluded" + (f": {', '.join(parts)}" if parts else "")


@dataclass(frozen=True, slots=True)
class Tile:
    spec: TileSpec
    label: str  # the metric's own label
    value: str
    unit: str  # "days" after a number of days, else ""
    note: str
    no_data: str  # why there is no value, when there is none
    trend: Trend
    href: str
    excluded_note: str


def tile(spec: TileSpec, current: metrics.Metric | None, before: metrics.Metric | None) -> Tile:
    label, unit = metrics.LABELS[spec.metric]
    value = current.value if current is not None else None
    return Tile(
        spec=spec,
        label=label,
        value=formatted(value, unit),
        unit="days" if unit == "days" and value is not None else "",
        note=NOTES[spec.metric],
        no_data=str(current.detail.get("no_data", "")) if current is not None and value is None else "",
        trend=trend(value, before.value if before is not None else None, unit, spec.better),
        href=_link(spec.url_name, spec.query),
        excluded_note=excluded_note(current.excluded, current.excluded_reasons) if current is not None else "",
    )


# -- the period form --------------------------------------------------------------------------------------


class PeriodForm(forms.Form):
    days = forms.TypedChoiceField(
        required=False, choices=[(str(d), label) for d, label in PERIODS], coerce=int, label="Period"
    )
    as_of = forms.DateField(required=False, input_formats=["%Y-%m-%d"], label="As of")

    def period(self, today: date) -> tuple[int, date, list[str]]:
        """(days, as-of day, problems): a bad or future value falls back to the default, and says so."""
        self.is_valid()
        problems = [
            f"{self.fields[name].label or name}: {' '.join(str(e) for e in errors)}"
            for name, errors in self.errors.items()
        ]
        days = self.cleaned_data.get("days") or DEFAULT_PERIOD
        as_of = self.cleaned_data.get("as_of") or today
        if as_of > today:
            problems.append(f"As of: {as_of.isoformat()} is in the future, so the page shows today.")
            as_of = today
        return days, as_of, problems


# -- charts --------------------------------------------------------------------------------------------------


def _percent(value: float | None) -> float | None:
    return None if value is None else round(value * 100, 1)


def line_chart(
    labels: Sequence[str], datasets: Sequence[Mapping[str, Any]], unit: str = "", max_value: float | None = None
) -> dict[str, Any]:
    """The data charts.js draws (see its header): never a Chart.js configuration, never HTML."""
    return {"kind": "line", "labels": list(labels), "datasets": list(datasets), "unit": unit, "max": max_value}


def burndown_chart(points: Sequence[Mapping[str, Any]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The risk line with, as bars, the risk each rollout removed that day; and the same as table rows."""
    labels = [p["date"].isoformat() for p in points]
    rollouts = sorted({int(r) for p in points for r in p["fixed_by_rollout"]})
    datasets: list[dict[str, Any]] = [
        {"label": "Open risk", "data": [p["risk"] for p in points], "tone": "bad", "fill": True}
    ]
    for index, rollout in enumerate(rollouts):
        datasets.append(
            {
                "label": f"Removed by rollout #{rollout}",
                "data": [p["fixed_by_rollout"].get(rollout) for p in points],
                "tone": ROLLOUT_TONES[index % len(ROLLOUT_TONES)],
                "kind": "bar",
            }
        )
    rows = [
        {"date": p["date"], "risk": p["risk"], "fixed": sorted((int(r), s) for r, s in p["fixed_by_rollout"].items())}
        for p in points
    ]
    return line_chart(labels, datasets), rows


def priority_chart(counts: Mapping[str, int]) -> dict[str, Any]:
    labels = [decision or "not prioritised" for decision in counts]
    return {
        "kind": "bar",
        "labels": labels,
        "datasets": [
            {
                "label": "Open findings",
                "data": list(counts.values()),
                "tone": "primary",
                "tones": [DECISION_TONES.get(decision, "muted") for decision in counts],
            }
        ],
        "unit": "",
        "max": None,
    }


def change_sentence(what: str, points: Sequence[tuple[date, float | None]], unit: str) -> str:
    """A chart's text alternative: where its line starts and ends, over how many snapshots."""
    known = [(day, value) for day, value in points if value is not None]
    if not known:
        return f"No snapshot of {what} in this period."
    (first_day, first), (last_day, last) = known[0], known[-1]
    suffix = " days" if unit == "days" else ""
    what = what[0].upper() + what[1:]
    if first_day == last_day:
        return f"{what} was {formatted(last, unit)}{suffix} on {last_day.isoformat()}, the one value in this period."
    return (
        f"{what} went from {formatted(first, unit)}{suffix} on {first_day.isoformat()} to {formatted(last, unit)}"
        f"{suffix} on {last_day.isoformat()} ({len(known)} days with a value)."
    )


def priority_sentence(counts: Mapping[str, int]) -> str:
    total = sum(counts.values())
    if not total:
        return "No open finding."
    parts = [f"{n} {decision or 'not prioritised'}" for decision, n in counts.items() if n]
    return f"{total} open finding{pluralize(total)}: {', '.join(parts)}."


# -- the executive overview ---------------------------------------------------------------------------------


def snapshot_days(start: date, end: date) -> dict[date, datetime]:
    """Days of [start, end] with a fleet-wide snapshot, and when each was (last) taken: one query."""
    rows = MetricSnapshot.objects.filter(scope=FLEET, day__gte=start, day__lte=end).values_list("day")
    return dict(rows.annotate(taken=Max("taken_at")).order_by())


def _overview_context(request: HttpRequest) -> dict[str, Any]:
    """Tiles from the snapshot of the as-of day (or, today before its first snapshot, from summary() live),
    trends against the snapshot TREND_DAYS before, charts from the period's snapshots."""
    today = timezone.now().astimezone(UTC).date()  # metrics count whole UTC days
    form = PeriodForm(request.GET)
    days, as_of, problems = form.period(today)
    start = as_of - timedelta(days=days - 1)
    before_day = as_of - timedelta(days=TREND_DAYS)
    taken = snapshot_days(min(start, before_day), as_of)
    live = as_of == today and as_of not in taken
    if live:
        current: Mapping[str, metrics.Metric] | None = metrics.summary(
            as_of - timedelta(days=metrics.SNAPSHOT_WINDOW - 1), as_of
        )
    else:
        current = snapshots.snapshot(as_of) if as_of in taken else None
    before = snapshots.snapshot(before_day) if before_day in taken else None
    tiles = [tile(spec, current.get(spec.metric) if current else None, before.get(spec.metric) if before else None)
             for spec in TILES]  # fmt: skip

    day_list = [start + timedelta(days=n) for n in range(days)]
    sla = dict(metrics.series("sla_compliance", start, as_of))
    kev = dict(metrics.series("kev_exposure", start, as_of))
    if live and current is not None:  # the charts end where the tiles are
        sla[as_of], kev[as_of] = current["sla_compliance"].value, current["kev_exposure"].value
    sla_points = [(day, sla.get(day)) for day in day_list]
    kev_points = [(day, kev.get(day)) for day in day_list]
    burndown, burndown_rows = burndown_chart(metrics.burndown(start, as_of))
    by_priority: dict[str, int] = dict(current["open_findings"].detail.get("by_priority", {})) if current else {}
    if live and not by_priority:
        by_priority = metrics.open_by_priority()
    shown_priorities = {d: n for d, n in by_priority.items() if n or d}  # "not prioritised" only when there are some
    nearest = max((day for day in taken if day < as_of), default=None)
    return {
        "form": form,
        "days": days,
        "period_options": [(d, label, d == days) for d, label in PERIODS],
        "as_of": as_of,
        "today": today,
        "start": start,
        "trend_days": TREND_DAYS,
        "window_days": metrics.SNAPSHOT_WINDOW,
        "historic": as_of < today,
        "live": live,
        "taken_at": taken.get(as_of),
        "problems": problems,
        "has_figures": current is not None,
        "snapshot_count": sum(1 for day in taken if day >= start),
        "nearest_snapshot": nearest,
        "tiles": tiles,
        "overdue": formatted(current["overdue"].value, "count") if current else "—",
        "due_soon": formatted(current["due_soon"].value, "count") if current else "—",
        "priorities": [
            (d or "not prioritised", n, _link("findings", {"decision": d} if d else {}), DECISION_TONES.get(d, ""))
            for d, n in shown_priorities.items()
        ],
        "priority_chart": priority_chart(shown_priorities),
        "priority_summary": priority_sentence(shown_priorities),
        "sla_chart": line_chart(
            [day.isoformat() for day in day_list],
            [{"label": "SLA compliance", "data": [_percent(v) for _, v in sla_points], "tone": "ok", "fill": True}],
            unit="%",
            max_value=100,
        ),
        "sla_rows": [(day, formatted(v, "ratio")) for day, v in sla_points if v is not None],
        "sla_summary": change_sentence("SLA compliance", sla_points, "ratio"),
        "burndown_chart": burndown,
        "burndown_rows": [row for row in burndown_rows if row["risk"] is not None or row["fixed"]],
        "risk_summary": change_sentence("open risk", [(r["date"], r["risk"]) for r in burndown_rows], "score"),
        "kev_chart": line_chart(
            [day.isoformat() for day in day_list],
            [{"label": "KEV-exposed hosts", "data": [v for _, v in kev_points], "tone": "bad", "fill": True}],
        ),
        "kev_rows": [(day, formatted(v, "count")) for day, v in kev_points if v is not None],
        "kev_summary": change_sentence("the number of KEV-exposed hosts", kev_points, "count"),
        "top_hosts": metrics.top_risky_hosts(TOP),
        "top_vulnerabilities": metrics.top_vulnerabilities(TOP),
    }


@page_guard(Permission.VIEW)
@require_GET
def overview_page(request: HttpRequest) -> HttpResponse:
    """The executive overview: KPI tiles with trends, risk burndown, SLA compliance, priorities, top risks."""
    context = _overview_context(request)
    if request.headers.get("HX-Request"):
        return render(request, "reports/_overview.html", context)
    return render(request, "reports/overview.html", context)


# -- operations ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WindowOpening:
    window: MaintenanceWindow
    start: datetime
    end: datetime
    open_now: bool


def openings_within(now: datetime, horizon: timedelta = HORIZON) -> list[WindowOpening]:
    """Maintenance windows open now or opening within `horizon`, soonest first (freezes cut out)."""
    freezes = windows.freezes_after(now)
    found = []
    for window in MaintenanceWindow.objects.order_by("name"):
        opening = core_windows.next_opening(windows.to_core(window), now, freezes, horizon=horizon)
        if opening is not None:
            found.append(WindowOpening(window, opening.start, opening.end, opening.start <= now))
    return sorted(found, key=lambda o: (o.start, o.window.name))


@dataclass(frozen=True, slots=True)
class RunningRollout:
    rollout: Rollout
    done: int
    failed: int
    total: int


DONE_JOBS: Final = (JobState.VERIFIED, JobState.SUCCEEDED, JobState.CANCELLED, JobState.ROLLED_BACK)


def running_rollouts(limit: int = SHOWN) -> tuple[int, list[RunningRollout]]:
    """(how many rollouts are not over, the newest `limit` of them with their job counts): two queries."""
    rows = Rollout.objects.select_related("plan").filter(state__in=ACTIVE_ROLLOUTS).order_by("-started_at", "-id")
    total = rows.count()
    shown = list(rows[:limit])
    counts: dict[int, dict[str, int]] = {r.pk: {} for r in shown}
    by_state = Job.objects.filter(rollout__in=shown).values_list("rollout_id", "state").annotate(n=Count("id"))
    for rollout_id, state, n in by_state:
        counts[rollout_id][state] = n
    return total, [
        RunningRollout(
            r,
            done=sum(n for s, n in counts[r.pk].items() if s in DONE_JOBS),
            failed=sum(n for s, n in counts[r.pk].items() if s in JOB_FAILED),
            total=sum(counts[r.pk].values()),
        )
        for r in shown
    ]


def _first(rows: Any, limit: int = SHOWN) -> tuple[int, list[Any]]:
    return rows.count(), list(rows[:limit])


def _operations_context(now: datetime) -> dict[str, Any]:
    failures = (
        Job.objects.filter(state__in=JOB_FAILED)
        .exclude(rollout__state=RolloutState.ABORTED)  # an aborted rollout was stopped on purpose
        .select_related("host", "ring", "rollout__plan")
        .order_by("-finished_at", "-id")
    )
    approvals = Plan.objects.filter(state=PlanState.PENDING_APPROVAL).order_by("submitted_at", "id")
    rollouts_total, rollouts = running_rollouts()
    host_lists = [
        (state, label, _first(_by_freshness(state, now)))
        for state, label in (("stale", "Stale hosts"), ("lost", "Lost hosts"))
    ]
    return {
        "now": now,
        "horizon_hours": int(HORIZON.total_seconds() // 3600),
        "openings": openings_within(now),
        "rollouts_total": rollouts_total,
        "rollouts": rollouts,
        "failures": _first(failures),
        "approvals": _first(approvals),
        "host_lists": host_lists,
    }


def _by_freshness(state: str, now: datetime) -> QuerySet[Host]:
    """Hosts of one freshness, the longest silent first (the tags the host list prefetches are not shown)."""
    return (
        inventory.hosts(inventory.HostFilter(freshness=state), now)
        .prefetch_related(None)
        .order_by(F("last_seen_at").asc(nulls_first=True), "name")
    )


@page_guard(Permission.VIEW)
@require_GET
def operations_page(request: HttpRequest) -> HttpResponse:
    """What needs doing today: windows opening, rollouts running, failed jobs, plans to decide, stale hosts."""
    return render(request, "reports/operations.html", _operations_context(timezone.now()))
