"""The notice every dashboard page shows while the feed data is only the bundled snapshot."""

from __future__ import annotations

from typing import Any

from django import template

from patchday.advisories import queries

register = template.Library()
_CACHE_ATTRIBUTE = "_patchday_bundled_snapshot"  # one query per request, however often the tag is rendered


@register.inclusion_tag("advisories/_snapshot_notice.html", takes_context=True)
def bundled_snapshot_notice(context: template.Context) -> dict[str, Any]:
    request = context.get("request")
    if request is not None and hasattr(request, _CACHE_ATTRIBUTE):
        snapshot = getattr(request, _CACHE_ATTRIBUTE)
    else:
        snapshot = queries.bundled_snapshot()
        if request is not None:
            setattr(request, _CACHE_ATTRIBUTE, snapshot)
    user = context.get("user")
    return {"snapshot": snapshot, "signed_in": bool(user and user.is_authenticated)}
