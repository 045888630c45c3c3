"""CISA's Known Exploited Vulnerabilities catalog, as CISA publishes it (JSON, optionally gzipped), to KevEntry values.
Whole file or nothing: the catalog is checked against CISA's own JSON schema and any unreadable part raises
FeedUnreadable naming the file, the record (index and CVE id) and the reason."""

from __future__ import annotations

import functools
import gzip
import io
import json
import re
import zlib
from dataclasses import dataclass
from datetime import UTC, date, datetime
from importlib import resources
from pathlib import Path
from typing import Any, Final

import jsonschema

from patchday.core.errors import FeedUnreadable
from patchday.core.vulnerability import KevEntry

SOURCE: Final = "CISA KEV catalog"
MAX_CATALOG_BYTES: Final = 64 * 1024 * 1024  # the 2026 catalog is about 1.5 MB uncompressed
_GZIP_MAGIC: Final = b"\x1f\x8b"
_CHUNK_BYTES: Final = 1024 * 1024
_DATE: Final = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)  # the schema's "format": "date" (RFC 3339 full-date)
_MAX_DETAIL: Final = 200  # a schema message quotes the offending value, which may be a whole record, so it is cut


@dataclass(frozen=True, slots=True)
class KevCatalog:
    """One release of the catalog: its version ("2026.08.21"), when CISA released it (aware, UTC) and every entry."""

    catalog_version: str
    date_released: datetime
    entries: tuple[KevEntry, ...]


def read_kev(path: Path, max_bytes: int = MAX_CATALOG_BYTES) -> KevCatalog:
    """The catalog in `path` (.json or .json.gz, uncompressed size at most `max_bytes`).

    Raises FeedUnreadable, and returns nothing, when the file cannot be read, is truncated, is an HTML page or not
    JSON, violates CISA's schema, lists a cveID twice, disagrees with its own `count`, or holds a date that is not one.
    """
    document = _decode(_read_bytes(path, max_bytes), path)
    _check_schema(document, path)
    vulnerabilities: list[dict[str, Any]] = document["vulnerabilities"]
    if document["count"] != len(vulnerabilities):
        raise FeedUnreadable(
            f"{SOURCE} {path}: says count {document['count']} but lists {len(vulnerabilities)} vulnerabilities"
        )
    first_index: dict[str, int] = {}
    entries: list[KevEntry] = []
    for index, record in enumerate(vulnerabilities):
        cve_id = record["cveID"]
        if cve_id in first_index:
            raise FeedUnreadable(
                f"{SOURCE} {path}: record {index} ({cve_id}) repeats the cveID of record {first_index[cve_id]}"
            )
        first_index[cve_id] = index
        entries.append(_entry(record, f"{SOURCE} {path}: record {index} ({cve_id})"))
    return KevCatalog(
        catalog_version=document["catalogVersion"],
        date_released=_date_time(document["dateReleased"], f"{SOURCE} {path}: dateReleased"),
        entries=tuple(entries),
    )


def _read_bytes(path: Path, max_bytes: int) -> bytes:
    if not path.name.endswith((".json", ".json.gz")):
        raise FeedUnreadable(f"{SOURCE} {path} is not a .json or .json.gz file")
    try:
        with path.open("rb") as handle:
            head = handle.read(1024)
            if path.suffix == ".gz":
                if _is_html(head):
                    raise FeedUnreadable(f"{SOURCE} {path}: got an HTML page, not gzipped JSON")
                if not head.startswith(_GZIP_MAGIC):
                    raise FeedUnreadable(f"{SOURCE} {path} is not a gzip file (no gzip magic bytes at the start)")
                handle.seek(0)
                with gzip.GzipFile(fileobj=handle, mode="rb") as stream:
                    raw = _read_at_most(stream, max_bytes + 1)
            else:
                raw = head + _read_at_most(handle, max_bytes + 1 - len(head))
    except EOFError as exc:
        raise FeedUnreadable(f"{SOURCE} {path} is truncated: the gzip stream ends early ({exc})") from None
    except (gzip.BadGzipFile, zlib.error) as exc:
        raise FeedUnreadable(f"{SOURCE} {path} is not a readable gzip file: {exc}") from None
    except OSError as exc:
        raise FeedUnreadable(f"cannot read {SOURCE} {path}: {exc}") from None
    if len(raw) > max_bytes:
        raise FeedUnreadable(f"{SOURCE} {path} is larger than the limit of {max_bytes} bytes (uncompressed)")
    return raw


def _read_at_most(stream: io.BufferedIOBase, limit: int) -> bytes:
    # In chunks: read(limit) would allocate `limit` bytes up front, 64 MB for a 1.5 MB catalog.
    chunks: list[bytes] = []
    size = 0
    while size < limit and (chunk := stream.read(min(_CHUNK_BYTES, limit - size))):
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _is_html(head: bytes) -> bool:
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1024].lower()
    return start.startswith(b"<") and (b"<html" in start or b"<!doctype html" in start)


def _decode(raw: bytes, path: Path) -> Any:
    if _is_html(raw[:1024]):
        # A proxy or CDN error page saved under the catalog's name.
        raise FeedUnreadable(f"{SOURCE} {path}: got an HTML page, not JSON")
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FeedUnreadable(f"{SOURCE} {path} is not valid JSON: {exc}") from None


@functools.cache
def _validator() -> Any:
    schema = json.loads(resources.files("patchday.feeds").joinpath("schemas/kev.schema.json").read_text("utf-8"))
    validator_class = jsonschema.validators.validator_for(schema)
    return validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)


def _check_schema(document: Any, path: Path) -> None:
    errors = list(_validator().iter_errors(document))
    if not errors:
        return
    # Report the earliest record that fails, so the message points at the first thing to look at.
    error = min(errors, key=_record_index)
    index = _record_index(error)
    if index >= 0:
        record = document["vulnerabilities"][index]
        cve_id = record.get("cveID") if isinstance(record, dict) else None
        where = f"record {index} ({cve_id if isinstance(cve_id, str) else 'no cveID'})"
    else:
        where = "the catalog"
    detail = _shorten(error.message.replace(repr(error.instance), _shorten(repr(error.instance), 60)), _MAX_DETAIL)
    schema_path = "#/" + "/".join(str(part) for part in error.absolute_schema_path)
    more = f" (and {len(errors) - 1} more violations)" if len(errors) > 1 else ""
    raise FeedUnreadable(
        f"{SOURCE} {path}: {where} does not match CISA's schema at {error.json_path}: {detail}"
        f" (schema path {schema_path}){more}"
    )


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _record_index(error: Any) -> int:
    instance_path = list(error.absolute_path)
    if len(instance_path) >= 2 and instance_path[0] == "vulnerabilities" and isinstance(instance_path[1], int):
        return instance_path[1]
    return -1


def _entry(record: dict[str, Any], where: str) -> KevEntry:
    return KevEntry(
        cve_id=record["cveID"],
        vendor=record["vendorProject"],
        product=record["product"],
        name=record["vulnerabilityName"],
        description=record["shortDescription"],
        date_added=_date(record["dateAdded"], f"{where}: dateAdded"),
        due_date=_date(record["dueDate"], f"{where}: dueDate"),
        required_action=record["requiredAction"],
        # Optional in the schema; CISA's "Unknown" means "no confirmed ransomware use", the right reading of absent.
        ransomware=record.get("knownRansomwareCampaignUse", "Unknown"),
        notes=record.get("notes", ""),
        cwes=tuple(record.get("cwes", ())),
    )


def _date(value: str, where: str) -> date:
    try:
        if _DATE.fullmatch(value):
            return date.fromisoformat(value)
    except ValueError:
        pass
    raise FeedUnreadable(f"{where} {value!r} is not a date (YYYY-MM-DD)")


def _date_time(value: str, where: str) -> datetime:
    # The schema says "format": "date-time", but jsonschema checks that format only when rfc3339-validator is
    # installed, so it is checked here.
    try:
        if "T" in value:
            parsed = datetime.fromisoformat(value)
            # CISA writes UTC with a "Z"; a time without an offset is read as UTC too.
            return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except ValueError:
        pass
    raise FeedUnreadable(f"{where} {value!r} is not a date-time (YYYY-MM-DDTHH:MM:SSZ)")
