"""The NinjaAPI instance: every area's router mounted under /api/v1, with the one error shape."""

from __future__ import annotations

from typing import Any

from django.urls import URLPattern, URLResolver
from django.views.decorators.csrf import csrf_exempt
from ninja import NinjaAPI
from ninja.errors import ValidationError, ValidationErrorContext

from patchday import __version__
from patchday.accounts.api import router as accounts_router
from patchday.advisories.api import router as advisories_router
from patchday.api import errors
from patchday.audit.api import router as audit_router
from patchday.findings.api import router as findings_router
from patchday.inventory.api import agent_router
from patchday.inventory.api import router as hosts_router
from patchday.notifications.api import router as notifications_router
from patchday.reports.api import router as reports_router
from patchday.reports.evidence_api import router as evidence_router
from patchday.rollouts.api import agent_jobs_router
from patchday.rollouts.api import router as rollouts_router
from patchday.worker.api import router as worker_router


class PatchdayApi(NinjaAPI):
    """NinjaAPI whose validation errors locate a field in what the client sent ("body", "username")."""

    def validation_error_from_error_contexts(
        self, error_contexts: list[ValidationErrorContext[Any]]
    ) -> ValidationError:
        errors: list[dict[str, Any]] = []
        for context in error_contexts:
            # A single body parameter is read from the whole body, but ninja puts its parameter name
            # into the location ("body.body.username"), a name the client never sent.
            wrapper = getattr(context.model, "__read_from_single_attr__", None)
            for error in super().validation_error_from_error_contexts([context]).errors:
                loc = tuple(error["loc"])
                if wrapper and loc[1:2] == (wrapper,):
                    error["loc"] = loc[:1] + loc[2:]
                errors.append(error)
        return ValidationError(errors)

    def _get_urls(self) -> list[URLResolver | URLPattern]:
        urls = super()._get_urls()
        for url in urls:
            if isinstance(url, URLPattern) and url.name == "api-root":
                # The root only answers 404 (pointing at the docs); without this, CSRF turned a POST there into a 403.
                url.callback = csrf_exempt(url.callback)
        return urls


api = PatchdayApi(
    title="patchday API",
    version="1",
    description=f"patchday {__version__}. Authenticate with `Authorization: Bearer <token>` "
    "(create one with `patchday token create` or on the Tokens page).",
    urls_namespace="api",
    docs_url="/docs",
    openapi_url="/openapi.json",
)
errors.install(api)
api.add_router("/", accounts_router)
api.add_router("/", audit_router)
api.add_router("/", advisories_router)
api.add_router("/", worker_router)
api.add_router("/", hosts_router)
api.add_router("/", findings_router)
api.add_router("/", agent_router)
api.add_router("/", notifications_router)
api.add_router("/", rollouts_router)
api.add_router("/", agent_jobs_router)
api.add_router("/", reports_router)
api.add_router("/", evidence_router)
