"""Dashboard pages of findings: the "patch first" queue, the findings list (filters, sort, CSV), one finding
with its explanation and history, and the exceptions inbox where approvers decide risk acceptance."""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final, cast

from django import forms
from django.contrib import messages
from django.core.paginator import Page, Paginator
from django.db.models import Count, F, OrderBy, QuerySet
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_POST

from patchday.accounts.guards import actor_for, page_guard
from patchday.accounts.models import User
from patchday.connectors.imports.vex import VexJustification
from patchday.core.errors import NotFound, PatchdayError
from patchday.core.roles import Permission
from patchday.core.sla import sla_state
from patchday.findings import exceptions, queries, vex
from patchday.findings.models import Confidence, ExceptionState, Finding, FindingStatus, RiskException
from patchday.inventory.views import Column, Option, csv_cell

PAGE_SIZE = 50
YES_NO: Final = {"yes": True, "no": False}
ANY_STATUS: Final = "any"
STATUS_CHOICES: Final = (
    (FindingStatus.OPEN.value, "Open"),
    (FindingStatus.FIXED.value, "Fixed"),
    (FindingStatus.ACCEPTED.value, "Accepted (exception)"),
    (FindingStatus.NOT_AFFECTED.value, "Not affected"),
    (ANY_STATUS, "Any status"),
)
DECISION_CHOICES: Final = tuple((d, d) for d in queries.DECISIONS)
CONFIDENCE_CHOICES: Final = (
    (Confidence.ADVISORY.value, "Advisory"),
    (Confidence.CHANGELOG.value, "Changelog only"),
)
KEV_CHOICES: Final = (("yes", "In KEV"), ("no", "Not in KEV"))
OVERDUE_CHOICES: Final = (("yes", "Overdue"), ("no", "Not overdue"))
ANY: Final = (("", "Any"),)
SLA_LABELS: Final = {"on_track": "on track", "due_soon": "due soon", "overdue": "overdue"}
# The decision of a queue row is its most urgent finding's; SSVC decisions rank Act > Attend > Track* > Track.
DECISION_RANKS: Final = queries.DECISION_RANKS
EXCEPTION_TABS: Final = (
    (ExceptionState.REQUESTED.value, "Requested"),
    (ExceptionState.APPROVED.value, "Approved"),
    (ExceptionState.REJECTED.value, "Rejected"),
    (ExceptionState.EXPIRED.value, "Expired"),
    (ExceptionState.REVOKED.value, "Revoked"),
)
DEFAULT_EXPIRY_DAYS = 30

# What `sort` may name: a column key -> the field it orders by. Anything else is ignored (never reaches SQL).
SORTS: Final[Mapping[str, str]] = {
    "priority": "priority_score",
    "vulnerability": "vulnerability",
    "host": "host__name",
    "package": "package",
    "confidence": "confidence",
    "status": "status",
    "due": "due_date",
}
DESCENDING_FIRST: Final = frozenset({"priority"})  # the first click shows the most urgent first
DEFAULT_SORT: Final = "-priority"
# After the chosen column, the queries' own order keeps pages stable.
TIE_BREAK: Final = (
    F("priority_score").desc(nulls_last=True),
    F("due_date").asc(nulls_last=True),
    "host__name",
    "vulnerability",
    "package",
    "id",
)
COLUMNS: Final = (
    ("priority", "Priority"),
    ("vulnerability", "Vulnerability"),
    ("host", "Host"),
    ("package", "Package"),
    ("", "Installed → fixed"),
    ("", "Fixing update"),
    ("confidence", "Confidence"),
    ("status", "Status"),
    ("due", "Due"),
)


# -- small shared pieces -------------------------------------------------------------------------------


def _options(choices: Sequence[tuple[str, str]], current: object, blank: str | None = "Any") -> list[Option]:
    """<option>s of a select; a current value the choices lack (typed into the URL) is kept as its own."""
    text = "" if current is None else str(current)
    options = [Option(value, label, value == text) for value, label in choices]
    if blank is not None:
        options.insert(0, Option("", blank, not text))
    if text and not any(o.selected for o in options):
        options.append(Option(text, text, True))
    return options


def _query(params: QueryDict, *drop: str) -> str:
    """The non-empty parameters of `params` except `drop`, URL-encoded (for links that keep the filter)."""
    return urlencode([(k, v) for k, values in params.lists() if k not in drop for v in values if v])


def _user(request: HttpRequest) -> User:
    return cast(User, request.user)


def sla_label(finding: Finding, today: date) -> str:
    """The SLA state of an open finding with a due date ("on track", "due soon", "overdue"); "" otherwise."""
    if finding.status != FindingStatus.OPEN or finding.due_date is None:
        return ""
    return SLA_LABELS[sla_state(finding.due_date, today).value]


@dataclass(frozen=True, slots=True)
class FindingRow:
    finding: Finding
    sla: str  # "", "on track", "due soon", "overdue"


class FindingFilterForm(forms.Form):
    host = forms.CharField(required=False, max_length=255)
    vulnerability = forms.CharField(required=False, max_length=128, label="CVE")
    package = forms.CharField(required=False, max_length=255)
    status = forms.ChoiceField(required=False, choices=STATUS_CHOICES)
    decision = forms.ChoiceField(required=False, choices=ANY + DECISION_CHOICES)
    confidence = forms.ChoiceField(required=False, choices=ANY + CONFIDENCE_CHOICES)
    kev = forms.ChoiceField(required=False, choices=ANY + KEV_CHOICES, label="Known exploited")
    overdue = forms.ChoiceField(required=False, choices=ANY + OVERDUE_CHOICES, label="SLA")

    def to_filter(self) -> queries.FindingFilter:
        self.is_valid()
        data = self.cleaned_data  # the valid fields only: one bad value does not drop the others
        status = data.get("status") or FindingStatus.OPEN
        return queries.FindingFilter(
            host=(data.get("host") or "").strip(),
            vulnerability=(data.get("vulnerability") or "").strip(),
            package=(data.get("package") or "").strip(),
            status="" if status == ANY_STATUS else status,
            decision=data.get("decision") or "",
            confidence=data.get("confidence") or "",
            kev=YES_NO.get(data.get("kev") or ""),
            overdue=YES_NO.get(data.get("overdue") or ""),
        )

    def is_filtered(self) -> bool:
        """True when anything but the default (open findings) is asked for."""
        f = self.to_filter()
        return f != queries.FindingFilter()


def _ordering(sort: str) -> tuple[str, bool, list[OrderBy | F | str]]:
    """(column key, descending, order_by) for a `sort` parameter; an unknown column sorts by priority."""
    key, descending = sort.removeprefix("-"), sort.startswith("-")
    if key not in SORTS:
        key, descending = DEFAULT_SORT.removeprefix("-"), True
    field = F(SORTS[key])
    first = field.desc(nulls_last=True) if descending else field.asc(nulls_last=True)
    return key, descending, [first, *TIE_BREAK]


def _sorted_findings(form: FindingFilterForm, sort: str) -> tuple[str, bool, QuerySet[Finding]]:
    key, descending, ordering = _ordering(sort)
    return key, descending, queries.findings(form.to_filter()).order_by(*ordering)


def _columns(params: QueryDict, key: str, descending: bool) -> list[Column]:
    base = _query(params, "page", "sort")
    columns: list[Column] = []
    for column, label in COLUMNS:
        if not column:
            columns.append(Column(column, label, "", ""))
            continue
        current = column == key
        if current:
            sort = column if descending else f"-{column}"
        else:
            sort = f"-{column}" if column in DESCENDING_FIRST else column
        href = f"?{base}&sort={sort}" if base else f"?sort={sort}"
        state = ("descending" if descending else "ascending") if current else ""
        columns.append(Column(column, label, href, state))
    return columns


# -- the "patch first" queue ---------------------------------------------------------------------------


class QueueFilterForm(forms.Form):
    host = forms.CharField(required=False, max_length=255)


@dataclass(frozen=True, slots=True)
class QueueRow:
    ecosystem: str
    package: str
    fixed_version: str
    findings: int
    hosts: int
    vulnerabilities: int
    top_score: int | None
    decision: str  # the most urgent decision among its findings; "" when none is prioritized
    earliest_due: date | None
    overdue: bool
    findings_query: str  # the findings list's parameters for this package (and host)


@page_guard(Permission.VIEW)
@require_GET
def patch_queue_page(request: HttpRequest) -> HttpResponse:
    """Open findings with a fix, one row per fixing update (package -> fixed version), most urgent first."""
    form = QueueFilterForm(request.GET)
    host = (form.cleaned_data.get("host") or "").strip() if form.is_valid() else ""
    rows = queries.patch_queue(host)
    page: Page[Any] = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    today = timezone.localdate()
    names = {rank: decision for decision, rank in DECISION_RANKS.items()}
    page.object_list = [
        QueueRow(
            ecosystem=row["ecosystem"],
            package=row["package"],
            fixed_version=row["fixed_version"],
            findings=row["findings"],
            hosts=row["hosts"],
            vulnerabilities=row["vulnerabilities"],
            top_score=row["top_score"],
            decision=names.get(row["top_rank"] or 0, ""),
            earliest_due=row["earliest_due"],
            overdue=row["earliest_due"] is not None and row["earliest_due"] < today,
            findings_query=urlencode([(k, v) for k, v in (("package", row["package"]), ("host", host)) if v]),
        )
        for row in page
    ]
    totals = queries.open_totals(host)
    context = {
        "form": form,
        "host": host,
        "page": page,
        "query": _query(request.GET, "page"),
        "open_with_fix": totals["with_fix"],  # equals the sum of the rows' findings, on every page
        "open_without_fix": totals["without_fix"],
    }
    return render(request, "findings/queue.html", context)


# -- the findings list ---------------------------------------------------------------------------------


def _list_context(request: HttpRequest) -> dict[str, Any]:
    params = request.GET
    form = FindingFilterForm(params)
    key, descending, rows = _sorted_findings(form, params.get("sort", ""))
    page: Page[Any] = Paginator(rows, PAGE_SIZE).get_page(params.get("page"))
    today = timezone.localdate()
    page.object_list = [FindingRow(finding, sla_label(finding, today)) for finding in page]
    current_sort = f"-{key}" if descending else key
    return {
        "form": form,
        "page": page,
        "query": _query(params, "page"),
        "sort": "" if current_sort == DEFAULT_SORT else current_sort,
        "columns": _columns(params, key, descending),
        "filtered": form.is_filtered(),
        "status_options": _options(STATUS_CHOICES, form["status"].value() or FindingStatus.OPEN, blank=None),
        "decision_options": _options(DECISION_CHOICES, form["decision"].value()),
        "confidence_options": _options(CONFIDENCE_CHOICES, form["confidence"].value()),
        "kev_options": _options(KEV_CHOICES, form["kev"].value()),
        "overdue_options": _options(OVERDUE_CHOICES, form["overdue"].value()),
        "oob": False,
    }


@page_guard(Permission.VIEW)
@require_GET
def findings_page(request: HttpRequest) -> HttpResponse:
    context = _list_context(request)
    if request.headers.get("HX-Request"):
        context["oob"] = True  # the filter form's hidden sort follows the table
        return render(request, "findings/_findings.html", context)
    return render(request, "findings/list.html", context)


CSV_HEADER: Final = (
    "id",
    "vulnerability",
    "host",
    "ecosystem",
    "package",
    "installed_version",
    "fixed_version",
    "fixing_update",
    "advisories",
    "confidence",
    "status",
    "priority_score",
    "priority_decision",
    "due_date",
    "sla_state",
    "first_detected_at",
    "last_detected_at",
    "fixed_at",
)


@page_guard(Permission.VIEW)
@require_GET
def findings_export(request: HttpRequest) -> HttpResponse:
    """The filtered, sorted list as CSV: every row, not one page, read from the database a chunk at a time."""
    _, _, rows = _sorted_findings(FindingFilterForm(request.GET), request.GET.get("sort", ""))
    today = timezone.localdate()
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="findings.csv"'
    writer = csv.writer(response)
    writer.writerow(CSV_HEADER)
    for f in rows.iterator(chunk_size=500):
        cells = (
            f.pk,
            f.vulnerability,
            f.host.name,
            f.ecosystem,
            f.package,
            f.installed_version,
            f.fixed_version,
            f.fixing_update,
            " ".join(str(a) for a in f.advisory_ids),
            f.confidence,
            f.status,
            f.priority_score,
            f.priority_decision,
            f.due_date,
            sla_label(f, today),
            f.first_detected_at,
            f.last_detected_at,
            f.fixed_at,
        )
        writer.writerow([csv_cell(cell) for cell in cells])
    return response


# -- one finding ---------------------------------------------------------------------------------------


class ExceptionRequestForm(forms.Form):
    justification = forms.CharField(max_length=5000, widget=forms.Textarea)
    expires_at = forms.DateField(input_formats=["%Y-%m-%d"], label="Expires on")

    @classmethod
    def blank(cls, today: date) -> ExceptionRequestForm:
        return cls(initial={"expires_at": (today + timedelta(days=DEFAULT_EXPIRY_DAYS)).isoformat()})

    def expiry(self) -> datetime:
        """The expiry date's start, in UTC: the exception ends as that day begins."""
        return datetime.combine(self.cleaned_data["expires_at"], time.min, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class ExplanationLine:
    """One line of a priority explanation as stored: an input, its value, its effect and points, or plain text."""

    input: str
    value: str
    effect: str
    points: int | None
    text: str


def explanation(entries: object) -> list[ExplanationLine]:
    """The stored explanation, line by line; a dict with "text" shows that text, anything else its str()."""
    factors: list[ExplanationLine] = []
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict):
            points = entry.get("points")
            factors.append(
                ExplanationLine(
                    input=str(entry.get("input") or ""),
                    value=str(entry.get("value") or ""),
                    effect=str(entry.get("effect") or ""),
                    points=points if isinstance(points, int) and not isinstance(points, bool) else None,
                    text=str(entry["text"]) if entry.get("text") else "",
                )
            )
        else:
            factors.append(ExplanationLine("", "", "", None, str(entry)))
    return factors


def _finding_context(request: HttpRequest, finding: Finding, form: ExceptionRequestForm) -> dict[str, Any]:
    today = timezone.localdate()
    user = _user(request)
    days_left = (finding.due_date - today).days if finding.due_date else None
    return {
        "finding": finding,
        "sla": sla_label(finding, today),
        "days_left": days_left,
        "days_late": -days_left if days_left is not None and days_left < 0 else None,
        "factors": explanation(finding.priority_explanation),
        "events": list(finding.events.all()),
        "exceptions": list(finding.exceptions.all()),
        "is_cve": finding.vulnerability.upper().startswith("CVE-"),
        "can_operate": user.may(Permission.OPERATE),
        "form": form if user.may(Permission.OPERATE) else None,
        "vex_justifications": [j.value for j in VexJustification],
    }


def _unknown_finding(request: HttpRequest, finding_id: int, exc: NotFound) -> HttpResponse:
    return render(request, "findings/unknown.html", {"finding_id": finding_id, "reason": str(exc)}, status=404)


@page_guard(Permission.VIEW)
@require_GET
def finding_page(request: HttpRequest, finding_id: int) -> HttpResponse:
    try:
        finding = queries.get_finding(finding_id)
    except NotFound as exc:
        return _unknown_finding(request, finding_id, exc)
    form = ExceptionRequestForm.blank(timezone.localdate())
    return render(request, "findings/detail.html", _finding_context(request, finding, form))


@page_guard(Permission.OPERATE)
@require_POST
def finding_exception(request: HttpRequest, finding_id: int) -> HttpResponse:
    """Request an exception for this one finding, as the signed-in user; an approver decides it."""
    try:
        finding = queries.get_finding(finding_id)
    except NotFound as exc:
        return _unknown_finding(request, finding_id, exc)
    form = ExceptionRequestForm(request.POST)
    if form.is_valid():
        try:
            record = exceptions.request_exception(
                actor_for(request),
                _user(request).username,
                exceptions.Scope(finding_id=finding.pk),
                form.cleaned_data["justification"],
                form.expiry(),
            )
        except PatchdayError as exc:
            field = getattr(exc, "field", None)
            form.add_error(field if field in form.fields else None, str(exc))
        else:
            messages.success(
                request, f"Exception {record.pk} is requested; another approver decides it in the exceptions inbox."
            )
            return redirect("finding", finding_id=finding.pk)
    return render(request, "findings/detail.html", _finding_context(request, finding, form), status=400)


# -- the exceptions inbox ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tab:
    state: str
    label: str
    count: int
    current: bool


@dataclass(frozen=True, slots=True)
class ExceptionRow:
    record: RiskException
    scope: str
    own: bool  # requested by the signed-in user, who may not decide it


def _tab(raw: str) -> str:
    return raw if raw in ExceptionState.values else ExceptionState.REQUESTED.value


@page_guard(Permission.VIEW)
@require_GET
def exceptions_page(request: HttpRequest) -> HttpResponse:
    """Exceptions by state, requested first; approvers decide requests and revoke approved ones here."""
    state = _tab(request.GET.get("state", ""))
    counts = dict(RiskException.objects.values_list("state").annotate(n=Count("id")).order_by())
    user = _user(request)
    page: Page[Any] = Paginator(exceptions.exceptions(state), PAGE_SIZE).get_page(request.GET.get("page"))
    page.object_list = [
        ExceptionRow(record, exceptions.describe(record), record.requested_by == user.username) for record in page
    ]
    context = {
        "state": state,
        "tabs": [Tab(value, label, counts.get(value, 0), value == state) for value, label in EXCEPTION_TABS],
        "page": page,
        "query": _query(request.GET, "page"),
        "can_approve": user.may(Permission.APPROVE),
        "now": timezone.now(),
    }
    return render(request, "findings/exceptions.html", context)


def _back_to_inbox(request: HttpRequest) -> HttpResponse:
    state = _tab(request.POST.get("state", ""))
    return redirect(f"{reverse('exceptions')}?{urlencode({'state': state})}")


@page_guard(Permission.APPROVE)
@require_POST
def exception_decide(request: HttpRequest, exception_id: int) -> HttpResponse:
    """Approve or reject a requested exception; the service's refusals (own request, already decided) are shown."""
    decision = request.POST.get("decision")
    if decision not in ("approve", "reject"):
        messages.error(request, f"Exception {exception_id} is not decided: choose approve or reject.")
        return _back_to_inbox(request)
    approve = decision == "approve"
    comment = request.POST.get("comment", "")[:5000]
    try:
        record = exceptions.decide(actor_for(request), _user(request).username, exception_id, approve, comment)
    except PatchdayError as exc:  # PermissionDenied (their own request), Conflict (decided already), NotFound
        messages.error(request, f"Exception {exception_id} is not decided: {exc}.")
    else:
        verb = "approved: its findings are accepted" if approve else "rejected"
        messages.success(request, f"Exception {record.pk} ({exceptions.describe(record)}) is {verb}.")
    return _back_to_inbox(request)


@page_guard(Permission.APPROVE)
@require_POST
def exception_revoke(request: HttpRequest, exception_id: int) -> HttpResponse:
    try:
        record = exceptions.revoke(actor_for(request), exception_id)
    except PatchdayError as exc:
        messages.error(request, f"Exception {exception_id} is not revoked: {exc}.")
    else:
        messages.success(
            request, f"Exception {record.pk} ({exceptions.describe(record)}) is revoked: its findings are open again."
        )
    return _back_to_inbox(request)


# -- SLA policy --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PolicyVersion:
    version: int
    rules: list[str]
    created_by: str
    created_at: datetime | None
    comment: str


def _policy_versions() -> list[PolicyVersion]:
    from patchday.core.sla import DEFAULT_POLICY, SlaPolicy
    from patchday.findings.models import SlaPolicy as SlaPolicyRow

    rows = [
        PolicyVersion(
            row.version,
            [r.describe() for r in SlaPolicy.from_data({"version": row.version, "rules": row.rules}).rules],
            row.created_by,
            row.created_at,
            row.comment,
        )
        for row in SlaPolicyRow.objects.order_by("-version")
    ]
    defaults = PolicyVersion(
        DEFAULT_POLICY.version,
        [r.describe() for r in DEFAULT_POLICY.rules],
        "patchday",
        None,
        "the documented defaults",
    )
    return [*rows, defaults]


def _sla_context(request: HttpRequest, draft: str, error: str = "") -> dict[str, Any]:
    import json

    from patchday.findings.priority import current_policy

    if not draft:
        draft = json.dumps(current_policy().to_data()["rules"], indent=2)
    return {
        "versions": _policy_versions(),
        "draft": draft,
        "error": error,
        "can_edit": _user(request).may(Permission.ADMINISTER),
    }


@page_guard(Permission.VIEW)
@require_GET
def sla_policy_page(request: HttpRequest) -> HttpResponse:
    """The SLA policy in force (its rules in words) and every earlier version; admins save a new version."""
    return render(request, "findings/sla.html", _sla_context(request, ""))


@page_guard(Permission.ADMINISTER)
@require_POST
def sla_policy_save(request: HttpRequest) -> HttpResponse:
    import json

    from patchday.findings.priority import save_policy

    draft = request.POST.get("rules", "")
    try:
        rules = json.loads(draft)
        row = save_policy(actor_for(request), rules, request.POST.get("comment", ""))
    except ValueError as exc:
        return render(request, "findings/sla.html", _sla_context(request, draft, f"not JSON: {exc}"), status=400)
    except PatchdayError as exc:
        return render(request, "findings/sla.html", _sla_context(request, draft, str(exc)), status=400)
    messages.success(request, f"SLA policy version {row.version} is in force; open findings have new due dates.")
    return redirect("sla-policy")


# -- VEX ---------------------------------------------------------------------------------------------------


@page_guard(Permission.OPERATE)
@require_POST
def finding_not_affected(request: HttpRequest, finding_id: int) -> HttpResponse:
    """Propose that this finding does not apply; another approver confirms it on the VEX page."""
    try:
        record = vex.propose_not_affected(
            actor_for(request),
            _user(request).username,
            finding_id,
            request.POST.get("justification", ""),
            request.POST.get("impact_statement", ""),
        )
    except PatchdayError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Analysis {record.pk} is proposed; another approver confirms it on the VEX page.")
    return redirect("finding", finding_id=finding_id)


@page_guard(Permission.VIEW)
@require_GET
def vex_page(request: HttpRequest) -> HttpResponse:
    """Analyses awaiting confirmation, the statements in force, the import form and the export."""
    from patchday.findings.models import VexRecord

    user = _user(request)
    pending = list(VexRecord.objects.filter(confirmed_at=None).select_related("finding", "finding__host")[:200])
    in_force = Paginator(VexRecord.objects.exclude(confirmed_at=None), PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "pending": pending,
        "page": in_force,
        "query": _query(request.GET, "page"),
        "can_approve": user.may(Permission.APPROVE),
        "username": user.username,
    }
    return render(request, "findings/vex.html", context)


@page_guard(Permission.APPROVE)
@require_POST
def vex_import(request: HttpRequest) -> HttpResponse:
    upload = request.FILES.get("file")
    if upload is None:
        messages.error(request, "choose an OpenVEX or CycloneDX VEX JSON file")
        return redirect("vex")
    try:
        result = vex.import_vex(actor_for(request), upload.read(), (upload.name or "upload")[:200])
    except PatchdayError as exc:
        messages.error(request, f"nothing was imported: {exc}")
    else:
        messages.success(
            request,
            f"{result.statements} statements: {result.recorded} not_affected in force, {result.ignored} ignored; "
            f"{result.suppressed} findings are now not affected.",
        )
    return redirect("vex")


@page_guard(Permission.APPROVE)
@require_POST
def vex_confirm(request: HttpRequest, record_id: int) -> HttpResponse:
    try:
        vex.confirm(actor_for(request), _user(request).username, record_id)
    except PatchdayError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Analysis {record_id} is confirmed; its finding is not affected.")
    return redirect("vex")
