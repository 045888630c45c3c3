"""Dashboard pages of the audit trail: filtered log with export links, and chain verification."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from django import forms
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.http import urlencode
from django.views.decorators.http import require_GET

from patchday.accounts.guards import page_guard
from patchday.audit import services
from patchday.audit.models import AuditRecord
from patchday.core.roles import Permission


class AuditFilterForm(forms.Form):
    actor = forms.CharField(required=False, max_length=150)
    action = forms.CharField(required=False, max_length=64)
    object_type = forms.CharField(required=False, max_length=64)
    object_id = forms.CharField(required=False, max_length=128)
    since = forms.DateTimeField(required=False)
    until = forms.DateTimeField(required=False)

    def to_filter(self) -> services.AuditFilter:
        data = self.cleaned_data if self.is_valid() else {}
        since: datetime | None = data.get("since")
        until: datetime | None = data.get("until")
        return services.AuditFilter(
            actor=data.get("actor") or None,
            action=data.get("action") or None,
            object_type=data.get("object_type") or None,
            object_id=data.get("object_id") or None,
            since=since,
            until=until,
        )


@dataclass(frozen=True, slots=True)
class RecordRow:
    """One record as the log page shows it: `changes` as (field, value) pairs instead of raw JSON."""

    record: AuditRecord
    changes: list[tuple[str, str]]


def _change_pairs(changes: str) -> list[tuple[str, str]]:
    try:
        decoded = json.loads(changes)
    except ValueError:
        return [("", changes)]  # shown as stored; verifying the chain reports a damaged record
    if not isinstance(decoded, dict):
        return [("", changes)]
    return [(key, value if isinstance(value, str) else json.dumps(value)) for key, value in decoded.items()]


@page_guard(Permission.READ_AUDIT)
@require_GET
def audit_log(request: HttpRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET or None)
    rows = services.search(form.to_filter())
    page = Paginator(rows, 50).get_page(request.GET.get("page"))
    query = urlencode([(k, str(v)) for k, v in request.GET.items() if k != "page" and v])
    shown = [RecordRow(record, _change_pairs(record.changes)) for record in page]
    context = {"form": form, "page": page, "rows": shown, "query": query}
    template = "audit/_records.html" if request.headers.get("HX-Request") else "audit/log.html"
    return render(request, template, context)


@page_guard(Permission.READ_AUDIT)
@require_GET
def audit_verify(request: HttpRequest) -> HttpResponse:
    return render(request, "audit/_verify.html", {"report": services.verify()})
