"""Template context shared by every page: the navigation the current user may see."""

from __future__ import annotations

from django.http import HttpRequest
from django.urls import reverse

from patchday import __version__
from patchday.dashboard.navigation import NAVIGATION


def navigation(request: HttpRequest) -> dict[str, object]:
    user = request.user
    items: list[dict[str, object]] = []
    if user.is_authenticated:
        for item in NAVIGATION:
            if user.may(item.permission):
                url = reverse(item.url_name)
                current = request.path == url or (url != "/" and request.path.startswith(url))
                if item.section and request.path.startswith(item.section):
                    current = True
                counted = item.count is not None and user.may(item.count_permission or item.permission)
                count = item.count() if counted and item.count is not None else 0
                items.append(
                    {
                        "label": item.label,
                        "url": url,
                        "current": current,
                        "count": count,
                        "count_label": item.count_label,
                    }
                )
    return {"nav_items": items, "patchday_version": __version__}
