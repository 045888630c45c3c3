"""Gives errors produced outside the API's own handlers (unknown routes, 405s, CSRF) the API's error shape."""

from __future__ import annotations

from collections.abc import Callable

from django.db import transaction
from django.http import HttpRequest, HttpResponse

from patchday.api.errors import CODE_BY_STATUS, error_response

API_PREFIX = "/api/"

MESSAGES = {
    404: "no such API route",
    405: "method not allowed on this route",
    403: "forbidden (CSRF check failed: send the X-CSRFToken header, or use an API token)",
    413: "request body too large",
}


class ApiErrorShapeMiddleware:
    """Rewrites non-JSON error responses under /api/ into {"error": {...}}."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not request.path.startswith(API_PREFIX) or response.status_code < 400:
            return response
        if response.get("Content-Type", "").startswith("application/json"):
            return response
        status = response.status_code
        shaped = error_response(
            status, CODE_BY_STATUS.get(status, "error"), MESSAGES.get(status, response.reason_phrase)
        )
        if allow := response.get("Allow"):
            shaped["Allow"] = allow
        return shaped


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class ApiTransactionMiddleware:
    """Runs each unsafe API request in one transaction, rolled back when the answer is an error.

    Services already make each change atomic; this extends the guarantee to the whole request,
    so a request that fails anywhere (a second service call, building the response) changes
    nothing and leaves no audit record. Reads are left out: on SQLite a write transaction
    would serialise them for nothing.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(API_PREFIX) or request.method in SAFE_METHODS:
            return self.get_response(request)
        with transaction.atomic():
            response = self.get_response(request)
            if response.status_code >= 400:
                transaction.set_rollback(True)
        return response
