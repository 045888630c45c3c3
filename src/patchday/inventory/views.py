"""Dashboard pages of the fleet: the hosts list (filters, sort, CSV, bulk edit), one host, groups, enrollment."""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any, Final, cast

from django import forms
from django.contrib import messages
from django.core.paginator import Page, Paginator
from django.db.models import F, OrderBy, QuerySet
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from patchday.accounts.guards import actor_for, page_guard
from patchday.accounts.models import User
from patchday.core.errors import InvalidInput, NotFound, PatchdayError
from patchday.core.roles import Permission
from patchday.inventory import agents, queries, services
from patchday.inventory.models import Criticality, EnrollmentSecret, Exposure, Host, HostGroup, ManagementMode
from patchday.settings import load_settings

PAGE_SIZE = 50
YES_NO: Final = {"yes": True, "no": False}
CRITICALITY_LABELS: Final = {value: f"{value} · {label}" for value, label in Criticality.choices}
CRITICALITY_CHOICES = tuple((str(value), label) for value, label in CRITICALITY_LABELS.items())
EXPOSURE_CHOICES = tuple((value, value) for value in Exposure.values)
MODE_CHOICES = (
    (ManagementMode.AGENT.value, "agent"),
    (ManagementMode.SSH.value, "SSH"),
    (ManagementMode.IMPORT.value, "import"),
    (ManagementMode.SCAN.value, "scan"),
)
FRESHNESS_CHOICES = (("fresh", "Fresh"), ("stale", "Stale"), ("lost", "Lost"), ("static", "Static (imported)"))
REBOOT_CHOICES = (("", "Any"), ("yes", "Reboot required"), ("no", "No reboot needed"))
SECURITY_CHOICES = (("", "Any"), ("yes", "Security updates pending"), ("no", "No security updates"))
ANY: Final = (("", "Any"),)
KEEP: Final = (("", "Keep as is"),)

# What `sort` may name: a column key -> the field it orders by. Anything else is ignored (never reaches SQL).
SORTS: Final[Mapping[str, str]] = {
    "name": "name",
    "os": "os_name",
    "kernel": "kernel_running",
    "mode": "management_mode",
    "seen": "last_seen_at",
    "criticality": "criticality",
    "exposure": "exposure",
    "environment": "environment",
    "owner": "owner",
    "packages": "package_count",
    "security": "pending_security",
    "regular": "pending_regular",
    "reboot": "reboot_required",
}
COLUMNS: Final = (
    ("name", "Name"),
    ("os", "OS"),
    ("kernel", "Kernel"),
    ("mode", "Mode"),
    ("seen", "Last seen"),
    ("criticality", "Criticality"),
    ("exposure", "Exposure"),
    ("environment", "Environment"),
    ("owner", "Owner"),
    ("", "Tags"),
    ("packages", "Packages"),
    ("security", "Security"),
    ("regular", "Regular"),
    ("reboot", "Reboot"),
)
# A spreadsheet runs a cell starting with one of these as a formula (OWASP "CSV injection").
FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")


# -- small shared pieces -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Option:
    value: str
    label: str
    selected: bool


def _options(choices: Sequence[tuple[str, str]], current: object, blank: str = "Any") -> list[Option]:
    """<option>s of a select; a current value the choices lack (typed into the URL) is kept as its own."""
    text = "" if current is None else str(current)
    options = [Option("", blank, not text)] + [Option(value, label, value == text) for value, label in choices]
    if text and not any(o.selected for o in options):
        options.append(Option(text, text, True))
    return options


def _values(values: Sequence[str]) -> list[tuple[str, str]]:
    return [(v, v) for v in values]


def _query(params: QueryDict, *drop: str) -> str:
    """The non-empty parameters of `params` except `drop`, URL-encoded (for links that keep the filter)."""
    return urlencode([(k, v) for k, values in params.lists() if k not in drop for v in values if v])


def _paginate(items: Any, request: HttpRequest, parameter: str) -> Page[Any]:
    return Paginator(items, PAGE_SIZE).get_page(request.GET.get(parameter))


def _may_operate(request: HttpRequest) -> bool:
    return cast(User, request.user).may(Permission.OPERATE)


def _add_error(form: forms.Form, exc: PatchdayError) -> None:
    """Show a service's error next to the field it names, or above the form."""
    field = getattr(exc, "field", None)
    form.add_error(field if field in form.fields else None, str(exc))


# -- the hosts list ------------------------------------------------------------------------------------


class HostFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=200, label="Search")
    os = forms.CharField(required=False, max_length=64, label="OS")
    environment = forms.CharField(required=False, max_length=64)
    exposure = forms.ChoiceField(required=False, choices=ANY + EXPOSURE_CHOICES)
    criticality = forms.TypedChoiceField(
        required=False, choices=ANY + CRITICALITY_CHOICES, coerce=int, empty_value=None
    )
    owner = forms.CharField(required=False, max_length=255)
    tag = forms.CharField(required=False, max_length=64)
    group = forms.CharField(required=False, max_length=100)
    mode = forms.ChoiceField(required=False, choices=ANY + MODE_CHOICES, label="Management mode")
    freshness = forms.ChoiceField(required=False, choices=ANY + FRESHNESS_CHOICES)
    reboot = forms.ChoiceField(required=False, choices=REBOOT_CHOICES)
    security = forms.ChoiceField(required=False, choices=SECURITY_CHOICES, label="Security updates")

    def clean_group(self) -> str:
        name = str(self.cleaned_data.get("group") or "")
        if name:
            try:
                queries.group_members(name)
            except PatchdayError as exc:
                raise forms.ValidationError(str(exc)) from None
        return name

    def to_filter(self) -> queries.HostFilter:
        self.is_valid()
        data = self.cleaned_data  # the valid fields only: one bad value does not drop the others
        tag = data.get("tag") or ""
        return queries.HostFilter(
            q=data.get("q") or "",
            os_id=data.get("os") or "",
            environment=data.get("environment") or "",
            exposure=data.get("exposure") or "",
            criticality=data.get("criticality"),
            owner=data.get("owner") or "",
            tags=(tag,) if tag else (),
            group=data.get("group") or "",
            mode=data.get("mode") or "",
            freshness=data.get("freshness") or "",
            reboot_required=YES_NO.get(data.get("reboot") or ""),
            pending_security=YES_NO.get(data.get("security") or ""),
        )

    def rule(self) -> dict[str, Any]:
        """The filter as a dynamic group's rule; raises InvalidInput for what a rule cannot keep."""
        f = self.to_filter()
        if f.freshness or f.group:
            raise InvalidInput(
                "a dynamic group cannot keep the freshness or group filter: remove it, or save a static group",
                field="freshness" if f.freshness else "group",
            )
        values: dict[str, Any] = {
            "q": f.q,
            "os_id": f.os_id,
            "environment": f.environment,
            "exposure": f.exposure,
            "criticality": f.criticality,
            "owner": f.owner,
            "tags": list(f.tags),
            "mode": f.mode,
            "reboot_required": f.reboot_required,
            "pending_security": f.pending_security,
        }
        return {key: value for key, value in values.items() if value not in ("", None, [])}


def _describe(form: HostFilterForm) -> list[tuple[str, str]]:
    """(label, value) of each filter in use, for people to read."""
    form.is_valid()
    shown: list[tuple[str, str]] = []
    for name, value in form.cleaned_data.items():
        if value in ("", None):
            continue
        field = form.fields[name]
        choices = dict(getattr(field, "choices", ()))
        label = str(field.label or name.replace("_", " ").capitalize())
        shown.append((label, str(choices.get(str(value), value))))
    return shown


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    label: str
    href: str  # empty: not sortable
    aria_sort: str  # "ascending", "descending" or empty


@dataclass(frozen=True, slots=True)
class HostRow:
    host: Host
    freshness: str
    tags: tuple[str, ...]


def _ordering(sort: str) -> tuple[str, bool, list[OrderBy | str]]:
    """(column key, descending, order_by) for a `sort` parameter; an unknown column sorts by name."""
    key, descending = sort.removeprefix("-"), sort.startswith("-")
    if key not in SORTS:
        key, descending = "name", False
    field = F(SORTS[key])
    first = field.desc(nulls_last=True) if descending else field.asc(nulls_last=True)
    return key, descending, [first, "name"]


def _sorted_hosts(form: HostFilterForm, sort: str) -> tuple[str, bool, QuerySet[Host]]:
    key, descending, ordering = _ordering(sort)
    return key, descending, queries.with_counts(queries.hosts(form.to_filter())).order_by(*ordering)


def _columns(params: QueryDict, key: str, descending: bool) -> list[Column]:
    base = _query(params, "page", "sort")
    columns: list[Column] = []
    for column, label in COLUMNS:
        if not column:
            columns.append(Column(column, label, "", ""))
            continue
        current = column == key
        sort = f"-{column}" if current and not descending else column
        href = f"?{base}&sort={sort}" if base else f"?sort={sort}"
        state = ("descending" if descending else "ascending") if current else ""
        columns.append(Column(column, label, href, state))
    return columns


class BulkEditForm(forms.Form):
    criticality = forms.TypedChoiceField(
        required=False, choices=KEEP + CRITICALITY_CHOICES, coerce=int, empty_value=None
    )
    exposure = forms.ChoiceField(required=False, choices=KEEP + EXPOSURE_CHOICES)
    environment = forms.CharField(required=False, max_length=64)
    owner = forms.CharField(required=False, max_length=255)
    add_tag = forms.CharField(required=False, max_length=64, label="Add tag")
    remove_tag = forms.CharField(required=False, max_length=64, label="Remove tag")

    def to_changes(self) -> services.HostChanges:
        data = self.cleaned_data
        changes = services.HostChanges(
            criticality=data.get("criticality"),
            exposure=data.get("exposure") or None,
            environment=data.get("environment") or None,
            owner=data.get("owner") or None,
            add_tags=(data["add_tag"],) if data.get("add_tag") else (),
            remove_tags=(data["remove_tag"],) if data.get("remove_tag") else (),
        )
        if not changes.as_dict():
            raise InvalidInput("choose at least one attribute to set")
        return changes


def _list_context(
    request: HttpRequest, params: QueryDict, bulk: BulkEditForm | None, selected: Sequence[str] = ()
) -> dict[str, Any]:
    form = HostFilterForm(params)
    key, descending, rows = _sorted_hosts(form, params.get("sort", ""))
    page: Page[Any] = Paginator(rows, PAGE_SIZE).get_page(params.get("page"))
    now = timezone.now()
    page.object_list = [
        HostRow(host, queries.freshness(host, now), tuple(sorted(t.tag for t in host.tags.all()))) for host in page
    ]
    facets = queries.facets()
    can_operate = _may_operate(request)
    counts = queries.freshness_counts(now)
    return {
        "form": form,
        "page": page,
        "query": _query(params, "page"),
        "filter_query": _query(params, "page", "sort"),
        "sort": f"-{key}" if descending else key if key != "name" else "",
        "columns": _columns(params, key, descending),
        "counts": counts,
        "total": sum(counts.values()),  # every host has exactly one freshness
        "freshness": form.cleaned_data.get("freshness") or "",
        "filtered": _describe(form),
        "filter_fields": [(name, value) for name in HostFilterForm.base_fields if (value := form[name].value())],
        "os_options": _options(_values(facets.os_ids), form["os"].value()),
        "environment_options": _options(_values(facets.environments), form["environment"].value()),
        "owner_options": _options(_values(facets.owners), form["owner"].value()),
        "tag_options": _options(_values(facets.tags), form["tag"].value()),
        "group_options": _options(_values(facets.groups), form["group"].value()),
        "exposure_options": _options(EXPOSURE_CHOICES, form["exposure"].value()),
        "criticality_options": _options(CRITICALITY_CHOICES, form["criticality"].value()),
        "mode_options": _options(MODE_CHOICES, form["mode"].value()),
        "freshness_options": _options(FRESHNESS_CHOICES, form["freshness"].value()),
        "reboot_options": _options(REBOOT_CHOICES[1:], form["reboot"].value()),
        "security_options": _options(SECURITY_CHOICES[1:], form["security"].value()),
        "can_operate": can_operate,
        "can_enroll": cast(User, request.user).may(Permission.ADMINISTER),
        "bulk": bulk if can_operate else None,
        "bulk_criticality_options": _options(CRITICALITY_CHOICES, bulk["criticality"].value() if bulk else "", "Keep"),
        "bulk_exposure_options": _options(EXPOSURE_CHOICES, bulk["exposure"].value() if bulk else "", "Keep"),
        "selected": set(selected),
        "oob": False,
    }


@page_guard(Permission.VIEW)
@require_GET
def hosts_page(request: HttpRequest) -> HttpResponse:
    context = _list_context(request, request.GET, BulkEditForm())
    if request.headers.get("HX-Request"):
        context["oob"] = True  # the filter form's hidden sort follows the table
        return render(request, "inventory/_hosts.html", context)
    return render(request, "inventory/list.html", context)


def csv_cell(value: object) -> str:
    """The text of a CSV cell, with a leading apostrophe when a spreadsheet would run it as a formula."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = value.isoformat()
    text = str(value)
    return f"'{text}" if text.startswith(FORMULA_START) else text


CSV_HEADER: Final = (
    "name",
    "os",
    "kernel",
    "management_mode",
    "last_seen_at",
    "freshness",
    "criticality",
    "exposure",
    "environment",
    "owner",
    "tags",
    "packages",
    "pending_security",
    "pending_regular",
    "reboot_required",
)


@page_guard(Permission.VIEW)
@require_GET
def hosts_export(request: HttpRequest) -> HttpResponse:
    """The filtered, sorted list as CSV: every row, not one page, read from the database a chunk at a time."""
    _, _, rows = _sorted_hosts(HostFilterForm(request.GET), request.GET.get("sort", ""))
    now = timezone.now()
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="hosts.csv"'
    writer = csv.writer(response)
    writer.writerow(CSV_HEADER)
    for host in rows.iterator(chunk_size=500):
        cells = (
            host.name,
            host.os_name,
            host.kernel_running,
            host.management_mode,
            host.last_seen_at,
            queries.freshness(host, now),
            host.criticality,
            host.exposure,
            host.environment,
            host.owner,
            " ".join(sorted(t.tag for t in host.tags.all())),
            host.package_count,  # type: ignore[attr-defined]
            host.pending_security,  # type: ignore[attr-defined]
            host.pending_regular,  # type: ignore[attr-defined]
            "" if host.reboot_required is None else "yes" if host.reboot_required else "no",
        )
        writer.writerow([csv_cell(cell) for cell in cells])
    return response


def _back_query(raw: str) -> QueryDict:
    """The list's parameters a form carried back, limited to the ones the list knows."""
    known = {*HostFilterForm.base_fields, "sort", "page"}
    params = QueryDict(mutable=True)
    for key, values in QueryDict(raw[:2000]).lists():
        if key in known:
            params.setlist(key, values)
    return params


@page_guard(Permission.OPERATE)
@require_POST
def hosts_bulk(request: HttpRequest) -> HttpResponse:
    """Set attributes on the selected hosts, all or nothing; errors are shown beside the form."""
    back = _back_query(request.POST.get("back", ""))
    names = [n for n in request.POST.getlist("host") if n][:10_000]
    form = BulkEditForm(request.POST)
    if form.is_valid():
        try:
            changes = form.to_changes()
            result = services.set_attributes(actor_for(request), names, changes)
        except PatchdayError as exc:
            _add_error(form, exc)
        else:
            changed = sum(1 for diff in result.values() if diff)
            messages.success(
                request, f"{changed} of {len(result)} selected host{'s' if len(result) != 1 else ''} changed."
            )
            query = urlencode(list(back.lists()), doseq=True)
            return redirect(f"{reverse('hosts')}?{query}" if query else reverse("hosts"))
    context = _list_context(request, back, form, names)
    return render(request, "inventory/list.html", context, status=400)


# -- one host ------------------------------------------------------------------------------------------


class HostEditForm(forms.Form):
    criticality = forms.TypedChoiceField(choices=CRITICALITY_CHOICES, coerce=int)
    exposure = forms.ChoiceField(choices=EXPOSURE_CHOICES)
    environment = forms.CharField(required=False, max_length=64)
    owner = forms.CharField(required=False, max_length=255)
    tags = forms.CharField(required=False, max_length=2000)
    ring = forms.CharField(required=False, max_length=64)
    maintenance_window = forms.CharField(required=False, max_length=64, label="Maintenance window")

    @classmethod
    def of(cls, host: Host) -> HostEditForm:
        tags = " ".join(sorted(t.tag for t in host.tags.all()))
        initial = {name: getattr(host, name) for name in services.ATTRIBUTES}
        return cls(initial={**initial, "tags": tags})

    def to_changes(self) -> services.HostChanges:
        data = self.cleaned_data
        return services.HostChanges(
            criticality=data["criticality"],
            exposure=data["exposure"],
            environment=data["environment"],
            owner=data["owner"],
            ring=data["ring"],
            maintenance_window=data["maintenance_window"],
            tags=tuple(dict.fromkeys(data["tags"].replace(",", " ").split())),
        )


class AtForm(forms.Form):
    at = forms.DateField(required=False, input_formats=["%Y-%m-%d"], label="Installed on")


@dataclass(frozen=True, slots=True)
class PackageRow:
    name: str
    version: str
    arch: str
    ecosystem: str
    source: str  # "name version" of the source package, when it differs


def _installed(request: HttpRequest, host: Host, at: datetime | None) -> Page[PackageRow]:
    search = request.GET.get("pq", "").strip()[:200]
    if at is not None:
        rows = [
            PackageRow(name, version, arch, ecosystem, "")
            for ecosystem, name, arch, version in queries.packages_at(host, at)
            if search.lower() in name.lower()
        ]
        return _paginate(rows, request, "ppage")
    installed = host.packages.select_related("package_version").order_by(
        "package_version__name", "arch", "package_version__version"
    )
    if search:
        installed = installed.filter(package_version__name__icontains=search)
    page = _paginate(installed, request, "ppage")
    page.object_list = [
        PackageRow(
            hp.package_version.name,
            hp.package_version.version,
            hp.arch,
            hp.package_version.ecosystem,
            " ".join(
                part
                for part in (hp.package_version.source_name, hp.package_version.source_version)
                if part
                and (hp.package_version.source_name, hp.package_version.source_version)
                != (hp.package_version.name, hp.package_version.version)
            ),
        )
        for hp in page
    ]
    return page


def _host_context(request: HttpRequest, host: Host, edit: HostEditForm) -> dict[str, Any]:
    params = request.GET
    at_form = AtForm(params)
    at_date = at_form.cleaned_data.get("at") if at_form.is_valid() else None
    at = datetime.combine(at_date, time.max, tzinfo=UTC) if at_date else None
    pending = list(host.pending_updates.order_by("-security", "name", "arch"))
    vulnerabilities = _paginate(queries.host_vulnerabilities(host), request, "vpage")
    history = _paginate(
        host.package_events.select_related("collection").order_by("-at", "-collection_id", "name", "arch", "id"),
        request,
        "hpage",
    )
    from patchday.rollouts.windows import host_window

    return {
        "host": host,
        "window": host_window(host),
        "deployments": host.jobs.select_related("rollout__plan").order_by("-queued_at", "-pk")[:20],
        "tags": sorted(t.tag for t in host.tags.all()),
        "groups": queries.groups_of(host),
        "freshness": queries.freshness(host),
        "criticality_label": CRITICALITY_LABELS.get(host.criticality, str(host.criticality)),
        "hardware": {k: v for k, v in (host.hardware or {}).items() if v},
        "last_collection": host.collections.first(),
        "pending": pending,
        "pending_security": sum(1 for u in pending if u.security),
        "pending_regular": sum(1 for u in pending if not u.security),
        "packages": _installed(request, host, at),
        "package_total": host.packages.count(),
        "package_search": params.get("pq", "").strip()[:200],
        "at_form": at_form,
        "at": at_date,
        "history": history,
        "vulnerabilities": vulnerabilities,
        "packages_query": _query(params, "ppage"),
        "history_query": _query(params, "hpage"),
        "vulnerabilities_query": _query(params, "vpage"),
        "can_operate": _may_operate(request),
        "edit": edit,
        "criticality_choices": CRITICALITY_CHOICES,
        "exposure_choices": EXPOSURE_CHOICES,
    }


def _unknown_host(request: HttpRequest, name: str, exc: NotFound) -> HttpResponse:
    return render(request, "inventory/unknown.html", {"name": name, "reason": str(exc)}, status=404)


@page_guard(Permission.VIEW)
@require_GET
def host_page(request: HttpRequest, name: str) -> HttpResponse:
    try:
        host = queries.get_host(name)
    except NotFound as exc:
        return _unknown_host(request, name, exc)
    return render(request, "inventory/detail.html", _host_context(request, host, HostEditForm.of(host)))


@page_guard(Permission.OPERATE)
@require_POST
def host_edit(request: HttpRequest, name: str) -> HttpResponse:
    try:
        host = queries.get_host(name)
    except NotFound as exc:
        return _unknown_host(request, name, exc)
    form = HostEditForm(request.POST)
    if form.is_valid():
        try:
            result = services.set_attributes(actor_for(request), [host.name], form.to_changes())
        except NotFound as exc:
            return _unknown_host(request, name, exc)
        except PatchdayError as exc:
            _add_error(form, exc)
        else:
            changed = sorted(result[host.name])
            if changed:
                messages.success(request, f"Saved {', '.join(c.replace('_', ' ') for c in changed)} of {host.name}.")
            else:
                messages.info(request, "Nothing changed.")
            return redirect("host", name=host.name)
    return render(request, "inventory/detail.html", _host_context(request, host, form), status=400)


# -- groups --------------------------------------------------------------------------------------------


class GroupForm(forms.Form):
    name = forms.CharField(max_length=100)
    description = forms.CharField(required=False, max_length=255)
    kind = forms.ChoiceField(choices=(("dynamic", "dynamic"), ("static", "static")), initial="dynamic")


@dataclass(frozen=True, slots=True)
class GroupRow:
    group: HostGroup
    members: int | None  # None: the rule no longer parses
    rule: list[tuple[str, str]]


def _rule_text(rule: Mapping[str, Any]) -> list[tuple[str, str]]:
    form = HostFilterForm(
        {
            "q": rule.get("q", ""),
            "os": rule.get("os_id", ""),
            "environment": rule.get("environment", ""),
            "exposure": rule.get("exposure", ""),
            "criticality": rule.get("criticality") or "",
            "owner": rule.get("owner", ""),
            "tag": " ".join(rule.get("tags") or ()),
            "mode": rule.get("mode", ""),
            "reboot": {True: "yes", False: "no"}.get(rule.get("reboot_required"), ""),  # type: ignore[arg-type]
            "security": {True: "yes", False: "no"}.get(rule.get("pending_security"), ""),  # type: ignore[arg-type]
        }
    )
    return _describe(form)


def _group_rows() -> list[GroupRow]:
    rows: list[GroupRow] = []
    for group in HostGroup.objects.order_by("name"):
        try:
            members: int | None = queries.group_members(group.name).count()
        except PatchdayError:
            members = None
        rows.append(GroupRow(group, members, _rule_text(group.rule) if group.rule is not None else []))
    return rows


def _groups_context(request: HttpRequest, form: GroupForm, filters: HostFilterForm) -> dict[str, Any]:
    fields = [(name, str(filters[name].value() or "")) for name in HostFilterForm.base_fields]
    return {
        "groups": _group_rows(),
        "form": form,
        "filtered": _describe(filters),
        "filter_fields": [(name, value) for name, value in fields if value],
        "filter_query": urlencode([(name, value) for name, value in fields if value]),
        "matching": queries.hosts(filters.to_filter()).count(),
        "can_operate": _may_operate(request),
    }


@page_guard(Permission.VIEW)
@require_GET
def groups_page(request: HttpRequest) -> HttpResponse:
    """Host groups; with a host filter in the query, operators see a form saving it as a group."""
    context = _groups_context(request, GroupForm(), HostFilterForm(request.GET))
    return render(request, "inventory/groups.html", context)


@page_guard(Permission.OPERATE)
@require_POST
def group_create(request: HttpRequest) -> HttpResponse:
    """A group from a host filter: dynamic keeps the filter as its rule, static the hosts matching it now."""
    form, filters = GroupForm(request.POST), HostFilterForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            if data["kind"] == "dynamic":
                group = services.create_group(actor_for(request), data["name"], data["description"], filters.rule())
            else:
                names = list(queries.hosts(filters.to_filter()).values_list("name", flat=True))
                group = services.create_static_group(actor_for(request), data["name"], data["description"], names)
        except PatchdayError as exc:
            _add_error(form, exc)
        else:
            messages.success(request, f"Group {group.name} is created.")
            return redirect("groups")
    return render(request, "inventory/groups.html", _groups_context(request, form, filters), status=400)


@page_guard(Permission.OPERATE)
@require_POST
def group_delete(request: HttpRequest, name: str) -> HttpResponse:
    try:
        services.delete_group(actor_for(request), name)
        messages.success(request, f"Group {name} is deleted.")
    except PatchdayError as exc:
        messages.error(request, str(exc))
    return redirect("groups")


# -- enrollment ----------------------------------------------------------------------------------------


class SecretForm(forms.Form):
    name = forms.CharField(max_length=100)
    expires_at = forms.DateTimeField(
        required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}), label="Expires"
    )


def install_command(request: HttpRequest, secret: str) -> str:
    """What an admin runs on a new host: fetch the install script from this server and enroll with `secret`."""
    base = load_settings().public_url or request.build_absolute_uri("/").rstrip("/")
    return f"curl -fsSL {base}/agent/install.sh | sudo sh -s -- {secret}"


@dataclass(frozen=True, slots=True)
class SecretRow:
    record: EnrollmentSecret
    state: str


@page_guard(Permission.ADMINISTER)
@require_http_methods(["GET", "POST"])
def enroll_page(request: HttpRequest) -> HttpResponse:
    """Enrollment secrets: create (the secret is shown on this response only), list, revoke."""
    form = SecretForm(request.POST or None)
    secret = None
    if request.method == "POST" and form.is_valid():
        try:
            issued = agents.create_secret(
                actor_for(request), form.cleaned_data["name"], form.cleaned_data["expires_at"]
            )
        except PatchdayError as exc:
            _add_error(form, exc)
        else:
            secret = issued.secret
            form = SecretForm()
    now = timezone.now()
    context = {
        "form": form,
        "secret": secret,
        "command": install_command(request, secret or "<SECRET>"),
        "secrets": [SecretRow(record, agents.secret_state(record, now)) for record in agents.list_secrets()],
    }
    return render(request, "inventory/enroll.html", context, status=400 if form.errors else 200)


@page_guard(Permission.ADMINISTER)
@require_POST
def enroll_revoke(request: HttpRequest, secret_id: str) -> HttpResponse:
    try:
        record = agents.revoke_secret(actor_for(request), secret_id)
        messages.success(request, f"Enrollment secret {record.name} ({record.prefix}) is revoked.")
    except PatchdayError as exc:
        messages.error(request, str(exc))
    return redirect("enroll")
