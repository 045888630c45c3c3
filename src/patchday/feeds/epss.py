"""FIRST EPSS daily scores (CSV, optionally gzipped) to EpssScore values, streamed in batches.

The file as FIRST publishes it (https://epss.empiricalsecurity.com/epss_scores-YYYY-MM-DD.csv.gz) opens with
`#model_version:v2025.03.14,score_date:2025-03-16T00:00:00+0000`, then the column line `cve,epss,percentile`,
then one line per CVE. Mirrors may replace the first line with their own comment (`#source:...`) or drop it.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Final

from patchday.core.errors import FeedUnreadable
from patchday.core.vulnerability import CVE_ID, EpssScore

SOURCE: Final = "FIRST EPSS file"
BATCH_SIZE: Final = 10_000
MAX_LINE_BYTES: Final = 4096  # a score line is about 35 bytes; a longer line is not EPSS, and reading it costs memory
COLUMNS: Final = "cve,epss,percentile"
_GZIP_MAGIC: Final = b"\x1f\x8b"
_DECIMAL: Final = re.compile(r"[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")  # float() alone also takes "nan", "1_0"
_CHUNK_BYTES: Final = 256 * 1024
_ROW: Final = re.compile(rb"(CVE-[0-9]{4}-[0-9]{4,}),([0-9]+(?:\.[0-9]+)?),([0-9]+(?:\.[0-9]+)?)\r?")
# Bitmaps of CVE numbers below 2**21 (256 kB a year at most; the largest real numbers are about 2,000,000) for
# at most 64 years (CVE ids start in 1999), so a hostile file cannot make them large.
_BITMAP_NUMBERS: Final = 2**21
_BITMAP_YEARS: Final = 64
_NAME_DATE: Final = re.compile(r"(?<![0-9])([0-9]{4}-[0-9]{2}-[0-9]{2})(?![0-9])")  # epss_scores-2026-08-16.csv.gz


@dataclass(frozen=True, slots=True)
class EpssSnapshot:
    """One day's EPSS file, its header read and checked; the scores are read by `batches()`.

    `model_version` is "" when the file does not say (mirrors drop FIRST's header line).
    """

    path: Path
    score_date: date
    model_version: str

    def batches(self, size: int = BATCH_SIZE) -> Iterator[list[EpssScore]]:
        """Every score in the file, in file order, as lists of at most `size` (the last may be shorter).

        Streams: it holds one batch and a compact record of the CVE ids seen so far, never the whole file. Each list
        is new and the caller may keep it. Every row is checked as it is read, so a bad row (a malformed CVE id, a
        value outside [0, 1], a repeated CVE, a truncated or corrupt gzip stream) raises FeedUnreadable *after*
        earlier batches were yielded: the caller must write all batches in one database transaction and roll it back
        on FeedUnreadable, so that nothing of a bad file is kept. A file with no scores raises FeedUnreadable at the
        end.

        Each call reads the file again from its start (and refuses it if its header changed since `read_epss`);
        closing the iterator early closes the file.
        """
        if size < 1:
            raise ValueError(f"EPSS batch size must be at least 1, not {size}")
        with _open(self.path) as stream:
            lines = _lines(stream, self.path)
            header = _read_header(lines, self.path)
            if (header.model_version, header.score_date or self.score_date) != (self.model_version, self.score_date):
                raise FeedUnreadable(f"{SOURCE} {self.path}: its header changed since it was first read")
            yield from self._scores(lines, size)

    def _scores(self, lines: Iterator[tuple[int, bytes]], size: int) -> Iterator[list[EpssScore]]:
        where = f"{SOURCE} {self.path}"
        seen = _SeenCves()
        batch: list[EpssScore] = []
        count = 0
        for number, line in lines:
            row = _row(line, number, where)
            if row is None:
                continue
            cve_id, probability, percentile = row
            if not seen.add(cve_id):
                raise FeedUnreadable(f"{where}: line {number}: {cve_id} is listed a second time")
            batch.append(EpssScore(cve_id, probability, percentile, self.score_date, self.model_version))
            count += 1
            if len(batch) == size:
                yield batch
                batch = []
        if count == 0:
            raise FeedUnreadable(f"{where} holds no scores (nothing after the column line {COLUMNS!r})")
        if batch:
            yield batch


def read_epss(path: Path, score_date: date | None = None, today: date | None = None) -> EpssSnapshot:
    """The header of the EPSS file in `path` (plain or gzipped, told from its content), checked; no score is read yet.

    The score date is the header's `score_date`; when the header has none, `score_date`; when that is None, the
    YYYY-MM-DD date in the file name (epss_scores-2026-08-16.csv.gz). Raises FeedUnreadable when none of these
    gives a date, when the header and `score_date` disagree, when the date is after `today` (default: today in UTC),
    or when the file cannot be read, is an HTML page, or does not open with EPSS's header. Rows are read and checked
    by `EpssSnapshot.batches()`, whose docstring gives the streaming contract.
    """
    with _open(path) as stream:
        header = _read_header(_lines(stream, path), path)
    day = _score_date(path, header.score_date, score_date)
    today = today or datetime.now(UTC).date()
    if day > today:
        raise FeedUnreadable(f"{SOURCE} {path}: score date {day} is in the future (today is {today})")
    return EpssSnapshot(path=path, score_date=day, model_version=header.model_version)


@dataclass(frozen=True, slots=True)
class _Header:
    model_version: str
    score_date: date | None


@contextlib.contextmanager
def _open(path: Path) -> Iterator[io.BufferedIOBase]:
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise FeedUnreadable(f"cannot read {SOURCE} {path}: {exc}") from None
    with handle:
        try:
            magic = handle.peek(2)[:2]
        except OSError as exc:
            raise FeedUnreadable(f"cannot read {SOURCE} {path}: {exc}") from None
        if magic == _GZIP_MAGIC:
            with gzip.GzipFile(fileobj=handle, mode="rb") as stream:
                yield stream
        else:
            yield handle


def _lines(stream: io.BufferedIOBase, path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, line without its end of line), read in chunks: GzipFile.readline costs more than the parsing."""
    number = 0
    rest = b""
    while True:
        try:
            chunk = stream.read(_CHUNK_BYTES)
        except EOFError:
            raise FeedUnreadable(
                f"{SOURCE} {path} is truncated: the gzip stream ends early, after line {number} was read"
            ) from None
        except (gzip.BadGzipFile, zlib.error) as exc:
            raise FeedUnreadable(f"{SOURCE} {path}: the gzip stream is corrupt after line {number}: {exc}") from None
        except OSError as exc:
            raise FeedUnreadable(f"cannot read {SOURCE} {path} after line {number}: {exc}") from None
        if not chunk:
            break
        complete = (rest + chunk).split(b"\n")
        rest = complete.pop()
        for line in complete:
            number += 1
            if len(line) > MAX_LINE_BYTES:
                raise FeedUnreadable(f"{SOURCE} {path}: line {number} is longer than {MAX_LINE_BYTES} bytes")
            yield number, line
        if len(rest) > MAX_LINE_BYTES:
            raise FeedUnreadable(f"{SOURCE} {path}: line {number + 1} is longer than {MAX_LINE_BYTES} bytes")
    if rest:
        yield number + 1, rest


def _text(raw: bytes, number: int, where: str) -> str:
    try:
        return raw.decode("ascii").strip()
    except UnicodeDecodeError:
        raise FeedUnreadable(f"{where}: line {number} is not ASCII text: {raw[:80]!r}") from None


def _read_header(lines: Iterator[tuple[int, bytes]], path: Path) -> _Header:
    """Reads `lines` up to and including the column line."""
    where = f"{SOURCE} {path}"
    model_version = ""
    header_date: date | None = None
    for number, raw in lines:
        if number == 1:
            raw = raw.removeprefix(b"\xef\xbb\xbf")
        if raw.lstrip().startswith(b"<"):
            # A proxy or CDN error page saved under the file's name.
            what = "an HTML page" if b"html" in raw.lower() else "markup (HTML or XML)"
            raise FeedUnreadable(f"{where}: got {what}, not CSV (line {number}: {raw[:80]!r})")
        line = _text(raw, number, where)
        if not line:
            continue
        if line.startswith("#"):
            # `#model_version:v2025.03.14,score_date:2025-03-16T00:00:00+0000`; other keys (a mirror's
            # `#source:...`) are ignored.
            for pair in line[1:].split(","):
                key, _, value = pair.partition(":")
                if key.strip() == "model_version":
                    model_version = value.strip()
                elif key.strip() == "score_date":
                    header_date = _header_date(value.strip(), f"{where}: line {number}")
            continue
        if line.lower() != COLUMNS:
            raise FeedUnreadable(f"{where}: line {number} should be the column line {COLUMNS!r}, not {line[:80]!r}")
        return _Header(model_version, header_date)
    raise FeedUnreadable(f"{where} ends before its column line {COLUMNS!r}")


def _header_date(value: str, where: str) -> date:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise FeedUnreadable(f"{where}: score_date {value!r} is not a date") from None
    return parsed.astimezone(UTC).date() if parsed.tzinfo else parsed.date()


def _score_date(path: Path, in_header: date | None, given: date | None) -> date:
    if in_header is not None:
        if given is not None and given != in_header:
            raise FeedUnreadable(f"{SOURCE} {path}: the header says score date {in_header}, but {given} was given")
        return in_header
    if given is not None:
        return given
    found = set(_NAME_DATE.findall(path.name))
    if len(found) == 1:
        try:
            return date.fromisoformat(found.pop())
        except ValueError:
            pass
    raise FeedUnreadable(
        f"{SOURCE} {path}: no score date: the header has none, none was given, and the file name holds no"
        " single valid YYYY-MM-DD date"
    )


def _row(line: bytes, number: int, where: str) -> tuple[str, float, float] | None:
    """(CVE id, probability, percentile) of a score line, None for a blank line."""
    # The common case in one regular expression; anything else is checked piece by piece for a precise message.
    if (match := _ROW.fullmatch(line)) is not None:
        probability, percentile = float(match[2]), float(match[3])
        if probability <= 1.0 and percentile <= 1.0:
            return match[1].decode("ascii"), probability, percentile
    text = _text(line, number, where)
    if not text:
        return None
    fields = [field.strip() for field in text.split(",")]
    if len(fields) != 3:
        raise FeedUnreadable(f"{where}: line {number} has {len(fields)} fields, not 3 ({COLUMNS}): {text[:80]!r}")
    cve_id, epss, percentile_text = fields
    if not CVE_ID.match(cve_id):
        raise FeedUnreadable(f"{where}: line {number}: {cve_id[:40]!r} is not a CVE id (CVE-YYYY-NNNN)")
    return (
        cve_id,
        _unit_interval(epss, "epss", number, cve_id, where),
        _unit_interval(percentile_text, "percentile", number, cve_id, where),
    )


class _SeenCves:
    """The CVE ids read so far, in little memory: a bit per CVE number in a bitmap per year (FIRST's 360k ids take
    about 1.5 MB this way, against 40 MB as a set of strings), and a set for ids a bitmap would not suit."""

    def __init__(self) -> None:
        self._bitmaps: dict[str, bytearray] = {}
        self._others: set[str] = set()

    def add(self, cve_id: str) -> bool:
        """Records `cve_id` (which matches CVE_ID); False when it was recorded before."""
        year, digits = cve_id[4:8], cve_id[9:]
        # Only a canonical number (no zero padding beyond 4 digits) gets a bit, so two ids never share one.
        canonical = len(digits) == 4 or (len(digits) <= 7 and digits[0] != "0")
        number = int(digits) if canonical else _BITMAP_NUMBERS
        bitmap = self._bitmaps.get(year)
        if bitmap is None and number < _BITMAP_NUMBERS and len(self._bitmaps) < _BITMAP_YEARS:
            bitmap = self._bitmaps[year] = bytearray()
        if bitmap is None or number >= _BITMAP_NUMBERS:
            # Where an id goes depends only on the id and the years met before it, so a repeat goes the same way.
            if cve_id in self._others:
                return False
            self._others.add(cve_id)
            return True
        index, mask = number >> 3, 1 << (number & 7)
        if index >= len(bitmap):
            bitmap.extend(bytes(index + 1 - len(bitmap)))
        if bitmap[index] & mask:
            return False
        bitmap[index] |= mask
        return True


def _unit_interval(value: str, column: str, number: int, cve_id: str, where: str) -> float:
    if _DECIMAL.fullmatch(value):
        parsed = float(value)
        if 0.0 <= parsed <= 1.0:
            return parsed
    raise FeedUnreadable(f"{where}: line {number} ({cve_id}): {column} {value!r} is not a number in [0, 1]")
