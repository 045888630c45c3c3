"""Scheduled reports: made daily, weekly or monthly and sent by e-mail (the file attached) and/or to a webhook
channel (a signed JSON summary, never the file). Every change and every run is audited.

A run reports on the period that ended before it: daily, the previous day; weekly, the seven days before;
monthly, the previous calendar month. Schedules are due at `hour` (UTC): daily every day, weekly on
Mondays, monthly on the 1st. The hourly `reports.schedules` task runs those due.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import smtplib
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from patchday import __version__
from patchday.audit import services as audit
from patchday.compliance.models import Frequency, ReportFormat, ReportSchedule
from patchday.core.audit import Actor
from patchday.core.errors import InvalidInput, NotFound, PatchdayError
from patchday.reports import compliance, evidence
from patchday.settings import load_settings

logger = logging.getLogger(__name__)

METRICS_SCOPE: Final = "metrics"
SCOPES: Final = (METRICS_SCOPE, *compliance.FRAMEWORKS)
MAX_ADDRESSES: Final = 50
EVENT: Final = "report.scheduled"


@dataclass(frozen=True, slots=True)
class Report:
    """One made report: the attachment and the short summary a webhook receives."""

    filename: str
    content_type: str
    content: bytes
    summary: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Outcome:
    delivered: bool
    error: str = ""


# -- when -------------------------------------------------------------------------------------------------


def next_run(frequency: str, hour: int, after: datetime) -> datetime:
    """The first due moment strictly after `after`: daily at `hour` UTC, weekly Mondays, monthly on the 1st."""
    day = after.astimezone(UTC).date()
    for _ in range(62):
        candidate = datetime.combine(day, time(hour), tzinfo=UTC)
        due_day = (
            frequency == Frequency.DAILY
            or (frequency == Frequency.WEEKLY and day.weekday() == 0)
            or (frequency == Frequency.MONTHLY and day.day == 1)
        )
        if due_day and candidate > after:
            return candidate
        day += timedelta(days=1)
    raise InvalidInput(f"unknown frequency {frequency!r}", field="frequency")


def period_for(frequency: str, run_at: datetime) -> tuple[date, date]:
    """The period a run at `run_at` reports on (whole UTC days, both included)."""
    today = run_at.astimezone(UTC).date()
    if frequency == Frequency.DAILY:
        return today - timedelta(days=1), today - timedelta(days=1)
    if frequency == Frequency.WEEKLY:
        return today - timedelta(days=7), today - timedelta(days=1)
    last = today.replace(day=1) - timedelta(days=1)
    return last.replace(day=1), last


# -- managing schedules -----------------------------------------------------------------------------------


def _choice(value: str, choices: Iterable[str], field: str) -> str:
    cleaned = value.strip().lower()
    allowed = list(choices)
    if cleaned not in allowed:
        raise InvalidInput(f"unknown {field} {value!r}; choose one of {', '.join(allowed)}", field=field)
    return cleaned


def _addresses(addresses: Iterable[str]) -> list[str]:
    cleaned = list(dict.fromkeys(a.strip() for a in addresses if a.strip()))
    if len(cleaned) > MAX_ADDRESSES:
        raise InvalidInput(f"at most {MAX_ADDRESSES} addresses per schedule", field="addresses")
    for address in cleaned:
        try:
            validate_email(address)
        except ValidationError:
            raise InvalidInput(f"{address!r} is not an e-mail address", field="addresses") from None
    return cleaned


def add_schedule(
    actor: Actor,
    created_by: str,
    name: str,
    frequency: str,
    scope: str,
    *,
    format: str = ReportFormat.PDF,
    addresses: Iterable[str] = (),
    webhook_id: int | None = None,
    group: str = "",
    environment: str = "",
    hour: int = 6,
    now: datetime | None = None,
) -> ReportSchedule:
    """Add a schedule; InvalidInput naming the field for an unknown frequency, scope or format, a malformed
    address, no recipient at all, or an hour outside 0-23; NotFound for an unknown webhook or group."""
    from patchday.notifications import channels
    from patchday.notifications.models import ChannelKind

    now = now or timezone.now()
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidInput("a schedule needs a name of 1 to 100 characters", field="name")
    frequency = _choice(frequency, Frequency.values, "frequency")
    scope = _choice(scope, SCOPES, "scope")
    format = _choice(format, ReportFormat.values, "format")
    if not 0 <= hour <= 23:
        raise InvalidInput("hour is the UTC hour of the day, 0 to 23", field="hour")
    cleaned = _addresses(addresses)
    webhook = channels.get_channel(ChannelKind.WEBHOOK, webhook_id) if webhook_id is not None else None
    if not cleaned and webhook is None:
        raise InvalidInput("name at least one recipient: e-mail addresses or a webhook", field="addresses")
    if group:
        from patchday.inventory.models import HostGroup

        if not HostGroup.objects.filter(name=group).exists():
            raise NotFound(f"no host group named {group!r}")
    with transaction.atomic():
        schedule = ReportSchedule.objects.create(
            name=name, frequency=frequency, hour=hour, format=format, scope=scope, group=group.strip(),
            environment=environment.strip(), addresses=cleaned, webhook=webhook, created_by=created_by,
            created_at=now, next_run_at=next_run(frequency, hour, now),
        )  # fmt: skip
        audit.record(actor, "report.schedule_add", "report_schedule", schedule.pk, describe(schedule))
    return schedule


def describe(schedule: ReportSchedule) -> dict[str, object]:
    return {
        "name": schedule.name,
        "frequency": schedule.frequency,
        "hour": schedule.hour,
        "format": schedule.format,
        "scope": schedule.scope,
        "group": schedule.group,
        "environment": schedule.environment,
        "addresses": list(schedule.addresses),
        "webhook": schedule.webhook_id,
    }


def schedules() -> QuerySet[ReportSchedule]:
    return ReportSchedule.objects.filter(deleted_at=None).select_related("webhook")


def remove_schedule(actor: Actor, schedule_id: int) -> ReportSchedule:
    """Remove a schedule: it runs no more; its row stays for the audit trail."""
    with transaction.atomic():
        schedule = schedules().select_for_update(of=("self",)).filter(pk=schedule_id).first()
        if schedule is None:
            raise NotFound(f"no report schedule with id {schedule_id}")
        schedule.deleted_at = timezone.now()
        schedule.save(update_fields=["deleted_at"])
        audit.record(actor, "report.schedule_remove", "report_schedule", schedule.pk, {"name": schedule.name})
    return schedule


# -- making a report --------------------------------------------------------------------------------------


def make_report(schedule: ReportSchedule, start: date, end: date, now: datetime) -> Report:
    """The schedule's report for [start, end]: a summary PDF or a CSV of controls and metrics."""
    period = evidence.Period(start, end)
    measured = evidence.measures_for(period, schedule.group, schedule.environment)
    chosen = compliance.FRAMEWORKS.get(schedule.scope)
    assessments = compliance.assess(chosen, measured) if chosen else []
    title = f"{chosen.name} compliance report" if chosen else "patchday metrics report"
    stem = f"patchday-{schedule.scope}-{start.isoformat()}-{end.isoformat()}"
    narrowed = ", ".join(
        part
        for part in (
            schedule.group and f"group {schedule.group}",
            schedule.environment and f"env. {schedule.environment}",
        )
        if part
    )
    summary: dict[str, Any] = {
        "schedule": {"id": schedule.pk, "name": schedule.name, "frequency": schedule.frequency},
        "scope": schedule.scope,
        "hosts": narrowed or "every host",
        "period": {"from": start.isoformat(), "to": end.isoformat()},
        "generated_at": now.isoformat(),
        "controls": [{"control": a.control.id, "status": a.status.value} for a in assessments],
        "metrics": {name: {"value": m.value, "unit": m.unit, "excluded": m.excluded} for name, m in measured.items()},
    }
    if schedule.format == ReportFormat.CSV:
        return Report(f"{stem}.csv", "text/csv", _report_csv(assessments, measured.values()), summary)
    document = evidence.Document(
        title=title,
        cover=[
            ("Period", f"{period} (UTC, both days included)"),
            ("Hosts", narrowed or "every host"),
            ("Generated at", now.strftime("%Y-%m-%d %H:%M:%S UTC")),
            ("Schedule", f"{schedule.name} ({schedule.frequency}), by {schedule.created_by}"),
        ],
        assessments=assessments,
        metrics=list(measured.values()),
        charts=evidence.chart_series(period),
    )
    return Report(f"{stem}.pdf", "application/pdf", evidence.render_pdf(document), summary)


def _report_csv(assessments: Iterable[compliance.Assessment], metrics: Iterable[Any]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["kind", "id", "title", "status_or_value", "unit", "excluded", "detail"])
    rows: list[tuple[object, ...]] = [
        ("control", a.control.id, a.control.title, a.status.value, "", "", "; ".join(a.measured)) for a in assessments
    ]
    rows += [
        ("metric", m.name, m.label, m.value, m.unit, evidence.exclusions(m), json.dumps(m.detail, default=str))
        for m in metrics
    ]
    writer.writerows([evidence.cell(value) for value in row] for row in rows)
    return buffer.getvalue().encode()


# -- delivering it ----------------------------------------------------------------------------------------


def send_email(schedule: ReportSchedule, report: Report) -> Outcome:
    """Mail the report, attached, to the schedule's addresses over the PATCHDAY_SMTP_* server."""
    from django.core.mail import EmailMessage

    from patchday.notifications.sending import smtp_connection

    settings = load_settings()
    if not settings.smtp_host:
        return Outcome(False, "PATCHDAY_SMTP_HOST is not set; e-mail cannot be sent")
    period = report.summary["period"]
    subject = f"[patchday] {schedule.name}: {schedule.scope} report {period['from']} to {period['to']}"
    lines = [subject, ""]
    lines += [f"{c['control']}: {c['status']}" for c in report.summary["controls"]]
    lines += ["", f"The report is attached ({report.filename})."]
    message = EmailMessage(
        subject, "\n".join(lines) + "\n", settings.smtp_from, list(schedule.addresses),
        connection=smtp_connection(), headers={"X-Patchday-Event": EVENT},
    )  # fmt: skip
    message.attach(report.filename, report.content, report.content_type)
    try:
        message.send()
    except smtplib.SMTPResponseException as exc:
        return Outcome(False, f"SMTP {exc.smtp_code}: {exc.smtp_error!r}"[:500])
    except (smtplib.SMTPException, OSError) as exc:
        return Outcome(False, f"{type(exc).__name__}: {exc}"[:500])
    return Outcome(True)


def post_webhook(schedule: ReportSchedule, report: Report, now: datetime) -> Outcome:
    """POST the report's summary (never the file) to the schedule's webhook, signed like every notification."""
    import httpx

    from patchday.notifications import sealing, targets
    from patchday.notifications.sending import TIMEOUT, signature

    channel = schedule.webhook
    if channel is None or channel.deleted_at is not None:
        return Outcome(False, "the schedule's webhook was deleted")
    settings = load_settings()
    try:
        url = targets.check_url(channel.url, allow_private=settings.webhook_allow_private)
        secret = sealing.unseal(channel.secret_sealed)
    except PatchdayError as exc:
        return Outcome(False, str(exc))
    link = f"{settings.public_url.rstrip('/')}/reports/evidence/" if settings.public_url else None
    payload = {"event": EVENT, "occurred_at": now.isoformat(), "report": {**report.summary, "evidence_page": link}}
    body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    timestamp = str(int(now.timestamp()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"patchday/{__version__}",
        "X-Patchday-Event": EVENT,
        "X-Patchday-Delivery": str(uuid.uuid4()),
        "X-Patchday-Timestamp": timestamp,
        "X-Patchday-Signature": signature(secret, timestamp, body),
    }
    try:
        with httpx.Client(timeout=TIMEOUT, follow_redirects=False, trust_env=False) as client:
            response = client.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return Outcome(False, f"{type(exc).__name__}: {exc}"[:500])
    if 200 <= response.status_code < 300:
        return Outcome(True)
    return Outcome(False, f"HTTP {response.status_code} {response.reason_phrase}"[:500])


def run(actor: Actor, schedule: ReportSchedule, now: datetime) -> Outcome:
    """Make the schedule's report for the period before `now` and send it to every recipient; audited."""
    start, end = period_for(schedule.frequency, now)
    outcomes: dict[str, Outcome] = {}
    try:
        report = make_report(schedule, start, end, now)
    except PatchdayError as exc:
        outcomes["report"] = Outcome(False, str(exc)[:500])
    else:
        if schedule.addresses:
            outcomes["email"] = send_email(schedule, report)
        if schedule.webhook_id is not None:
            outcomes["webhook"] = post_webhook(schedule, report, now)
    failed = {k: o.error for k, o in outcomes.items() if not o.delivered}
    outcome = Outcome(not failed, "; ".join(f"{k}: {e}" for k, e in failed.items())[:500])
    schedule.last_run_at = now
    schedule.last_outcome = "delivered" if outcome.delivered else "failed"
    schedule.last_error = outcome.error
    with transaction.atomic():
        schedule.save(update_fields=["last_run_at", "last_outcome", "last_error"])
        changes: Mapping[str, object] = {
            "period": f"{start.isoformat()}/{end.isoformat()}",
            "outcome": schedule.last_outcome,
            "sent": sorted(k for k, o in outcomes.items() if o.delivered),
            "error": outcome.error,
        }
        audit.record(actor, "report.schedule_run", "report_schedule", schedule.pk, changes)
    if failed:
        logger.warning("report schedule %s (%s) failed: %s", schedule.pk, schedule.name, outcome.error)
    return outcome


def run_due(actor: Actor, now: datetime | None = None) -> dict[str, int]:
    """Run every schedule whose time has come; returns counts of delivered and failed runs.

    Each is claimed by moving its next_run_at with a conditional UPDATE first, so two workers never run
    the same one, and a schedule missed for a while (a stopped worker) runs once, not once per missed slot.
    """
    now = now or timezone.now()
    counts = {"delivered": 0, "failed": 0}
    due = list(schedules().filter(next_run_at__lte=now).order_by("next_run_at", "pk"))
    for schedule in due:
        following = next_run(schedule.frequency, schedule.hour, now)
        claimed = ReportSchedule.objects.filter(pk=schedule.pk, next_run_at=schedule.next_run_at).update(
            next_run_at=following
        )
        if not claimed:
            continue
        schedule.next_run_at = following
        outcome = run(actor, schedule, now)
        counts["delivered" if outcome.delivered else "failed"] += 1
    return counts
