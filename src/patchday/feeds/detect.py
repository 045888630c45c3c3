"""Which feed a file holds, told from its content (so `patchday feeds import PATH` needs no --source)."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

from patchday.core.errors import FeedUnreadable

SOURCES = ("osv", "debian-dsa", "debian-dla", "kev", "epss", "nvd", "cve5")
_TRACKER_LINE = re.compile(rb"^\[\d{2} \w{3} \d{4}\] (DSA|DLA)-")


def _head(path: Path, size: int = 8192) -> bytes:
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rb") as handle:
                return handle.read(size)
        with path.open("rb") as handle:
            return handle.read(size)
    except (OSError, EOFError) as exc:
        raise FeedUnreadable(f"cannot read {path}: {exc}") from None


def _first_file(directory: Path) -> Path:
    for candidate in sorted(directory.rglob("*")):
        if candidate.is_file() and candidate.name.endswith((".json", ".json.gz")):
            return candidate
    raise FeedUnreadable(f"{directory} holds no .json or .json.gz file to tell its feed from")


def detect_source(path: Path) -> str:
    """One of SOURCES; raises FeedUnreadable naming the file when the content matches none."""
    if not path.exists():
        raise FeedUnreadable(f"{path} does not exist")
    if path.is_dir():
        path = _first_file(path)
    if path.suffix == ".zip":
        return "osv"
    head = _head(path).lstrip()
    if match := _TRACKER_LINE.match(head):
        return "debian-dsa" if match.group(1) == b"DSA" else "debian-dla"
    if head.startswith((b"#model_version", b"#source", b"cve,epss")):
        return "epss"
    lowered = head[:512].lower()
    if lowered.startswith((b"<!doctype html", b"<html")):
        raise FeedUnreadable(f"{path} is an HTML page, not a feed file (an error page saved instead of the data?)")
    if b'"catalogVersion"' in head:
        return "kev"
    if (b'"dataType"' in head and b"CVE_RECORD" in head) or b'"cveMetadata"' in head:
        return "cve5"
    if b'"resultsPerPage"' in head or b'"vulnStatus"' in head or b'"sourceIdentifier"' in head:
        return "nvd"
    if b'"affected"' in head or b'"schema_version"' in head or b'"modified"' in head:
        return "osv"
    raise FeedUnreadable(f"{path}: cannot tell which feed this is; pass --source ({', '.join(SOURCES)})")
