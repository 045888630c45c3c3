"""Which feed a file holds, told from its content (so `patchday feeds import PATH` needs no --source).

A directory or a tar archive is told from its first record file (.json, .json.gz, .yaml; a mirror's
SOURCES.json or manifest.json is not one); a .zip is an osv.dev ecosystem archive; YAML is OSV (PyPA)."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

from patchday.core.errors import FeedUnreadable
from patchday.feeds.files import is_tar, tar_head

SOURCES = ("osv", "debian-dsa", "debian-dla", "kev", "epss", "nvd", "cve5")
_TRACKER_LINE = re.compile(rb"^\[\d{2} \w{3} \d{4}\] (DSA|DLA)-")
_NOT_RECORDS = frozenset({"SOURCES.json", "manifest.json", "delta.json", "deltaLog.json"})  # mirrors' bookkeeping


def _head(path: Path, size: int = 8192) -> bytes:
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rb") as handle:
                return handle.read(size)
        with path.open("rb") as handle:
            return handle.read(size)
    except (OSError, EOFError) as exc:
        raise FeedUnreadable(f"cannot read {path}: {exc}") from None


def _is_record_file(name: str) -> bool:
    return name.endswith((".json", ".json.gz", ".yaml", ".yml")) and name not in _NOT_RECORDS


def _first_file(directory: Path) -> Path:
    for candidate in sorted(directory.rglob("*")):
        if candidate.is_file() and _is_record_file(candidate.name):
            return candidate
    raise FeedUnreadable(f"{directory} holds no .json, .json.gz or .yaml file to tell its feed from")


def detect_source(path: Path) -> str:
    """One of SOURCES; raises FeedUnreadable naming the file when the content matches none."""
    if not path.exists():
        raise FeedUnreadable(f"{path} does not exist")
    if path.is_dir():
        path = _first_file(path)
    if path.suffix == ".zip":
        return "osv"
    if is_tar(path):  # told from its first record file, read from the stream
        name, head = tar_head(path, "archive", lambda n: _is_record_file(n) and not n.endswith(".gz"))
        if name.endswith((".yaml", ".yml")):
            return "osv"
        return _from_json_head(f"{path} member {name}", head.lstrip())
    if path.name.endswith((".yaml", ".yml")):
        return "osv"  # the PyPA advisory database's OSV records
    head = _head(path).lstrip()
    if match := _TRACKER_LINE.match(head):
        return "debian-dsa" if match.group(1) == b"DSA" else "debian-dla"
    if head.startswith((b"#model_version", b"#source", b"cve,epss")):
        return "epss"
    return _from_json_head(str(path), head)


def _from_json_head(where: str, head: bytes) -> str:
    lowered = head[:512].lower()
    if lowered.startswith((b"<!doctype html", b"<html")):
        raise FeedUnreadable(f"{where} is an HTML page, not a feed file (an error page saved instead of the data?)")
    if b'"catalogVersion"' in head:
        return "kev"
    if (b'"dataType"' in head and b"CVE_RECORD" in head) or b'"cveMetadata"' in head:
        return "cve5"
    if b'"resultsPerPage"' in head or b'"vulnStatus"' in head or b'"sourceIdentifier"' in head:
        return "nvd"
    if b'"affected"' in head or b'"schema_version"' in head or b'"modified"' in head:
        return "osv"
    raise FeedUnreadable(f"{where}: cannot tell which feed this is; pass --source ({', '.join(SOURCES)})")
