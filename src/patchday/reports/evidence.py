"""Evidence packs: one zip per framework and period that an auditor can check on their own.

Layout (docs/reports.md): summary.pdf (cover, each control's status and evidence, key metrics with their
exclusions, charts), findings.csv, exceptions.csv, rollouts.csv, jobs.csv, approvals.csv,
audit-verification.json, metrics.json, manifest.json (every other file's SHA-256 and size) and SHA256SUMS
(`sha256sum -c` format, covering every file but itself). CSVs are streamed from chunked queries straight
into the zip, so a quarter of a million-finding fleet never sits in memory as rows.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import tempfile
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import IO, Any, Final
from xml.sax.saxutils import escape

from django.db.models import Q, QuerySet
from django.utils import timezone

from patchday import __version__
from patchday.audit import services as audit
from patchday.core.audit import Actor
from patchday.inventory.views import FORMULA_START
from patchday.reports import compliance
from patchday.reports.compliance import Assessment, Framework, Status
from patchday.reports.instants import IsoInstant
from patchday.reports.metrics import Metric

CHUNK: Final = 5000  # rows fetched per query chunk and written per CSV block
Progress = Callable[[str], None]

FINDING_COLUMNS: Final = (
    "id", "host", "vulnerability", "ecosystem", "package", "installed_version", "fixed_version", "status",
    "priority_score", "priority_decision", "first_detected_at", "fix_available_since", "fixed_at", "fix_verified",
    "fixed_by_rollout", "reopened_at", "status_changed_at", "due_date", "sla_policy_version",
)  # fmt: skip
EXCEPTION_COLUMNS: Final = (
    "id", "finding", "vulnerability", "group", "ecosystem", "package", "justification", "state", "requested_by",
    "requested_at", "decided_by", "decided_at", "decision_comment", "expires_at",
)  # fmt: skip
ROLLOUT_COLUMNS: Final = (
    "id", "plan", "plan_name", "state", "started_by", "started_at", "finished_at", "reason", "plan_requested_by",
    "plan_decided_by", "plan_override",
)  # fmt: skip
JOB_COLUMNS: Final = (
    "id", "rollout", "ring", "host", "state", "executor", "attempts", "queued_at", "finished_at", "verified_at",
    "error",
)  # fmt: skip
APPROVAL_COLUMNS: Final = ("id", "plan", "plan_name", "plan_requested_by", "decision", "by", "at", "comment")


@dataclass(frozen=True, slots=True)
class Period:
    """Whole UTC days from `start` to `end`, both included."""

    start: date
    end: date

    @property
    def first(self) -> datetime:
        return datetime.combine(self.start, time.min, tzinfo=UTC)

    @property
    def after(self) -> datetime:
        return datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=UTC)

    def __str__(self) -> str:
        return f"{self.start.isoformat()} to {self.end.isoformat()}"


@dataclass(frozen=True, slots=True)
class PackFile:
    name: str
    sha256: str
    size: int
    rows: int | None = None  # data rows of a CSV


@dataclass(frozen=True, slots=True)
class Pack:
    """What was written: the file name to offer, every file with its digest, the manifest's own digest."""

    filename: str
    files: tuple[PackFile, ...]
    manifest_sha256: str
    assessments: tuple[Assessment, ...]
    empty: bool


# -- cells and CSV streams ---------------------------------------------------------------------------------


def cell(value: object) -> str:
    """One CSV cell: ISO 8601 times, true/false, "" for None, and no leading formula character.

    The same cells as inventory.views.csv_cell, with a fast path for the common types: a quarter of a large
    fleet is tens of millions of cells.
    """
    kind = type(value)
    if value is None:
        return ""
    if kind is str:
        text = str(value)
        return f"'{text}" if text.startswith(FORMULA_START) else text
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        text = str(value)
        return f"'{text}" if text.startswith("-") else text
    if isinstance(value, date):  # datetimes too
        return value.isoformat()
    from patchday.inventory.views import csv_cell

    return csv_cell(value)


def csv_blocks(
    header: Sequence[str], rows: Iterable[Sequence[object]], as_is: Collection[int] = ()
) -> Iterator[tuple[bytes, int]]:
    """UTF-8 CSV in blocks of up to CHUNK rows: (bytes, data rows in the block); the header comes first.

    Columns at the indexes `as_is` skip cell(): the csv module already writes what cell() would for None,
    integers that cannot be negative and text that cannot start a formula.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    count = 0
    converted = [index for index in range(len(header)) if index not in as_is]
    for row in rows:
        if as_is:
            values = list(row)
            for index in converted:
                values[index] = cell(values[index])
            writer.writerow(values)
        else:
            writer.writerow(list(map(cell, row)))
        count += 1
        if count == CHUNK:
            yield buffer.getvalue().encode(), count
            buffer.seek(0)
            buffer.truncate()
            count = 0
    yield buffer.getvalue().encode(), count


def findings_in(period: Period) -> QuerySet[Any]:
    """Findings open at some moment of the period: detected before its end and not closed before its start."""
    from patchday.findings.models import Finding, FindingStatus

    closed_before = Q(status_changed_at__lt=period.first) & ~Q(status=FindingStatus.OPEN)
    return Finding.objects.filter(first_detected_at__lt=period.after).exclude(closed_before).order_by("pk")


FINDING_INSTANTS: Final = frozenset(
    {"first_detected_at", "fix_available_since", "fixed_at", "reopened_at", "status_changed_at"}
)
# written without cell(): positive-integer columns and the instants' ISO text (it starts with a digit)
FINDING_AS_IS: Final = frozenset(
    index
    for index, column in enumerate(FINDING_COLUMNS)
    if column in FINDING_INSTANTS | {"id", "priority_score", "fixed_by_rollout", "sla_policy_version"}
)


def finding_rows(period: Period) -> Iterator[tuple[object, ...]]:
    # instants come as the ISO 8601 text cell() would write (IsoInstant): a quarter is millions of them, and
    # converting each to a datetime first cost more than the rest of the pack
    columns = [
        IsoInstant(c) if c in FINDING_INSTANTS else ("host__name" if c == "host" else c) for c in FINDING_COLUMNS
    ]
    yield from findings_in(period).values_list(*columns).iterator(chunk_size=CHUNK)


def exceptions_in(period: Period) -> QuerySet[Any]:
    """Exceptions requested before the period's end that had not expired before its start."""
    from patchday.findings.models import RiskException

    return RiskException.objects.filter(requested_at__lt=period.after, expires_at__gte=period.first).order_by("pk")


def exception_rows(period: Period) -> Iterator[tuple[object, ...]]:
    columns = [("finding_id" if c == "finding" else c) for c in EXCEPTION_COLUMNS]
    yield from exceptions_in(period).values_list(*columns).iterator(chunk_size=CHUNK)


def rollouts_in(period: Period) -> QuerySet[Any]:
    """Rollouts running at some moment of the period."""
    from patchday.rollouts.models import Rollout

    return (
        Rollout.objects.filter(started_at__lt=period.after)
        .filter(Q(finished_at__isnull=True) | Q(finished_at__gte=period.first))
        .order_by("pk")
    )


def rollout_rows(period: Period) -> Iterator[tuple[object, ...]]:
    columns = {
        "plan": "plan_id", "plan_name": "plan__name", "plan_requested_by": "plan__requested_by",
        "plan_decided_by": "plan__decided_by", "plan_override": "plan__override",
    }  # fmt: skip
    yield from rollouts_in(period).values_list(*[columns.get(c, c) for c in ROLLOUT_COLUMNS]).iterator(CHUNK)


def jobs_in(period: Period) -> QuerySet[Any]:
    """Host jobs queued before the period's end and not finished before its start."""
    from patchday.rollouts.models import Job

    return (
        Job.objects.filter(queued_at__lt=period.after)
        .filter(Q(finished_at__isnull=True) | Q(finished_at__gte=period.first))
        .order_by("pk")
    )


def job_rows(period: Period) -> Iterator[tuple[object, ...]]:
    columns = {"rollout": "rollout_id", "ring": "ring__name", "host": "host__name"}
    for row in jobs_in(period).values_list(*[columns.get(c, c) for c in JOB_COLUMNS]).iterator(CHUNK):
        yield (*row[:-1], str(row[-1])[:2000])  # an error's first 2000 characters: job pages have the rest


def approvals_in(period: Period) -> QuerySet[Any]:
    """Decisions on plans taken in the period (approve, reject, auto-approve, override)."""
    from patchday.rollouts.models import Approval

    return Approval.objects.filter(at__gte=period.first, at__lt=period.after).order_by("at", "pk")


def approval_rows(period: Period) -> Iterator[tuple[object, ...]]:
    columns = {"plan": "plan_id", "plan_name": "plan__name", "plan_requested_by": "plan__requested_by"}
    yield from approvals_in(period).values_list(*[columns.get(c, c) for c in APPROVAL_COLUMNS]).iterator(CHUNK)


CSV_FILES: Final[
    Sequence[tuple[str, Sequence[str], Callable[[Period], Iterator[tuple[object, ...]]], Collection[int]]]
] = (
    ("findings.csv", FINDING_COLUMNS, finding_rows, FINDING_AS_IS),
    ("exceptions.csv", EXCEPTION_COLUMNS, exception_rows, ()),
    ("rollouts.csv", ROLLOUT_COLUMNS, rollout_rows, ()),
    ("jobs.csv", JOB_COLUMNS, job_rows, ()),
    ("approvals.csv", APPROVAL_COLUMNS, approval_rows, ()),
)


# -- measures ----------------------------------------------------------------------------------------------


def measures_for(period: Period, group: str = "", environment: str = "") -> dict[str, Metric]:
    """The metrics summary of the period, plus the measures only frameworks need (fleet-wide)."""
    from patchday.reports import metrics

    measured = dict(metrics.summary(period.start, period.end, group=group, environment=environment))
    measured.update(compliance.control_measures(period.start, period.end))
    return measured


def shown(metric: Metric) -> str:
    """A metric's value in words: "91.3%", "12.5 days", "42", or "no data"."""
    if metric.value is None:
        return "no data"
    if metric.unit == "ratio":
        return f"{metric.value * 100:.1f}%"
    if metric.unit == "days":
        return f"{metric.value:.1f} days"
    if metric.unit == "count":
        return f"{metric.value:,.0f}"
    return f"{metric.value:,.1f}"


def exclusions(metric: Metric) -> str:
    if not metric.excluded:
        return ""
    reasons = ", ".join(f"{reason}: {count}" for reason, count in metric.excluded_reasons.items())
    return f"{metric.excluded} excluded ({reasons})" if reasons else f"{metric.excluded} excluded"


def chart_series(period: Period) -> list[tuple[str, list[tuple[date, float]]]]:
    """The charts of a report: risk burndown and SLA compliance (in %), as (title, points) pairs."""
    from patchday.reports import metrics

    risk = [
        (day, float(value))
        for day, value in (_burndown_point(point) for point in metrics.burndown(period.start, period.end))
        if day is not None and value is not None
    ]
    sla = [
        (day, value * 100)
        for day, value in metrics.series("sla_compliance", period.start, period.end)
        if value is not None
    ]
    return [("Risk burndown (summed priority of open findings)", risk), ("SLA compliance (%)", sla)]


def _burndown_point(point: Mapping[str, Any]) -> tuple[date | None, float | None]:
    day = point.get("date") or point.get("day")
    value = point.get("risk", point.get("value"))
    if isinstance(day, str):
        day = date.fromisoformat(day)
    return (day if isinstance(day, date) else None), (float(value) if isinstance(value, int | float) else None)


# -- the PDF -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Document:
    """What a summary PDF says; evidence packs and scheduled reports fill it differently."""

    title: str
    cover: Sequence[tuple[str, str]]
    notice: str = ""  # e.g. that the period has no data
    assessments: Sequence[Assessment] = ()
    metrics: Sequence[Metric] = ()
    charts: Sequence[tuple[str, list[tuple[date, float]]]] = ()
    files: Sequence[tuple[str, str]] = field(default_factory=tuple)  # (file, what it holds)


def _text(value: str) -> str:
    """Text for a reportlab Paragraph: markup escaped; symbols the built-in fonts lack spelled out."""
    return escape(value.replace("≥", ">=").replace("≤", "<=").replace("`", "").replace("…", "..."))


def render_pdf(document: Document) -> bytes:
    """The document as a PDF (A4, the built-in Helvetica, line charts drawn with reportlab's graphics)."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.platypus import KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    styles = getSampleStyleSheet()
    small = styles["BodyText"].clone("small", fontSize=8, leading=10)
    body: list[Any] = [Paragraph(_text(document.title), styles["Title"])]
    grid = TableStyle(
        [
            ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
            ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8ecf1")),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ]
    )
    body.append(
        Table(
            [[Paragraph(f"<b>{_text(k)}</b>", small), Paragraph(_text(v), small)] for k, v in document.cover],
            colWidths=[45 * mm, 125 * mm],
            style=TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")]),
        )
    )
    if document.notice:
        body += [Spacer(1, 4 * mm), Paragraph(f"<b>{_text(document.notice)}</b>", styles["BodyText"])]
    if document.assessments:
        body += [Spacer(1, 4 * mm), Paragraph("Controls", styles["Heading2"])]
        rows: list[list[Any]] = [[Paragraph(f"<b>{h}</b>", small) for h in ("Control", "Status", "Measured", "Rule")]]
        for item in document.assessments:
            rows.append(
                [
                    Paragraph(f"<b>{_text(item.control.id)}</b><br/>{_text(item.control.title)}", small),
                    Paragraph(_text(item.status.value), small),
                    Paragraph("<br/>".join(_text(m) for m in item.measured), small),
                    Paragraph("<br/>".join(_text(r.describe()) for r in item.control.rules), small),
                ]
            )
        body.append(Table(rows, colWidths=[38 * mm, 22 * mm, 50 * mm, 60 * mm], style=grid, repeatRows=1))
        body += [Spacer(1, 4 * mm), Paragraph("Evidence by control", styles["Heading2"])]
        for item in document.assessments:
            lines = [f"<b>{_text(item.control.id)} {_text(item.control.title)}</b>: {_text(item.control.requires)}"]
            lines += [f"• {_text(e.source)}: {_text(e.shows)}" for e in item.control.evidence]
            body.append(KeepTogether([Paragraph(line, small) for line in lines] + [Spacer(1, 2 * mm)]))
    if document.metrics:
        body += [Spacer(1, 4 * mm), Paragraph("Key metrics", styles["Heading2"])]
        rows = [[Paragraph(f"<b>{h}</b>", small) for h in ("Metric", "Value", "Excluded")]]
        rows += [
            [
                Paragraph(f"{_text(m.label)}<br/><font color='#555555'>{_text(m.name)}</font>", small),
                Paragraph(_text(shown(m)), small),
                Paragraph(_text(exclusions(m)) or "-", small),
            ]
            for m in document.metrics
        ]
        body.append(Table(rows, colWidths=[75 * mm, 30 * mm, 65 * mm], style=grid, repeatRows=1))
    for title, points in document.charts:
        body += [Spacer(1, 4 * mm), Paragraph(_text(title), styles["Heading3"])]
        body.append(
            _chart(points) if len(points) > 1 else Paragraph("Not enough history in the period to draw.", small)
        )
    if document.files:
        body += [Spacer(1, 4 * mm), Paragraph("Files of this pack", styles["Heading2"])]
        body += [Paragraph(f"<b>{_text(name)}</b>: {_text(what)}", small) for name, what in document.files]
    buffer = io.BytesIO()
    pdf = SimpleDocTemplate(
        buffer, pagesize=A4, title=document.title, author=f"patchday {__version__}",
        leftMargin=18 * mm, rightMargin=18 * mm, topMargin=16 * mm, bottomMargin=16 * mm,
    )  # fmt: skip
    pdf.build(body)
    return buffer.getvalue()


def _chart(points: list[tuple[date, float]]) -> Any:
    from reportlab.graphics.charts.lineplots import LinePlot
    from reportlab.graphics.shapes import Drawing, String
    from reportlab.lib import colors
    from reportlab.lib.units import mm

    drawing = Drawing(170 * mm, 60 * mm)
    plot = LinePlot()
    plot.x, plot.y, plot.width, plot.height = round(14 * mm), round(10 * mm), round(150 * mm), round(45 * mm)
    first = points[0][0]
    plot.data = [[((day - first).days, value) for day, value in points]]
    plot.lines[0].strokeColor = colors.HexColor("#1f6feb")
    plot.lines[0].strokeWidth = 1.5
    plot.xValueAxis.valueMin = 0
    plot.xValueAxis.valueMax = max((points[-1][0] - first).days, 1)
    plot.xValueAxis.labels.fontSize = 6
    plot.xValueAxis.labelTextFormat = lambda offset: (first + timedelta(days=int(offset))).strftime("%m-%d")
    plot.yValueAxis.valueMin = 0
    plot.yValueAxis.labels.fontSize = 6
    drawing.add(plot)
    drawing.add(String(14 * mm, 2 * mm, f"{first.isoformat()} to {points[-1][0].isoformat()}", fontSize=6))
    return drawing


# -- the pack ----------------------------------------------------------------------------------------------


class _Zip:
    """Entries written into a zip while their SHA-256 and size are taken."""

    def __init__(self, out: IO[bytes]) -> None:
        import zipfile

        self.archive = zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6)
        self.files: list[PackFile] = []
        self.stamp = timezone.now().astimezone(UTC).timetuple()[:6]

    def _info(self, name: str) -> Any:
        import zipfile

        info = zipfile.ZipInfo(name, date_time=self.stamp)
        info.compress_type = zipfile.ZIP_DEFLATED
        return info

    def add(self, name: str, blocks: Iterable[bytes], rows: int | None = None) -> PackFile:
        digest, size = hashlib.sha256(), 0
        with self.archive.open(self._info(name), "w", force_zip64=True) as entry:
            for block in blocks:
                digest.update(block)
                size += len(block)
                entry.write(block)
        written = PackFile(name, digest.hexdigest(), size, rows)
        self.files.append(written)
        return written

    def add_csv(
        self, name: str, header: Sequence[str], rows: Iterable[Sequence[object]], as_is: Collection[int] = ()
    ) -> PackFile:
        counted = [0]

        def blocks() -> Iterator[bytes]:
            for block, count in csv_blocks(header, rows, as_is):
                counted[0] += count
                yield block

        entry = self.add(name, blocks())
        entry = PackFile(entry.name, entry.sha256, entry.size, counted[0])
        self.files[-1] = entry
        return entry

    def close(self) -> None:
        self.archive.close()


def _json(value: object) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n").encode()


FILE_DESCRIPTIONS: Final = {
    "findings.csv": "findings open at some moment of the period",
    "exceptions.csv": "risk exceptions requested before the period's end and in force during it",
    "rollouts.csv": "rollouts running during the period",
    "jobs.csv": "host jobs running during the period",
    "approvals.csv": "decisions on plans taken in the period",
    "audit-verification.json": "the audit trail's hash chain, verified when the pack was made",
    "metrics.json": "every metric and control measure of the period, with exclusions",
    "manifest.json": "SHA-256 and size of every other file",
    "SHA256SUMS": "the same sums for `sha256sum -c SHA256SUMS`",
}


def write_pack(
    key: str, start: date, end: date, actor: Actor, out: IO[bytes], progress: Progress | None = None
) -> Pack:
    """Write the evidence pack of framework `key` for [start, end] into `out`, and audit the export.

    Raises InvalidInput for an unknown framework or a period that ends before it starts. A period without
    data still makes a valid pack; its PDF says there is no data.
    """
    chosen = compliance.framework(key)
    compliance.check_period(start, end)
    step = progress or (lambda _: None)
    period, now = Period(start, end), timezone.now()
    filename = f"patchday-evidence-{chosen.key}-{start.isoformat()}-{end.isoformat()}.zip"
    step("verifying the audit trail")
    chain = audit.verify()
    verification = {
        "intact": chain.is_intact,
        "checked": chain.checked,
        "head_hash": chain.head_hash,
        "first_broken_id": chain.first_broken,
        "reason": chain.reason,
        "verified_at": now.isoformat(),
    }
    step("computing metrics")
    measured = measures_for(period)
    assessments = compliance.assess(chosen, measured)
    archive = _Zip(out)
    for name, header, rows, as_is in CSV_FILES:
        step(f"writing {name}")
        archive.add_csv(name, header, rows(period), as_is)
    empty = not any(f.rows for f in archive.files)
    step("drawing the summary")
    charts = [] if empty else chart_series(period)
    pdf = render_pdf(_pack_document(chosen, period, now, actor, chain.is_intact, chain.checked, assessments,
                                    measured, charts, archive.files, empty))  # fmt: skip
    archive.add("summary.pdf", [pdf])
    archive.add("audit-verification.json", [_json(verification)])
    metrics_data = {
        "framework": chosen.key,
        "period": {"from": start.isoformat(), "to": end.isoformat()},
        "metrics": {name: metric.to_data() for name, metric in measured.items()},
        "controls": [a.to_data() for a in assessments],
    }
    archive.add("metrics.json", [_json(metrics_data)])
    manifest = {
        "framework": chosen.key,
        "framework_name": chosen.name,
        "period": {"from": start.isoformat(), "to": end.isoformat()},
        "generated_at": now.isoformat(),
        "generated_by": actor.name,
        "patchday_version": __version__,
        "files": [{"name": f.name, "sha256": f.sha256, "bytes": f.size, "rows": f.rows} for f in archive.files],
    }
    manifest_entry = archive.add("manifest.json", [_json(manifest)])
    sums = "".join(f"{f.sha256}  {f.name}\n" for f in archive.files).encode()
    archive.add("SHA256SUMS", [sums])
    archive.close()
    audit.record(
        actor,
        "report.evidence",
        "evidence_pack",
        filename,
        {
            "framework": chosen.key,
            "from": start.isoformat(),
            "to": end.isoformat(),
            "manifest_sha256": manifest_entry.sha256,
            "statuses": {a.control.id: a.status.value for a in assessments},
        },
    )
    return Pack(filename, tuple(archive.files), manifest_entry.sha256, tuple(assessments), empty)


def _pack_document(
    chosen: Framework,
    period: Period,
    now: datetime,
    actor: Actor,
    intact: bool,
    checked: int,
    assessments: Sequence[Assessment],
    measured: Mapping[str, Metric],
    charts: Sequence[tuple[str, list[tuple[date, float]]]],
    files: Sequence[PackFile],
    empty: bool,
) -> Document:
    tally = {status: sum(1 for a in assessments if a.status is status) for status in Status}
    cover = [
        ("Framework", chosen.name),
        ("Period", f"{period} (UTC, both days included)"),
        ("Generated at", now.strftime("%Y-%m-%d %H:%M:%S UTC")),
        ("Generated by", actor.name),
        ("Audit trail", f"hash chain {'intact' if intact else 'BROKEN'} ({checked} records checked)"),
        ("Controls", ", ".join(f"{count} {status.value}" for status, count in tally.items() if count)),
    ]
    rows = {f.name: f.rows for f in files}
    listed = [
        (name, f"{what} ({rows[name]} rows)" if name in rows else what) for name, what in FILE_DESCRIPTIONS.items()
    ]
    return Document(
        title=f"{chosen.name} evidence pack",
        cover=cover,
        notice="There is no data for this period: no findings, exceptions, rollouts, jobs or approvals fall in it."
        if empty
        else "",
        assessments=assessments,
        metrics=list(measured.values()),
        charts=charts,
        files=listed,
    )


def build_pack(key: str, start: date, end: date, actor: Actor, progress: Progress | None = None) -> tuple[str, bytes]:
    """The evidence pack as (file name, zip bytes); see write_pack. Spooled to disk past 64 MiB."""
    with tempfile.SpooledTemporaryFile(max_size=64 * 1024 * 1024) as spool:
        pack = write_pack(key, start, end, actor, spool, progress)
        spool.seek(0)
        return pack.filename, spool.read()
