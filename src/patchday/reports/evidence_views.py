"""Dashboard page of evidence packs: pick a framework and a period, download the zip; the report schedules."""

from __future__ import annotations

import tempfile
from datetime import timedelta
from typing import cast

from django import forms
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from patchday.accounts.guards import actor_for, page_guard
from patchday.core.errors import PatchdayError
from patchday.core.roles import Permission
from patchday.reports import compliance, evidence, schedules


class EvidenceForm(forms.Form):
    framework = forms.ChoiceField(choices=[(f.key, f.name) for f in compliance.FRAMEWORKS.values()])
    start = forms.DateField(label="From")
    end = forms.DateField(label="To")


def _initial() -> dict[str, object]:
    today = timezone.now().date()
    return {"framework": "pci-dss", "start": today - timedelta(days=90), "end": today - timedelta(days=1)}


@page_guard(Permission.READ_AUDIT)
def evidence_page(request: HttpRequest) -> HttpResponse:
    """GET: the form (the last 90 days by default); POST: the evidence pack as a download, or the form's errors."""
    if request.method != "POST":
        form = EvidenceForm(initial=_initial())
        return render(request, "reports/evidence.html", _context(form))
    form = EvidenceForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        spool = tempfile.TemporaryFile()  # noqa: SIM115 (FileResponse closes it once sent)
        try:
            pack = evidence.write_pack(data["framework"], data["start"], data["end"], actor_for(request), spool)
        except PatchdayError as exc:
            spool.close()
            field = {"to": "end", "from": "start"}.get(getattr(exc, "field", None) or "")
            form.add_error(field if field in form.fields else None, str(exc))
        else:
            spool.seek(0)
            download = FileResponse(spool, as_attachment=True, filename=pack.filename, content_type="application/zip")
            return cast(HttpResponse, download)  # page_guard types pages as HttpResponse; Django serves either
    return render(request, "reports/evidence.html", _context(form), status=400)


def _context(form: EvidenceForm) -> dict[str, object]:
    return {
        "form": form,
        "frameworks": [(f, [c.id for c in f.controls]) for f in compliance.FRAMEWORKS.values()],
        "schedules": list(schedules.schedules()[:50]),
        "files": evidence.FILE_DESCRIPTIONS,
    }
