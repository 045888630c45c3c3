"""The agent downloads: `/agent/patchday-agent.pyz` (the zipapp, built once per process from the running
code) and `/agent/install.sh` (a script that fetches it, checks its SHA-256 and runs its install). Public:
they carry no secret; the enrollment secret is the admin's to pass to the script."""

from __future__ import annotations

import hashlib
from functools import lru_cache

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from patchday.accounts.guards import PUBLIC, page_guard
from patchday.agent.build import INTERPRETER, install_script, zipapp_archive
from patchday.agent.errors import ConfigError
from patchday.settings import load_settings


@lru_cache(maxsize=1)
def agent_zipapp() -> tuple[bytes, str]:
    """The zipapp's bytes (#! line + zip) and their SHA-256."""
    data = b"#!" + INTERPRETER.encode() + b"\n" + zipapp_archive()
    return data, hashlib.sha256(data).hexdigest()


def _server_url(request: HttpRequest) -> str:
    return load_settings().public_url or request.build_absolute_uri("/").rstrip("/")


@page_guard(PUBLIC)
@require_GET
def agent_download(request: HttpRequest) -> HttpResponse:
    data, digest = agent_zipapp()
    if request.headers.get("If-None-Match") == f'"{digest}"':
        return HttpResponse(status=304)
    response = HttpResponse(data, content_type="application/zip")
    response["Content-Disposition"] = 'attachment; filename="patchday-agent.pyz"'
    response["ETag"] = f'"{digest}"'
    response["X-Checksum-SHA256"] = digest
    return response


@page_guard(PUBLIC)
@require_GET
def install_sh(request: HttpRequest) -> HttpResponse:
    server = _server_url(request)
    _, digest = agent_zipapp()
    insecure = server.startswith("http://")
    try:
        script = install_script(server, pyz_sha256=digest, insecure_http=insecure)
    except ConfigError as exc:
        return HttpResponse(f"# cannot build the install script: {exc}\n", status=500, content_type="text/plain")
    return HttpResponse(script, content_type="text/x-shellscript; charset=utf-8")
