"""JSON over HTTPS to the patchday server: certificate verification always on, timeouts, no redirects.

Plain http:// is refused unless the server is on a loopback address or the operator said
`--insecure-http` explicitly. Redirects are refused too: following one could carry the host
token to another host or down to plain http. Proxies come from the usual environment variables.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import socket
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from patchday.agent import USER_AGENT
from patchday.agent.errors import ConfigError, ServerRefused, ServerUnavailable

MAX_REPLY_BYTES = 4 * 1024 * 1024  # a reply larger than this is not a patchday answer
MAX_RETRY_AFTER = 3600.0


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_server_url(url: str, insecure_http: bool = False) -> str:
    """The server's base URL without a trailing slash; raises ConfigError for a URL the agent will not use.

    https:// always works; http:// only for a loopback host or with `insecure_http`. User names,
    passwords, queries, fragments, whitespace and control characters are refused.
    """
    if not url or any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise ConfigError(f"the server URL {url!r} is empty or contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"the server URL {url!r} is not a valid URL: {exc}") from exc
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http") or not host:
        raise ConfigError(f"the server URL {url!r} must look like https://patchday.example.com")
    if parts.username is not None or parts.password is not None:
        raise ConfigError("the server URL must not carry a user name or password")
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise ConfigError(f"the server URL {url!r} must not have a query or fragment")
    if parts.scheme == "http" and not insecure_http and not is_loopback(host):
        raise ConfigError(
            f"refusing plain http:// to {host}: the host token would cross the network unencrypted; "
            "use https:// (with --ca-file for a private CA) or pass --insecure-http explicitly"
        )
    del port  # parsed only to reject a bad port early
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def tls_context(ca_file: str | None = None) -> ssl.SSLContext:
    """A verifying client context: the system's CAs, or only `ca_file`'s when it is given; TLS 1.2 or newer."""
    try:
        context = ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load the CA file {ca_file}: {exc}") from exc
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        return None  # urllib then raises HTTPError with the 3xx status, handled below


class Transport:
    """Sends JSON requests to one patchday server and returns the decoded JSON object of the answer."""

    def __init__(
        self, server: str, *, ca_file: str | None = None, insecure_http: bool = False, timeout: float = 30.0
    ) -> None:
        self.base = check_server_url(server, insecure_http)
        self.timeout = timeout
        handlers: list[urllib.request.BaseHandler] = [_RefuseRedirects()]
        if self.base.startswith("https:"):
            handlers.append(urllib.request.HTTPSHandler(context=tls_context(ca_file)))
        self._opener = urllib.request.build_opener(*handlers)

    def request(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        token: str | None = None,
        timeout: float | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """(status, JSON object) of a 2xx answer; raises ServerUnavailable (retry later) or ServerRefused (4xx)."""
        url = self.base + path
        data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8") if body is not None else None
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if token:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310 - scheme checked
        action = f"{method} {url}"
        try:
            with self._opener.open(request, timeout=timeout or self.timeout) as response:
                status = response.status
                raw = response.read(MAX_REPLY_BYTES + 1)
        except urllib.error.HTTPError as exc:
            raise _refusal(action, exc) from None
        except urllib.error.URLError as exc:
            raise ServerUnavailable(f"{action} failed: {_reason(exc.reason)}") from None
        except (OSError, http.client.HTTPException) as exc:  # timeouts, resets, truncated answers
            raise ServerUnavailable(f"{action} failed: {_reason(exc)}") from None
        if len(raw) > MAX_REPLY_BYTES:
            raise ServerUnavailable(f"{action}: the answer is larger than {MAX_REPLY_BYTES} bytes")
        return status, _json_object(action, status, raw)


def _reason(reason: object) -> str:
    if isinstance(reason, ssl.SSLCertVerificationError):
        return f"the server's TLS certificate is not trusted ({reason.verify_message}); see --ca-file"
    if isinstance(reason, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(reason, BaseException):
        return str(reason) or type(reason).__name__
    return str(reason)


def _json_object(action: str, status: int, raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        document = json.loads(raw.decode("utf-8"))
    except ValueError:
        raise ServerUnavailable(f"{action}: HTTP {status} with an answer that is not JSON (a proxy?)") from None
    if not isinstance(document, dict):
        raise ServerUnavailable(f"{action}: HTTP {status} with JSON that is not an object")
    return document


def _refusal(action: str, exc: urllib.error.HTTPError) -> ServerUnavailable | ServerRefused:
    status = exc.code
    try:
        raw = exc.read(MAX_REPLY_BYTES + 1) if exc.fp is not None else b""
    except (OSError, http.client.HTTPException):
        raw = b""
    finally:
        exc.close()
    if status == 429 or status >= 500:
        return ServerUnavailable(f"{action}: the server answered HTTP {status}", _retry_after(exc.headers))
    if 300 <= status < 400:
        location = exc.headers.get("Location", "") if exc.headers else ""
        return ServerRefused(f"{action}: the server redirects to {location!r}; configure that URL instead", status)
    try:
        document = _json_object(action, status, raw[:MAX_REPLY_BYTES])
    except ServerUnavailable:
        document = {}
    error = document.get("error")
    if not isinstance(error, dict):
        error = {}
    code = str(error.get("code", ""))
    field = _error_field(error)
    message = str(error.get("message", "")) or exc.reason or "refused"
    where = f" (field {field})" if field else ""
    return ServerRefused(f"{action}: HTTP {status}: {message}{where}", status, code, field, error)


def _error_field(error: dict[str, Any]) -> str:
    """The field an error names: `field` (docs/agent.md), else the first of the API's `details` entries."""
    field = error.get("field")
    if isinstance(field, str) and field:
        return field
    details = error.get("details")
    if isinstance(details, list) and details and isinstance(details[0], dict):
        return str(details[0].get("field", "") or "")
    return ""


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    if not isinstance(value, str):
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None  # the HTTP-date form is rare from an API; the backoff schedule applies instead
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)
