"""OSV records from files: one JSON file (a record or a list), gzipped JSON, a YAML record (the PyPA advisory
database's format), a directory of record files, an ecosystem archive as osv.dev publishes it (all.zip), or a
tar archive of record files (.tar.xz, .tar.gz, .tar; read as a stream, member by member).

In directories and archives, record files are the ones named after an OSV id, as osv.dev and the advisory
databases name them (`PYSEC-2019-26.yaml`, `ALSA-2025:10073.json`, `USN-7000-1.json.gz`): PREFIX-REST with a
.json, .json.gz, .yaml or .yml suffix. Other files (LICENSE, SOURCES.json, .id-allocator) are not records.

Malformed records: without a MalformedRecords policy the reader is all or nothing (the first raises
FeedUnreadable naming the file, entry and reason). With one, a record of a dump of many that is not valid
JSON/YAML or breaks the OSV schema is handed to the policy (skipped and listed, or raised when strict); errors
of the dump as a whole (an unreadable archive, a file over its size limit, a single file that is not JSON) raise.
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import yaml

from patchday.core.errors import FeedUnreadable
from patchday.core.osv import Advisory, InvalidAdvisory, parse_advisory
from patchday.feeds.files import MalformedRecords, is_tar, read_limited, skip_or_raise, tar_members

MAX_ENTRY_BYTES: Final = 64 * 1024 * 1024  # one record or list; osv.dev's largest records are a few MB
RECORD_FILE: Final = re.compile(r"^[A-Za-z][A-Za-z0-9]*-[^/\s]+\.(json|json\.gz|yaml|yml)$")
_YAML: Final = (".yaml", ".yml")


try:
    from yaml import CSafeLoader as _SafeLoader
except ImportError:  # pragma: no cover (PyYAML built without libyaml: the same, slower)
    from yaml import SafeLoader as _SafeLoader  # type: ignore[assignment]


class _YamlLoader(_SafeLoader):
    """Safe YAML with timestamps kept as text: OSV times are RFC 3339 strings, and parse_advisory checks them."""


def _timestamp_as_text(loader: _YamlLoader, node: yaml.Node) -> str:
    assert isinstance(node, yaml.ScalarNode)  # the timestamp resolver matches plain scalars only
    return str(loader.construct_scalar(node))


_YamlLoader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_as_text)


def is_record_file(name: str) -> bool:
    """True when the base name `name` is an OSV record file's (see the module docstring)."""
    return bool(RECORD_FILE.match(name))


def _decode(raw: bytes, name: str, where: str) -> list[object]:
    try:
        if name.endswith(_YAML):
            document: Any = yaml.load(raw, Loader=_YamlLoader)  # noqa: S506 (a SafeLoader)
        else:
            document = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError, yaml.YAMLError) as exc:
        kind = "YAML" if name.endswith(_YAML) else "JSON"
        raise FeedUnreadable(f"OSV {where} is not valid {kind}: {exc}") from None
    if isinstance(document, list):
        return document
    return [document]


def _parse(documents: list[object], where: str, malformed: MalformedRecords | None) -> Iterator[Advisory]:
    for index, document in enumerate(documents):
        at = f"{where} entry {index}" if len(documents) > 1 else where
        if not isinstance(document, dict):
            skip_or_raise(FeedUnreadable(f"OSV {at} is not an OSV record (a JSON object)"), malformed)
            continue
        try:
            advisory = parse_advisory(document)
        except InvalidAdvisory as exc:
            skip_or_raise(FeedUnreadable(f"OSV {at}: {exc}"), malformed)
            continue
        yield advisory


def _record(raw: bytes, name: str, where: str, malformed: MalformedRecords | None) -> Iterator[Advisory]:
    """The advisories of one file of a dump: a file that does not decode is one malformed record."""
    try:
        documents = _decode(raw, name, where)
    except FeedUnreadable as exc:
        skip_or_raise(exc, malformed)
        return
    yield from _parse(documents, where, malformed)


def _read_zip(path: Path, malformed: MalformedRecords | None) -> Iterator[Advisory]:
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                name = info.filename.rsplit("/", 1)[-1]
                if info.is_dir() or not is_record_file(name) or name.endswith(".gz"):
                    continue
                if info.file_size > MAX_ENTRY_BYTES:
                    raise FeedUnreadable(f"OSV: {path} entry {info.filename} is larger than {MAX_ENTRY_BYTES} bytes")
                yield from _record(archive.read(info), name, f"file {path} entry {info.filename}", malformed)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise FeedUnreadable(f"OSV: {path} is not a readable zip archive: {exc}") from None


def _read_tar(path: Path, malformed: MalformedRecords | None) -> Iterator[Advisory]:
    wanted = lambda name: is_record_file(name) and not name.endswith(".gz")  # noqa: E731
    found = False
    for name, raw in tar_members(path, "OSV", wanted, MAX_ENTRY_BYTES):
        found = True
        yield from _record(raw, name, f"file {path} member {name}", malformed)
    if not found:
        raise FeedUnreadable(f"OSV: {path} holds no record files (PREFIX-ID.json or .yaml)")


def _read_file(path: Path, malformed: MalformedRecords | None) -> Iterator[Advisory]:
    raw = read_limited(path, "OSV", MAX_ENTRY_BYTES)
    yield from _parse(_decode(raw, path.name, f"file {path}"), f"file {path}", malformed)


def load_osv(path: Path, *, malformed: MalformedRecords | None = None) -> list[Advisory]:
    """Every record under `path` (see the module docstring for what is read and what a malformed record does).

    Raises FeedUnreadable naming the file and entry.
    """
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and is_record_file(p.name))
        if not files:
            raise FeedUnreadable(f"OSV: {path} holds no record files (PREFIX-ID.json, .json.gz or .yaml)")
        found: list[Advisory] = []
        for file in files:
            raw = read_limited(file, "OSV", MAX_ENTRY_BYTES)
            found.extend(_record(raw, file.name.removesuffix(".gz"), f"file {file}", malformed))
        return found
    if not path.exists():
        raise FeedUnreadable(f"OSV: {path} does not exist")
    if path.suffix == ".zip":
        return list(_read_zip(path, malformed))
    if is_tar(path):
        return list(_read_tar(path, malformed))
    if path.name.endswith((".json", ".json.gz", *_YAML)):
        return list(_read_file(path, malformed))
    raise FeedUnreadable(f"OSV: {path} is not a directory, .json, .json.gz, .yaml, .zip or tar archive")
