"""Reading a feed file from disk: plain or gzipped, never more than a limit, errors as FeedUnreadable."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

from patchday.core.errors import FeedUnreadable


def read_limited(path: Path, label: str, max_bytes: int) -> bytes:
    """The (decompressed, for .gz) bytes of `path`; refuses more than `max_bytes` without reading them all.

    `label` names the feed in messages ("NVD", "OSV"); a truncated or corrupt gzip is refused, not raised raw.
    """
    try:
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rb") as handle:
            raw: bytes = handle.read(max_bytes + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise FeedUnreadable(f"{label}: cannot read file {path}: {exc}") from None
    if len(raw) > max_bytes:
        raise FeedUnreadable(f"{label}: file {path} is larger than {max_bytes} bytes")
    return raw
