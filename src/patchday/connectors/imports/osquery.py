"""osquery results to inventory documents: os_version, system_info, deb_packages, rpm_packages, python_packages.

Two shapes are read (https://osquery.readthedocs.io/en/stable/deployment/logging/):
- `osqueryi --json "select * from deb_packages"`: a JSON array of row objects, one table, one host;
- osqueryd's results log: one JSON object per line, each `{"name", "hostIdentifier", "unixTime", ...}`
  with `columns` (event format, "added"/"removed"), `snapshot` (snapshot queries) or `diffResults`
  (batch format). A log may hold many hosts; each gets its own document.

Column names are those of osquery's table specs (specs/os_version.table, specs/linux/deb_packages.table, ...).
The table of a result is the one its query is named after ("pack_inventory_deb_packages"), else the one
its columns identify; `table=` names it when neither can.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from patchday.connectors.imports.decoding import CONTROL, check_size, decode_utf8, load_json
from patchday.connectors.imports.inventory import add_error, blank_document, note_missing_facts
from patchday.core.errors import InvalidImport

TABLES: Final = ("os_version", "system_info", "deb_packages", "rpm_packages", "python_packages")
MAX_BYTES: Final = 64 * 1024 * 1024
MAX_ROWS: Final = 100_000  # per host and table: the inventory document's package limit
MAX_TEXT: Final = 255
COLLECTOR: Final = "osquery"
# dpkg states in which the package's files are on disk (dpkg-query(1)); osquery also lists config-files ones.
_PRESENT_STATES: Final = frozenset(
    {"installed", "half-configured", "unpacked", "half-installed", "triggers-awaited", "triggers-pending"}
)
_DEB_SOURCE: Final = re.compile(r"^(?P<name>\S+)(?:\s+\((?P<version>[^)]+)\))?$")
_SRPM: Final = re.compile(r"^(?P<name>.+)-(?P<version>[^-]+)-(?P<release>[^-]+)\.(?:no)?src\.rpm$")
_HOSTNAME: Final = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,252}$")
# osquery's os_version says platform "rhel" on every system with /etc/redhat-release; the name tells which.
_RHEL_FAMILY: Final = (
    ("rocky", "rocky"),
    ("alma", "almalinux"),
    ("centos", "centos"),
    ("fedora", "fedora"),
    ("oracle", "ol"),
    ("red hat", "rhel"),
)

Row = Mapping[str, str]


@dataclass(slots=True)
class OsqueryResult:
    """The rows of one table for one host, as the results read so far leave them.

    `host` is the log's hostIdentifier ("" for osqueryi output); `complete` is False when a
    differential log does not start at the query's first run (counter 0), so rows may be missing.
    """

    table: str
    host: str
    rows: list[Row] = field(default_factory=list)
    unix_time: int | None = None
    complete: bool = True


@dataclass(frozen=True, slots=True)
class OsqueryHost:
    """One host's inventory document, with the identifiers osquery gave for it."""

    host_identifier: str
    system_uuid: str
    document: dict[str, Any]


# -- reading ----------------------------------------------------------------------------------------------


def _row(raw: object, source: str, where: str, line: int | None) -> Row:
    if not isinstance(raw, Mapping):
        raise InvalidImport(f"{where} must be an object of column values", source=source, line=line, field=where)
    row: dict[str, str] = {}
    for key, value in raw.items():
        if value is None:
            value = ""
        elif isinstance(value, bool) or not isinstance(value, str | int | float):
            raise InvalidImport(f"{where}.{key} must be a string or number", source=source, line=line, field=key)
        row[str(key)] = str(value)
    return row


def table_of_columns(columns: Iterable[str]) -> str | None:
    """The table whose columns these are, None when it cannot be told (`select name, version from ...`)."""
    cols = set(columns)
    if "platform" in cols and ("major" in cols or "platform_like" in cols or "codename" in cols):
        return "os_version"
    if "uuid" in cols and ("hostname" in cols or "cpu_brand" in cols or "hardware_vendor" in cols):
        return "system_info"
    if not {"name", "version"} <= cols:
        return None
    if "release" in cols:
        return "rpm_packages"
    if cols & {"revision", "maintainer", "admindir", "priority", "section", "status"} or "arch" in cols:
        return "deb_packages"
    if cols & {"path", "directory", "summary"}:
        return "python_packages"
    return None


def _table_of_query(name: str) -> str | None:
    lowered = name.lower()
    return next((t for t in TABLES if lowered == t or lowered.endswith(f"_{t}") or lowered.endswith(f"/{t}")), None)


def _table(query: str, rows: Sequence[Row], given: str | None) -> str | None:
    """The table by the query's name, else by the rows' columns, else `given`; None when none tells."""
    found = _table_of_query(query) if query else None
    if found is None and rows:
        columns: set[str] = set()
        for row in rows[:50]:
            columns.update(row)
        found = table_of_columns(columns)
    return found or given


class _Results:
    """Per (host, table) state, applying snapshots and differential results in order."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.by_key: dict[tuple[str, str], OsqueryResult] = {}

    def get(self, host: str, table: str, counter: str | None) -> OsqueryResult:
        key = (host, table)
        if key not in self.by_key:
            self.by_key[key] = OsqueryResult(table, host, complete=counter in (None, "0"))
        return self.by_key[key]

    def check_size(self, result: OsqueryResult, line: int | None) -> None:
        if len(result.rows) > MAX_ROWS:
            raise InvalidImport(
                f"more than {MAX_ROWS} {result.table} rows for host {result.host!r}", source=self.source, line=line
            )

    def record(self, record: Mapping[str, Any], line: int, given: str | None) -> None:
        query = str(record.get("name", ""))
        host = str(record.get("hostIdentifier") or record.get("hostname") or "")
        unix_time = _unix_time(record.get("unixTime"))
        counter = str(record["counter"]) if "counter" in record else None
        if "snapshot" in record:
            raw_rows = record["snapshot"]
            if not isinstance(raw_rows, list):
                raise InvalidImport("snapshot must be a list of rows", source=self.source, line=line, field="snapshot")
            rows = [_row(r, self.source, f"snapshot[{i}]", line) for i, r in enumerate(raw_rows)]
            table = _table(query, rows, given)
            if table is None:
                return  # another query in the same log (processes, users): not inventory
            result = self.get(host, table, None)
            if result.unix_time is None or unix_time is None or unix_time >= result.unix_time:
                result.rows, result.complete = rows, True
        elif "columns" in record:
            row = _row(record["columns"], self.source, "columns", line)
            table = _table(query, [row], given)
            if table is None:
                return
            result = self.get(host, table, counter)
            if record.get("action") == "removed":
                if row in result.rows:
                    result.rows.remove(row)
            else:
                result.rows.append(row)
        elif "diffResults" in record:
            diff = record["diffResults"]
            if not isinstance(diff, Mapping):
                raise InvalidImport("diffResults must be an object", source=self.source, line=line, field="diffResults")
            added = [_row(r, self.source, "diffResults.added", line) for r in diff.get("added") or []]
            removed = [_row(r, self.source, "diffResults.removed", line) for r in diff.get("removed") or []]
            table = _table(query, added or removed, given)
            if table is None:
                return
            result = self.get(host, table, counter)
            result.rows = [r for r in result.rows if r not in removed] + added
        else:
            raise InvalidImport(
                "a results log line needs columns, snapshot or diffResults", source=self.source, line=line
            )
        if unix_time is not None:
            result.unix_time = max(result.unix_time or 0, unix_time)
        self.check_size(result, line)


def _unix_time(value: object) -> int | None:
    try:
        return int(str(value)) if value is not None else None
    except ValueError:
        return None


def _is_record(value: object) -> bool:
    return isinstance(value, Mapping) and bool({"columns", "snapshot", "diffResults"} & set(value))


def read_osquery_results(
    data: bytes, *, source: str = "osquery results", table: str | None = None, max_bytes: int = MAX_BYTES
) -> list[OsqueryResult]:
    """The rows per host and table in one file of osqueryi JSON output or osqueryd results log.

    Tables other than the five patchday reads are kept (the caller ignores them). Raises
    InvalidImport naming `source`, the line and the field.
    """
    if table is not None and table not in TABLES:
        raise InvalidImport(f"table {table!r} is not one of {', '.join(TABLES)}", source=source, field="table")
    check_size(data, max_bytes, source)
    results = _Results(source)
    text = decode_utf8(data, source).strip()
    if text.startswith("["):
        value = load_json(data, source)
        assert isinstance(value, list)
        if value and all(_is_record(v) for v in value):
            for index, record in enumerate(value):
                results.record(record, index + 1, table)
        else:
            rows = [_row(r, source, f"[{i}]", None) for i, r in enumerate(value)]
            found = _table("", rows, table)
            if found is None and rows:
                columns = ", ".join(sorted({c for r in rows[:50] for c in r})[:12])
                raise InvalidImport(
                    f"cannot tell which osquery table these rows came from (columns {columns});"
                    " select * or name the file after the table (deb_packages.json)",
                    source=source,
                )
            if found is not None:
                result = results.get("", found, None)
                result.rows = rows
                results.check_size(result, None)
        return list(results.by_key.values())
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, RecursionError, ValueError):
            raise InvalidImport(
                "not a JSON object; expected osqueryi --json output or one results log record per line",
                source=source,
                line=number,
            ) from None
        if not _is_record(record):
            raise InvalidImport(
                "not an osquery results log record (no columns, snapshot or diffResults)", source=source, line=number
            )
        results.record(record, number, table)
    return list(results.by_key.values())


# -- documents --------------------------------------------------------------------------------------------


def _clean(value: str) -> str:
    value = value.strip()
    return "" if CONTROL.search(value) or len(value) > MAX_TEXT else value


def _os(row: Row) -> dict[str, str]:
    platform = row.get("platform", "").lower()
    name = row.get("name", "")
    if platform == "rhel":
        lowered = name.lower()
        platform = next((os_id for word, os_id in _RHEL_FAMILY if word in lowered), platform)
    major, minor, patch = row.get("major", ""), row.get("minor", ""), row.get("patch", "")
    version_id = major if major not in ("", "0") else ""
    if version_id and platform == "ubuntu" and minor.isdigit():
        version_id += f".{int(minor):02d}"  # 22.04: --logger_numerics would print minor as 4
    elif version_id and minor not in ("", "0"):
        version_id += f".{minor}" + (f".{patch}" if patch not in ("", "0") else "")
    version = row.get("version", "")
    pretty = version if version.startswith(name) else f"{name} {version}".strip()
    return {
        "id": _clean(platform),
        "version_id": _clean(version_id),
        "version_codename": _clean(row.get("codename", "")),
        "pretty_name": _clean(pretty),
        "id_like": _clean(row.get("platform_like", "")),
    }


def _is_removed(row: Row) -> bool:
    """A deb_packages row of a package whose files are gone ("deinstall ok config-files")."""
    status = row.get("status", "").split()
    return bool(status) and status[-1] not in _PRESENT_STATES


def _deb(row: Row) -> dict[str, str] | None:
    name, version = _clean(row.get("name", "")), _clean(row.get("version", ""))
    if not name or not version:
        return None
    source_name, source_version = name, version
    found = _DEB_SOURCE.match(row.get("source", "").strip())
    if found:  # dpkg's Source: "glibc" or "bash (5.2.15-2)" when the binary's version differs
        source_name, source_version = found["name"], found["version"] or version
    return {
        "manager": "dpkg",
        "name": name,
        "version": version,
        "arch": _clean(row.get("arch", "")),
        "source": _clean(source_name),
        "source_version": _clean(source_version),
    }


def _rpm(row: Row) -> dict[str, str] | None:
    name = _clean(row.get("name", ""))
    if not name or not row.get("version"):
        return None
    epoch = row.get("epoch", "").strip()
    epoch = "" if epoch in ("", "0", "(none)") else epoch
    release = row.get("release", "")
    evr = row.get("version", "") + (f"-{release}" if release else "")
    version = _clean(f"{epoch}:{evr}" if epoch else evr)
    if not version:
        return None
    source_name, source_version = name, version
    found = _SRPM.match(row.get("source", "").strip())
    if found:  # the source RPM's file name, openssl-3.0.7-24.el9.src.rpm; it shares the binary's epoch
        source_evr = f"{found['version']}-{found['release']}"
        source_name, source_version = found["name"], f"{epoch}:{source_evr}" if epoch else source_evr
    return {
        "manager": "rpm",
        "name": name,
        "version": version,
        "arch": _clean(row.get("arch", "")),
        "source": _clean(source_name),
        "source_version": _clean(source_version),
    }


def _python(row: Row) -> dict[str, str] | None:
    name, version = _clean(row.get("name", "")), _clean(row.get("version", ""))
    if not name or not version:
        return None
    location = row.get("directory") or row.get("path") or ""
    return {"name": name, "version": version, "interpreter": "", "location": _clean(location[:2000])}


def _packages(document: dict[str, Any], results: Mapping[str, OsqueryResult]) -> None:
    dropped = 0
    seen: set[tuple[str, ...]] = set()
    for table, read in (("deb_packages", _deb), ("rpm_packages", _rpm)):
        if table in results:
            for row in results[table].rows:
                if (table == "deb_packages" and _is_removed(row)) or row.get("name") == "gpg-pubkey":
                    continue  # gone from disk; rpm's imported signing keys are not packages
                package = read(row)
                if package is None:
                    dropped += 1
                    continue
                key = (package["manager"], package["name"], package["version"], package["arch"])
                if key not in seen:
                    seen.add(key)
                    document["packages"].append(package)
    if "python_packages" in results:
        for row in results["python_packages"].rows:
            python = _python(row)
            if python is None:
                dropped += 1
                continue
            key = ("python", python["name"], python["version"], python["location"])
            if key not in seen:
                seen.add(key)
                document["python_packages"].append(python)
    if dropped:
        add_error(document, COLLECTOR, f"{dropped} package rows without a usable name or version were left out")
    if not ({"deb_packages", "rpm_packages"} & set(results)):
        add_error(document, COLLECTOR, "no deb_packages or rpm_packages results: distribution packages unknown")
    if "python_packages" not in results:
        add_error(document, COLLECTOR, "no python_packages results: Python packages unknown")


def _document(host: str, results: Mapping[str, OsqueryResult], collected_at: datetime) -> OsqueryHost:
    times = [r.unix_time for r in results.values() if r.unix_time is not None]
    when = datetime.fromtimestamp(max(times), tz=UTC) if times else collected_at
    document = blank_document(collector="osquery import", collected_at=when)
    if "os_version" in results and results["os_version"].rows:
        row = results["os_version"].rows[-1]
        document["os"] = _os(row)
        document["architecture"] = _clean(row.get("arch", ""))
    else:
        add_error(document, COLLECTOR, "no os_version results: operating system and architecture unknown")
    uuid = ""
    if "system_info" in results and results["system_info"].rows:
        row = results["system_info"].rows[-1]
        uuid = _clean(row.get("uuid", ""))
        full = row.get("hostname", "").strip().rstrip(".")
        if _HOSTNAME.match(full):
            document["hostname"] = full.split(".")[0]
            document["fqdn"] = full if "." in full else ""
        else:
            add_error(document, COLLECTOR, "system_info.hostname is not a host name")
        hardware = document["hardware"]
        hardware["system_vendor"] = _clean(row.get("hardware_vendor", ""))
        hardware["product_name"] = _clean(row.get("hardware_model", ""))
        hardware["product_serial"] = _clean(row.get("hardware_serial", ""))
    else:
        add_error(document, COLLECTOR, "no system_info results: hostname and hardware unknown")
        if host and _HOSTNAME.match(host) and not re.fullmatch(r"[0-9A-Fa-f-]{32,36}", host):
            document["hostname"] = host.split(".")[0]
    _packages(document, results)
    for table, result in sorted(results.items()):
        if not result.complete:
            add_error(
                document,
                COLLECTOR,
                f"the {table} results log starts after the query's first run: rows from before are missing",
            )
    add_error(document, COLLECTOR, "osquery does not report /etc/machine-id (system_info.uuid is the DMI UUID)")
    add_error(document, COLLECTOR, "osquery's system_info does not report BIOS/UEFI vendor, version or date")
    note_missing_facts(document, COLLECTOR, "osquery results")
    return OsqueryHost(host_identifier=host, system_uuid=uuid, document=document)


def osquery_inventories(results: Iterable[OsqueryResult], *, collected_at: datetime) -> list[OsqueryHost]:
    """One inventory document per host found in `results` (osqueryi output counts as host ""), in
    host order. `collected_at` stands in when the results carry no unixTime (osqueryi output)."""
    by_host: dict[str, dict[str, OsqueryResult]] = {}
    for result in results:
        if result.table not in TABLES:
            continue
        tables = by_host.setdefault(result.host, {})
        earlier = tables.get(result.table)
        # The same table twice (two files): the later results win, by unixTime, then by order.
        if earlier is None or (result.unix_time or 0) >= (earlier.unix_time or 0):
            tables[result.table] = result
    return [_document(host, tables, collected_at) for host, tables in sorted(by_host.items())]


def parse_osquery(
    files: Sequence[tuple[str, bytes]], *, collected_at: datetime, max_bytes: int = MAX_BYTES
) -> list[OsqueryHost]:
    """Inventory documents from uploaded osquery files, each given as (file name, content).

    A file named after a table ("deb_packages.json") is read as that table's rows when its
    columns cannot tell. Raises InvalidImport naming the file, line and field.
    """
    results: list[OsqueryResult] = []
    for name, data in files:
        stem = name.rsplit("/", 1)[-1].split(".", 1)[0].lower()
        results.extend(
            read_osquery_results(data, source=name, table=stem if stem in TABLES else None, max_bytes=max_bytes)
        )
    return osquery_inventories(results, collected_at=collected_at)
