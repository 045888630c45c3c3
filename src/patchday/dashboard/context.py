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
                items.append({"label": item.label, "url": url, "current": current})
    return {"nav_items": items, "patchday_version": __version__}
