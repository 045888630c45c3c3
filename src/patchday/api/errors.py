"""The one error shape of the API, and the one table from error types to HTTP status codes.

Every error response is {"error": {"code": str, "message": str, "details": list | dict}}.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any, Final

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from patchday.core import errors as core

logger = logging.getLogger(__name__)

STATUS_BY_ERROR: Final[Mapping[type[core.PatchdayError], int]] = {
    core.InvalidInput: 422,
    core.NotFound: 404,
    core.Conflict: 409,
    core.AuthenticationFailed: 401,
    core.LoginThrottled: 429,
    core.PermissionDenied: 403,
    core.ConfigurationError: 500,
    core.DatabaseUnavailable: 503,
    core.AuditChainBroken: 500,
    core.FeedUnavailable: 503,
}

CODE_BY_STATUS: Final[Mapping[int, str]] = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "throttled",
    500: "internal_error",
    503: "unavailable",
}


def error_response(status: int, code: str, message: str, details: Any = None) -> JsonResponse:
    body = {"error": {"code": code, "message": message, "details": details if details is not None else []}}
    return JsonResponse(body, status=status)


def status_for(exc: core.PatchdayError) -> int:
    for klass in type(exc).__mro__:
        if klass in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[klass]
    return 400


PARAMETER_SOURCES: Final = frozenset({"body", "query", "path", "header", "cookie", "form", "file"})


def _field_path(loc: list[Any] | tuple[Any, ...]) -> str:
    """The field as the client named it ("username", "page", "hosts.0.name"), the name services use too.

    ninja's location starts with where the value came from ("body", "query"); it is dropped, except
    when the whole body is at fault ("body").
    """
    parts = [str(part) for part in loc]
    if len(parts) > 1 and parts[0] in PARAMETER_SOURCES:
        parts = parts[1:]
    return ".".join(parts) or "body"


def _validation_details(errors: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [{"field": _field_path(e.get("loc", ())), "message": str(e.get("msg", "invalid"))} for e in errors]


def install(api: NinjaAPI) -> None:
    """Register handlers so every error leaving `api` has the one shape."""

    @api.exception_handler(core.PatchdayError)
    def patchday_error(request: HttpRequest, exc: core.PatchdayError) -> HttpResponse:
        details: list[dict[str, str]] | dict[str, object] = []
        if isinstance(exc, core.InvalidInput) and exc.field:
            details = [{"field": exc.field, "message": str(exc)}]
        elif isinstance(exc, core.Conflict) and exc.details:
            details = exc.details
        response = error_response(status_for(exc), exc.code, str(exc), details)
        if isinstance(exc, core.LoginThrottled):
            response["Retry-After"] = str(exc.retry_after)
        if isinstance(exc, core.AuthenticationFailed):
            response["WWW-Authenticate"] = 'Bearer realm="patchday"'
        return response

    @api.exception_handler(ValidationError)
    def validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        details = _validation_details(list(exc.errors))
        fields = ", ".join(d["field"] for d in details)
        return error_response(422, "invalid_input", f"invalid input in: {fields}", details)

    @api.exception_handler(AuthenticationError)
    def authentication_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        response = error_response(401, "not_authenticated", "send an API token (Authorization: Bearer ...)")
        response["WWW-Authenticate"] = 'Bearer realm="patchday"'
        return response

    @api.exception_handler(HttpError)
    def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        if isinstance(exc.__cause__, (json.JSONDecodeError, UnicodeDecodeError)):
            cause = exc.__cause__
            return error_response(
                422,
                "invalid_input",
                f"request body is not valid JSON: {cause}",
                [{"field": "body", "message": str(cause)}],
            )
        status = exc.status_code
        return error_response(status, CODE_BY_STATUS.get(status, "error"), str(exc.message))

    @api.exception_handler(RequestDataTooBig)
    def too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
        return error_response(
            413, "payload_too_large", f"request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes"
        )

    @api.exception_handler(SuspiciousOperation)
    def suspicious(request: HttpRequest, exc: SuspiciousOperation) -> HttpResponse:
        return error_response(400, "bad_request", "the request was refused as malformed")

    @api.exception_handler(Http404)
    def not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
        return error_response(404, "not_found", str(exc) or "not found")

    @api.exception_handler(Exception)
    def unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
        logger.exception("unhandled error in %s %s", request.method, request.path)
        return error_response(500, "internal_error", "internal error; the server log has the details")
