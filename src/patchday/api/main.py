"""The NinjaAPI instance: every area's router mounted under /api/v1, with the one error shape."""

from __future__ import annotations

from ninja import NinjaAPI

from patchday import __version__
from patchday.accounts.api import router as accounts_router
from patchday.api import errors
from patchday.audit.api import router as audit_router
from patchday.worker.api import router as worker_router

api = NinjaAPI(
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
api.add_router("/", worker_router)
