"""Dashboard pages of vulnerabilities and feeds: the searchable list, one CVE's story, feed runs and status."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django import forms
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_GET

from patchday.accounts.guards import page_guard
from patchday.advisories import queries
from patchday.core.errors import NotFound
from patchday.core.roles import Permission
from patchday.core.severity import Rating

PAGE_SIZE = 50
YES_NO = {"yes": True, "no": False}
KEV_CHOICES = (("", "Any"), ("yes", "In KEV"), ("no", "Not in KEV"))
FIX_CHOICES = (("", "Any"), ("yes", "Fix available"), ("no", "No fix yet"))
EPSS_CHOICES = (
    ("", "Any"),
    ("0.01", "1% or more"),
    ("0.1", "10% or more"),
    ("0.5", "50% or more"),
    ("0.9", "90% or more"),
)
SEVERITY_CHOICES = (
    ("", "Any"),
    (Rating.CRITICAL.value, "Critical"),
    (Rating.HIGH.value, "High"),
    (Rating.MEDIUM.value, "Medium"),
    (Rating.LOW.value, "Low"),
    (Rating.UNKNOWN.value, "No score"),
)


class VulnerabilityFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=200)
    kev = forms.ChoiceField(required=False, choices=KEV_CHOICES)
    epss_min = forms.FloatField(required=False, min_value=0, max_value=1, label="EPSS")
    severity = forms.ChoiceField(required=False, choices=SEVERITY_CHOICES)
    has_fix = forms.ChoiceField(required=False, choices=FIX_CHOICES, label="Fix")

    def to_filter(self) -> queries.VulnerabilityFilter:
        self.is_valid()
        data = self.cleaned_data  # the valid fields only: one bad value does not drop the others
        severity = data.get("severity")
        return queries.VulnerabilityFilter(
            text=data.get("q") or "",
            kev=YES_NO.get(data.get("kev") or ""),
            epss_min=data.get("epss_min"),
            severities=frozenset({Rating(severity)}) if severity else frozenset(),
            has_fix=YES_NO.get(data.get("has_fix") or ""),
        )


@dataclass(frozen=True, slots=True)
class Option:
    value: str
    label: str
    selected: bool


def _options(choices: Sequence[tuple[str, str]], current: object) -> list[Option]:
    """<option>s of a filter select; a current value the choices lack (typed into the URL) is kept as its own."""
    text = "" if current is None else str(current)
    options = [Option(value, label, value == text) for value, label in choices]
    if text and not any(o.selected for o in options):
        options.append(Option(text, text, True))
    return options


def _query(request: HttpRequest, *, drop: str = "page") -> str:
    return urlencode([(k, str(v)) for k, v in request.GET.items() if k != drop and v])


@page_guard(Permission.VIEW)
@require_GET
def vulnerabilities_page(request: HttpRequest) -> HttpResponse:
    form = VulnerabilityFilterForm(request.GET)
    listing = queries.search_vulnerabilities(form.to_filter())
    page = Paginator(listing, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "form": form,
        "page": page,
        "query": _query(request),
        "kev_options": _options(KEV_CHOICES, form["kev"].value()),
        "epss_options": _options(EPSS_CHOICES, form["epss_min"].value()),
        "severity_options": _options(SEVERITY_CHOICES, form["severity"].value()),
        "fix_options": _options(FIX_CHOICES, form["has_fix"].value()),
    }
    template = "advisories/_vulnerabilities.html" if request.headers.get("HX-Request") else "advisories/list.html"
    return render(request, template, context)


@dataclass(frozen=True, slots=True)
class Sparkline:
    """An EPSS history as an SVG polyline: x by date, y from 0 to `top` (the highest probability shown)."""

    points: str  # "x,y x,y ...": numbers only
    width: int
    height: int
    top: float
    first: queries.Epss
    last: queries.Epss


def sparkline(history: Sequence[queries.Epss], width: int = 320, height: int = 56) -> Sparkline | None:
    """None for fewer than two scores: one point is no trend."""
    if len(history) < 2:
        return None
    first, last = history[0], history[-1]
    span = max((last.score_date - first.score_date).days, 1)
    top = max(max(s.probability for s in history), 0.0001)
    pad = 3  # keep the line's stroke inside the box
    points = " ".join(
        f"{(s.score_date - first.score_date).days / span * (width - 2 * pad) + pad:.1f},"
        f"{height - pad - s.probability / top * (height - 2 * pad):.1f}"
        for s in history
    )
    return Sparkline(points, width, height, top, first, last)


@page_guard(Permission.VIEW)
@require_GET
def vulnerability_page(request: HttpRequest, cve_id: str) -> HttpResponse:
    try:
        story = queries.vulnerability_story(cve_id)
    except NotFound as exc:
        return render(request, "advisories/unknown.html", {"cve_id": cve_id, "reason": str(exc)}, status=404)
    if story.cve_id != cve_id:
        return redirect("vulnerability", cve_id=story.cve_id)  # one address per CVE: cve-2024-1 -> CVE-2024-1
    hosts = Paginator(queries.affected_hosts(story.cve_id), PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "story": story,
        "record": story.record,
        "best": story.scores[0] if story.scores and story.scores[0].is_best else None,
        "sparkline": sparkline(story.epss.history) if story.epss else None,
        "hosts": hosts,
        "query": _query(request),
    }
    return render(request, "advisories/detail.html", context)


@page_guard(Permission.VIEW)
@require_GET
def feeds_page(request: HttpRequest) -> HttpResponse:
    today = timezone.now().date()
    statuses = queries.feed_status(today)
    source = request.GET.get("source") or ""
    runs = Paginator(queries.feed_runs(source or None), PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "statuses": statuses,
        "stale_after_days": queries.STALE_AFTER_DAYS,
        "today": today,
        "runs": runs,
        "page": runs,
        "source": source,
        "sources": [s.source for s in statuses],
        "query": _query(request),
    }
    return render(request, "advisories/feeds.html", context)
