"""OSV records from files: a directory of JSON files, one JSON file (a record or a list), gzipped JSON,
or an ecosystem archive as osv.dev publishes it (all.zip). All or nothing: any unreadable entry
raises FeedUnreadable naming the file and entry, and nothing is returned."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

from patchday.core.errors import FeedUnreadable
from patchday.core.osv import Advisory, InvalidAdvisory, parse_advisory
from patchday.feeds.files import read_limited

MAX_ENTRY_BYTES = 64 * 1024 * 1024  # one record or list; osv.dev's largest records are a few MB


def _decode(raw: bytes, where: str) -> list[object]:
    try:
        document = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FeedUnreadable(f"{where} is not valid JSON: {exc}") from None
    if isinstance(document, list):
        return document
    return [document]


def _parse(documents: list[object], where: str) -> Iterator[Advisory]:
    for index, document in enumerate(documents):
        if not isinstance(document, dict):
            raise FeedUnreadable(f"{where}: entry {index} is not an OSV record (a JSON object)")
        try:
            yield parse_advisory(document)
        except InvalidAdvisory as exc:
            raise FeedUnreadable(f"{where}: {exc}") from None


def _read_zip(path: Path) -> Iterator[Advisory]:
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.is_dir() or not info.filename.endswith(".json"):
                    continue
                if info.file_size > MAX_ENTRY_BYTES:
                    raise FeedUnreadable(f"{path} entry {info.filename} is larger than {MAX_ENTRY_BYTES} bytes")
                where = f"{path} entry {info.filename}"
                yield from _parse(_decode(archive.read(info), where), where)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise FeedUnreadable(f"{path} is not a readable zip archive: {exc}") from None


def _read_file(path: Path) -> Iterator[Advisory]:
    raw = read_limited(path, "OSV", MAX_ENTRY_BYTES)
    yield from _parse(_decode(raw, str(path)), str(path))


def load_osv(path: Path) -> list[Advisory]:
    """Every record under `path`; raises FeedUnreadable (naming file and entry) if any cannot be read."""
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith((".json", ".json.gz")))
        if not files:
            raise FeedUnreadable(f"{path} holds no .json or .json.gz files")
        return [advisory for file in files for advisory in _read_file(file)]
    if not path.exists():
        raise FeedUnreadable(f"{path} does not exist")
    if path.suffix == ".zip":
        return list(_read_zip(path))
    if path.name.endswith((".json", ".json.gz")):
        return list(_read_file(path))
    raise FeedUnreadable(f"{path} is not a directory, .json, .json.gz or .zip file")
