"""Download a feed file over HTTP(S): conditional requests, bounded retries, a size limit, a progress bar.

httpx errors never leave this module: they become FeedUnavailable, naming the URL.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import httpx
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from patchday import __version__
from patchday.core.errors import FeedUnavailable

MAX_BYTES: Final = 1 << 30  # 1 GiB: OSV's largest ecosystem archive is a few hundred MB
TRIES: Final = 3
RETRY_DELAY = 1.0  # seconds before the second try; doubled before each further one
TIMEOUT: Final = httpx.Timeout(60.0, connect=15.0)
CHUNK: Final = 1 << 16


@dataclass(frozen=True, slots=True)
class Validators:
    """What the server said identifies the copy we hold, sent back as If-None-Match / If-Modified-Since."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True, slots=True)
class Fetched:
    """The result of fetch: `modified` is False on 304 Not Modified (nothing was written)."""

    modified: bool
    validators: Validators
    size: int = 0


def fetch(
    url: str,
    target: Path,
    known: Validators | None = None,
    *,
    progress: bool = False,
    max_bytes: int | None = None,
    transport: httpx.BaseTransport | None = None,
) -> Fetched:
    """Download `url` into `target` (replaced only when the whole body arrived), or learn it is unchanged.

    `known` makes the request conditional. Connection errors and 5xx answers are tried TRIES times with
    exponential backoff; other answers are not retried. HTTPS_PROXY and friends are honoured.
    `max_bytes` defaults to MAX_BYTES.
    Raises FeedUnavailable naming the URL: unreachable, an error status, a body larger than `max_bytes`.
    """
    headers = {"User-Agent": f"patchday/{__version__}"}
    if known and known.etag:
        headers["If-None-Match"] = known.etag
    if known and known.last_modified:
        headers["If-Modified-Since"] = known.last_modified
    with httpx.Client(timeout=TIMEOUT, follow_redirects=True, trust_env=True, transport=transport) as client:
        for attempt in range(1, TRIES + 1):
            try:
                limit = MAX_BYTES if max_bytes is None else max_bytes
                return _fetch_once(client, url, target, headers, progress=progress, max_bytes=limit)
            except _Retryable as exc:
                if attempt == TRIES:
                    raise FeedUnavailable(f"downloading {url} failed after {TRIES} tries: {exc}") from exc
                time.sleep(RETRY_DELAY * 2 ** (attempt - 1))
    raise AssertionError("unreachable")  # pragma: no cover


class _Retryable(Exception):
    """A failure worth another try: the connection broke, or the server answered 5xx."""


def _fetch_once(
    client: httpx.Client, url: str, target: Path, headers: dict[str, str], *, progress: bool, max_bytes: int
) -> Fetched:
    partial = target.with_name(target.name + ".part")
    try:
        with client.stream("GET", url, headers=headers) as response:
            if response.status_code == httpx.codes.NOT_MODIFIED:
                return Fetched(False, Validators(headers.get("If-None-Match"), headers.get("If-Modified-Since")))
            if response.is_server_error:
                raise _Retryable(f"the server answered {response.status_code} {response.reason_phrase}")
            if not response.is_success:
                raise FeedUnavailable(f"downloading {url}: the server answered {response.status_code} "
                                      f"{response.reason_phrase}")  # fmt: skip
            total = int(response.headers.get("Content-Length") or 0) or None
            if total is not None and total > max_bytes:
                raise FeedUnavailable(f"downloading {url}: {total} bytes is larger than the limit of {max_bytes}")
            size = 0
            target.parent.mkdir(parents=True, exist_ok=True)
            with partial.open("wb") as handle, _bar(progress, url, total) as advance:
                for chunk in response.iter_bytes(CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise FeedUnavailable(f"downloading {url}: the body is larger than the limit of {max_bytes}")
                    handle.write(chunk)
                    advance(len(chunk))
            validators = Validators(response.headers.get("ETag"), response.headers.get("Last-Modified"))
    except httpx.TransportError as exc:
        partial.unlink(missing_ok=True)
        raise _Retryable(f"{type(exc).__name__}: {exc}") from exc
    except httpx.HTTPError as exc:
        partial.unlink(missing_ok=True)
        raise FeedUnavailable(f"downloading {url} failed: {exc}") from exc
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(target)
    return Fetched(True, validators, size)


@contextlib.contextmanager
def _bar(shown: bool, url: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """A Rich progress bar with byte counts (when `shown`); yields a function that adds downloaded bytes."""
    if not shown:
        yield lambda _: None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, transient=False) as bar:
        task = bar.add_task(url.rsplit("/", 1)[-1] or url, total=total)
        yield lambda n: bar.advance(task, n)
