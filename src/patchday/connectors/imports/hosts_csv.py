"""Hosts CSV imports: one row per host with its business context (criticality, exposure, owner, ...).

The file is checked whole before anything is applied: `parse_hosts_csv` returns every row it
could read and every problem it found (line and column), and the caller applies nothing unless
there are no problems (`HostsCsv.raise_if_invalid`). A file that cannot be read as a CSV at all
(not UTF-8, no `name` column, an unknown column, too large) raises InvalidImport at once.

Cells that a spreadsheet would run as a formula (starting with = + - @) are refused, not stored:
https://owasp.org/www-community/attacks/CSV_Injection. `spreadsheet_safe` neutralises values on export.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from patchday.connectors.imports.decoding import CONTROL, check_size, decode_utf8
from patchday.core.errors import InvalidImport

COLUMNS: Final = ("name", "criticality", "exposure", "environment", "owner", "tags", "groups")
MAX_BYTES: Final = 8 * 1024 * 1024
MAX_ROWS: Final = 20_000
MAX_FIELD: Final = 255
MAX_PROBLEMS: Final = 1000
CRITICALITY: Final[Mapping[str, int]] = {
    "1": 1,
    "2": 2,
    "3": 3,
    "4": 4,
    "mission-critical": 1,
    "high": 2,
    "medium": 3,
    "low": 4,
}
EXPOSURES: Final = ("internet-facing", "internal", "isolated")
FORMULA_START: Final = ("=", "+", "-", "@")
# The same rules inventory.services applies to tags, environment and owner, checked here per cell.
_TAG: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
_LIMITS: Final[Mapping[str, int]] = {"name": 255, "environment": 64, "owner": 255, "group": 100}


@dataclass(frozen=True, slots=True)
class HostAttributes:
    """One row: the host `name` and the attributes the file sets on it.

    None means the file has no such column (leave the attribute as it is). An empty cell sets the
    attribute to empty ("" or ()), except criticality and exposure, which always have a value and
    are then left as they are.
    """

    line: int
    name: str
    criticality: int | None = None
    exposure: str | None = None
    environment: str | None = None
    owner: str | None = None
    tags: tuple[str, ...] | None = None
    groups: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class RowProblem:
    """A cell or row that does not fit: its line in the file (1 is the header) and its column."""

    line: int
    column: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column}: {self.message}"


@dataclass(frozen=True, slots=True)
class HostsCsv:
    """The rows that could be read and every problem found; apply the rows only when `is_valid`."""

    columns: tuple[str, ...]
    rows: tuple[HostAttributes, ...]
    problems: tuple[RowProblem, ...]
    problem_count: int

    @property
    def is_valid(self) -> bool:
        return self.problem_count == 0

    def raise_if_invalid(self, source: str = "hosts CSV") -> None:
        """Raise InvalidImport naming the first problem and listing all (the first MAX_PROBLEMS)."""
        if self.is_valid:
            return
        first = self.problems[0]
        more = f" (and {self.problem_count - 1} more problems)" if self.problem_count > 1 else ""
        raise InvalidImport(
            f"column {first.column}: {first.message}{more}",
            source=source,
            line=first.line,
            field=first.column,
            problems=tuple(str(p) for p in self.problems),
        )


def spreadsheet_safe(value: str) -> str:
    """`value` for a CSV export: a leading = + - @ (or tab, CR) is prefixed with ' so no spreadsheet runs it."""
    return f"'{value}" if value.startswith((*FORMULA_START, "\t", "\r")) else value


class _Problems:
    def __init__(self) -> None:
        self.found: list[RowProblem] = []
        self.count = 0

    def add(self, line: int, column: str, message: str) -> None:
        self.count += 1
        if len(self.found) < MAX_PROBLEMS:
            self.found.append(RowProblem(line, column, message))


def _text(value: str, column: str, limit: int, line: int, problems: _Problems) -> str | None:
    """The trimmed cell, or None after recording why it cannot be stored."""
    value = value.strip()
    if CONTROL.search(value):
        problems.add(line, column, "contains control characters or line breaks")
        return None
    if len(value) > min(limit, MAX_FIELD):
        problems.add(line, column, f"is longer than {min(limit, MAX_FIELD)} characters")
        return None
    if value.startswith(FORMULA_START):
        problems.add(line, column, f"starts with {value[0]!r}, which spreadsheets run as a formula")
        return None
    return value


def _list(value: str, column: str, line: int, problems: _Problems) -> tuple[str, ...] | None:
    items: dict[str, None] = {}
    for raw in value.split(";"):
        item = _text(raw, column, _LIMITS["group"] if column == "groups" else 64, line, problems)
        if item is None:
            return None
        if not item:
            continue
        if column == "tags" and not _TAG.match(item):
            problems.add(line, column, f"tag {item!r} must be 1-64 letters, digits, '_', '.', ':' or '-'")
            return None
        items.setdefault(item, None)
    return tuple(sorted(items))


def _header(row: list[str], source: str) -> tuple[str, ...]:
    columns = tuple(cell.strip().lower() for cell in row)
    if len(columns) == 1 and ";" in columns[0]:
        raise InvalidImport("the header has one column with ';' in it; separate columns with commas", source=source)
    unknown = [c for c in columns if c not in COLUMNS]
    if unknown:
        raise InvalidImport(
            f"unknown column {unknown[0]!r}; the columns are {', '.join(COLUMNS)}",
            source=source,
            line=1,
            field=unknown[0],
        )
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise InvalidImport(f"column {repeated[0]!r} appears twice", source=source, line=1, field=repeated[0])
    if "name" not in columns:
        raise InvalidImport("the header has no 'name' column", source=source, line=1, field="name")
    return columns


_HOST_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,252}$")  # as an agent's host name (inventory document)


def _row(cells: Mapping[str, str], line: int, problems: _Problems) -> HostAttributes | None:
    before = problems.count
    name = _text(cells["name"], "name", _LIMITS["name"], line, problems)
    if name == "":
        problems.add(line, "name", "is empty; every row needs the host name")
    elif name is not None and not _HOST_NAME.match(name):
        problems.add(line, "name", f"{name[:60]!r} is not a host name (letters, digits, '-', '_' and '.' only)")
    criticality = exposure = None
    if "criticality" in cells:
        raw = cells["criticality"].strip().lower()
        if raw and raw not in CRITICALITY:
            problems.add(line, "criticality", f"{raw[:40]!r} is not 1-4 or mission-critical, high, medium, low")
        criticality = CRITICALITY.get(raw)
    if "exposure" in cells:
        raw = re.sub(r"[\s_]+", "-", cells["exposure"].strip().lower())
        if raw and raw not in EXPOSURES:
            problems.add(line, "exposure", f"{raw[:40]!r} is not one of {', '.join(EXPOSURES)}")
        exposure = raw or None
    texts = {c: _text(cells[c], c, _LIMITS[c], line, problems) for c in ("environment", "owner") if c in cells}
    lists = {c: _list(cells[c], c, line, problems) for c in ("tags", "groups") if c in cells}
    if problems.count > before or not name:
        return None
    return HostAttributes(
        line=line,
        name=name,
        criticality=criticality,
        exposure=exposure,
        environment=texts.get("environment"),
        owner=texts.get("owner"),
        tags=lists.get("tags"),
        groups=lists.get("groups"),
    )


def parse_hosts_csv(
    data: bytes, *, source: str = "hosts CSV", max_rows: int = MAX_ROWS, max_bytes: int = MAX_BYTES
) -> HostsCsv:
    """Every row of a hosts CSV (comma-separated, UTF-8 with or without BOM, LF or CRLF) and every
    problem in it. Raises InvalidImport for a file that cannot be read as a hosts CSV at all."""
    check_size(data, max_bytes, source)
    reader = csv.reader(io.StringIO(decode_utf8(data, source), newline=""), strict=True)
    problems = _Problems()
    rows: list[HostAttributes] = []
    seen: dict[str, int] = {}
    columns: tuple[str, ...] = ()
    line = 1
    try:
        for cells in reader:
            start, line = line, reader.line_num + 1  # a quoted cell may span lines: report where the row starts
            if not columns:
                if not any(c.strip() for c in cells):
                    continue
                columns = _header(cells, source)
                continue
            if not any(c.strip() for c in cells):
                continue
            if len(rows) + problems.count >= max_rows:
                raise InvalidImport(f"more than {max_rows} rows; split the file", source=source, line=start)
            if len(cells) != len(columns):
                problems.add(start, "*", f"has {len(cells)} cells; the header has {len(columns)}")
                continue
            row = _row(dict(zip(columns, cells, strict=True)), start, problems)
            if row is None:
                continue
            key = row.name.casefold()
            if key in seen:
                problems.add(start, "name", f"host {row.name!r} is already on line {seen[key]}")
                continue
            seen[key] = start
            rows.append(row)
    except csv.Error as exc:
        raise InvalidImport(f"not a readable CSV: {exc}", source=source, line=reader.line_num) from None
    if not columns:
        raise InvalidImport("the file is empty; the first line must name the columns", source=source)
    return HostsCsv(columns=columns, rows=tuple(rows), problems=tuple(problems.found), problem_count=problems.count)
