"""NVD CVE API 2.0 records as CveRecords: one `cve` object per file (the layout of fkie-cad/nvd-json-data-feeds),
an API response page (`{"resultsPerPage", "startIndex", "totalResults", "vulnerabilities": [{"cve": {...}}]}`),
either one gzipped, a directory of them (every *.json and *.json.gz below it, read one file at a time), or a tar
archive of them (read as a stream, member by member; a mirror's SOURCES.json is not a record).

Scores: every CVSS metric (v2, v3.0, v3.1, v4.0) is parsed and scored again with the `cvss` library. A metric whose
vector does not parse, is not of the metric's CVSS version, or whose baseScore differs from the library's by more
than 0.05 is dropped and the record is kept with its other scores: one bad score from one scorer should not hide
the CVE, its KEV date or the other scorers' assessments. Each dropped score (or SSVC assessment) is reported as a
message naming the source, file, record and reason: appended to `problems` when the caller passes a list, logged
as a warning otherwise.

Who scored: `nvd@nist.gov` -> source "nvd"; CISA-ADP (NVD names it by its CVE org id) -> "cisa-adp", scorer
"CISA-ADP"; any other source is the CNA (NVD shows only its own, the CNA's and ADP scores) -> "cna", with the scorer
as NVD names it (an e-mail address or the CNA's org UUID). `metrics.ssvcV203` gives the SSVC points,
`cisaExploitAdd` the KEV date. Times without a zone are UTC (NVD's convention).

Everything else that does not fit (not JSON, an HTML page, no CVE id, a field of the wrong type, a bad date) raises
FeedUnreadable naming the source, file, record and reason, unless the caller passes a MalformedRecords policy
(patchday.feeds.files), which leaves such a record of a dump out and lists it. Records are yielded as files are read,
so a caller that needs all or nothing collects them first (the import service does, inside one transaction).
"""

from __future__ import annotations

import functools
import json
import logging
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Final

from cvss import CVSS2, CVSS3, CVSS4
from cvss.exceptions import CVSSError

from patchday.core.errors import FeedUnreadable
from patchday.core.vulnerability import CVE_ID, CveRecord, CvssScore, CvssVersion, SsvcPoints
from patchday.feeds.files import MalformedRecords, is_tar, read_limited, skip_or_raise, tar_members

SOURCE: Final = "NVD"
NVD_SCORER: Final = "nvd@nist.gov"
CISA_ADP_ORG_ID: Final = "134c704f-9b21-4f2e-91b3-4a467353bcc0"  # CISA-ADP's org id in CVE Services
CISA_ADP: Final = "CISA-ADP"
SCORE_TOLERANCE: Final = 0.05  # the published baseScore may differ from the recomputed one by rounding only
MAX_FILE_BYTES: Final = 256 * 1024 * 1024  # an API page holds at most 2,000 records; kernel records reach ~200 kB
_METRICS: Final = {
    "cvssMetricV40": CvssVersion.V4_0,
    "cvssMetricV31": CvssVersion.V3_1,
    "cvssMetricV30": CvssVersion.V3_0,
    "cvssMetricV2": CvssVersion.V2,
}
_VECTOR_PREFIX: Final = {
    CvssVersion.V2: "",
    CvssVersion.V3_0: "CVSS:3.0/",
    CvssVersion.V3_1: "CVSS:3.1/",
    CvssVersion.V4_0: "CVSS:4.0/",
}
_CWE: Final = re.compile(r"^CWE-\d+$")
_SSVC_VALUES: Final = {
    "exploitation": frozenset({"none", "poc", "active"}),
    "automatable": frozenset({"yes", "no"}),
    "technicalimpact": frozenset({"partial", "total"}),
}

_log = logging.getLogger(__name__)


# -- shared with the CVE JSON 5 reader (patchday.feeds.cve5) ---------------------------------------------


class UnusableMetric(ValueError):
    """One CVSS or SSVC assessment inside a record cannot be used; the record itself is fine."""


@functools.lru_cache(maxsize=16384)
def _computed_base_score(version: CvssVersion, vector: str) -> float:
    """The base score the `cvss` library computes for `vector`; raises UnusableMetric. Cached: vectors repeat a lot."""
    prefix = _VECTOR_PREFIX[version]
    if (prefix and not vector.startswith(prefix)) or (not prefix and vector.startswith("CVSS:")):
        raise UnusableMetric(f"vector {vector!r} is not a CVSS {version} vector")
    scorer = CVSS2 if version is CvssVersion.V2 else CVSS4 if version is CvssVersion.V4_0 else CVSS3
    try:
        return float(scorer(vector).base_score)
    except (CVSSError, ValueError, ArithmeticError) as exc:
        raise UnusableMetric(f"vector {vector!r} does not parse: {exc}") from None


def checked_cvss(version: CvssVersion, data: Mapping[str, object], source: str, scorer: str) -> CvssScore:
    """A CvssScore from one metric's data (`vectorString`, `baseScore`, optional `version`), after checking the
    vector with the `cvss` library and the score against the one it computes; raises UnusableMetric."""
    vector, score, declared = data.get("vectorString"), data.get("baseScore"), data.get("version")
    if not isinstance(vector, str) or not vector:
        raise UnusableMetric(f"CVSS {version} metric has no vectorString")
    if isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score):
        raise UnusableMetric(f"CVSS {version} metric baseScore {score!r} is not a number")
    if declared is not None and str(declared) != version.value:
        raise UnusableMetric(f"CVSS {version} metric says version {declared!r}")
    computed = _computed_base_score(version, vector)
    if abs(computed - score) > SCORE_TOLERANCE + 1e-9:
        raise UnusableMetric(f"baseScore {score} disagrees with {computed} computed from {vector}")
    return CvssScore(version=version, vector=vector, base_score=float(score), source=source, scorer=scorer)


def ssvc_points(options: object, timestamp: object, source: str) -> SsvcPoints:
    """SsvcPoints from SSVC `options` (a list of one-key objects: Exploitation / exploitation, Automatable,
    Technical Impact / technicalImpact; values in any case) and its `timestamp`; raises UnusableMetric."""
    if not isinstance(options, list):
        raise UnusableMetric("SSVC options is not a list")
    found: dict[str, str] = {}
    for option in options:
        if not isinstance(option, Mapping):
            raise UnusableMetric(f"SSVC option {option!r} is not an object")
        for key, value in option.items():
            name = str(key).replace(" ", "").replace("_", "").lower()
            if name not in _SSVC_VALUES:
                continue  # later SSVC versions may add decision points; these three are the ones we use
            if not isinstance(value, str) or value.lower() not in _SSVC_VALUES[name]:
                raise UnusableMetric(f"SSVC {key} {value!r} is not one of {sorted(_SSVC_VALUES[name])}")
            found[name] = value.lower()  # Vulnrichment spells some values in title case ("PoC", "Total")
    if "exploitation" not in found:
        raise UnusableMetric("SSVC assessment has no Exploitation")
    assessed = None
    if timestamp is not None:
        moment = parse_time(timestamp)
        if moment is None:
            raise UnusableMetric(f"SSVC timestamp {timestamp!r} is not an ISO 8601 time")
        assessed = moment.date()
    return SsvcPoints(
        exploitation=found["exploitation"],
        automatable=found.get("automatable"),
        technical_impact=found.get("technicalimpact"),
        source=source,
        assessed=assessed,
    )


def parse_time(value: object) -> datetime | None:
    """An aware UTC datetime from an ISO 8601 string (no zone means UTC), None when `value` is not one."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def is_english(lang: object) -> bool:
    """True for "en", "en-US", "en_GB", ... (CVE JSON 5 uses BCP 47 tags, NVD plain "en")."""
    return isinstance(lang, str) and (lang.lower() == "en" or lang.lower().startswith(("en-", "en_")))


def load_json(path: Path, source: str, max_bytes: int = MAX_FILE_BYTES) -> object:
    """The decoded JSON document in `path` (gzipped when it ends in .gz); raises FeedUnreadable naming the file."""
    return decode_json(read_limited(path, source, max_bytes), f"{source} file {path}")


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


def decode_json(raw: bytes, where: str) -> object:
    """`raw` decoded as JSON; raises FeedUnreadable naming `where` (and saying so when it is an HTML page)."""
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        if raw.lstrip()[:1] == b"<":
            raise FeedUnreadable(f"{where} is an HTML or XML page, not JSON (an error page saved instead?)") from None
        raise FeedUnreadable(f"{where} is not valid JSON: {exc}") from None


# -- one record ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecordContext:
    """Where a record came from (feed, file or payload, CVE id), to name it in errors and reported problems."""

    source: str
    where: str
    record: str
    problems: list[str] | None

    def fail(self, reason: str) -> FeedUnreadable:
        return FeedUnreadable(f"{self.source} {self.where}, record {self.record}: {reason}")

    def drop(self, reason: str) -> None:
        """Report an assessment left out of the record: to `problems` when the caller gave a list, else the log."""
        message = f"{self.source} {self.where}, record {self.record}: dropped {reason}"
        if self.problems is None:
            _log.warning("%s", message)
        else:
            self.problems.append(message)


def _objects(record: Mapping[str, object], key: str, ctx: RecordContext) -> list[Mapping[str, object]]:
    value = record.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
        raise ctx.fail(f"{key!r} must be a list of objects")
    return value


def _text(record: Mapping[str, object], key: str, ctx: RecordContext) -> str:
    value = record.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ctx.fail(f"{key!r} must be a string, not {value!r}")
    return value


def _time(record: Mapping[str, object], key: str, ctx: RecordContext) -> datetime | None:
    value = record.get(key)
    if value is None:
        return None
    moment = parse_time(value)
    if moment is None:
        raise ctx.fail(f"{key!r} is not an ISO 8601 time: {value!r}")
    return moment


def _date(record: Mapping[str, object], key: str, ctx: RecordContext) -> date | None:
    value = record.get(key)
    if value is None:
        return None
    try:
        if isinstance(value, str):
            return date.fromisoformat(value)
    except ValueError:
        pass
    raise ctx.fail(f"{key!r} is not a date: {value!r}")


def _description(record: Mapping[str, object], ctx: RecordContext) -> str:
    for item in _objects(record, "descriptions", ctx):
        value = item.get("value")
        if is_english(item.get("lang")) and isinstance(value, str):
            return value
    return ""


def _source_of(scorer: str) -> tuple[str, str]:
    if scorer == NVD_SCORER:
        return "nvd", scorer
    if scorer in {CISA_ADP_ORG_ID, CISA_ADP}:
        return "cisa-adp", CISA_ADP
    return "cna", scorer


def _scores(metrics: Mapping[str, object], ctx: RecordContext) -> tuple[CvssScore, ...]:
    scores: list[CvssScore] = []
    for key, version in _METRICS.items():
        for index, entry in enumerate(_objects(metrics, key, ctx)):
            label = f"metrics.{key}[{index}]"
            scorer, data = entry.get("source"), entry.get("cvssData")
            if not isinstance(scorer, str) or not scorer:
                ctx.drop(f"{label}: no source")
                continue
            if not isinstance(data, Mapping):
                ctx.drop(f"{label} from {scorer}: no cvssData")
                continue
            source, name = _source_of(scorer)
            try:
                scores.append(checked_cvss(version, data, source, name))
            except UnusableMetric as exc:
                ctx.drop(f"{label} from {scorer}: {exc}")
    return tuple(scores)


def _ssvc(metrics: Mapping[str, object], ctx: RecordContext) -> SsvcPoints | None:
    for index, entry in enumerate(_objects(metrics, "ssvcV203", ctx)):
        scorer, data = entry.get("source"), entry.get("ssvcData")
        source = _source_of(scorer)[0] if isinstance(scorer, str) else "other"
        try:
            if not isinstance(data, Mapping):
                raise UnusableMetric("no ssvcData")
            return ssvc_points(data.get("options"), data.get("timestamp"), source)
        except UnusableMetric as exc:
            ctx.drop(f"metrics.ssvcV203[{index}]: {exc}")
    return None


def _cwes(record: Mapping[str, object], ctx: RecordContext) -> tuple[str, ...]:
    found: dict[str, None] = {}
    for weakness in _objects(record, "weaknesses", ctx):
        for item in _objects(weakness, "description", ctx):
            value = item.get("value")
            if isinstance(value, str) and _CWE.match(value):  # skips NVD-CWE-Other and NVD-CWE-noinfo
                found.setdefault(value, None)
    return tuple(found)


def _references(record: Mapping[str, object], ctx: RecordContext) -> tuple[str, ...]:
    found: dict[str, None] = {}
    for item in _objects(record, "references", ctx):
        url = item.get("url")
        if isinstance(url, str) and url:
            found.setdefault(url, None)
    return tuple(found)


def _parse(record: object, where: str, problems: list[str] | None) -> CveRecord:
    if not isinstance(record, Mapping):
        raise FeedUnreadable(f"{SOURCE} {where}: a CVE record must be a JSON object, not {type(record).__name__}")
    ident = record.get("id")
    if not isinstance(ident, str) or not CVE_ID.match(ident):
        raise FeedUnreadable(f"{SOURCE} {where}: record has no CVE id ('id' is {ident!r})")
    ctx = RecordContext(SOURCE, where, ident, problems)
    metrics = record.get("metrics", {})
    if not isinstance(metrics, Mapping):
        raise ctx.fail("'metrics' must be an object")
    return CveRecord(
        cve_id=ident,
        source="nvd",
        description=_description(record, ctx),
        published=_time(record, "published", ctx),
        modified=_time(record, "lastModified", ctx),
        status=_text(record, "vulnStatus", ctx),
        cvss=_scores(metrics, ctx),
        cwes=_cwes(record, ctx),
        references=_references(record, ctx),
        ssvc=_ssvc(metrics, ctx),
        kev_date_added=_date(record, "cisaExploitAdd", ctx),
    )


def parse_nvd_cve(obj: object, *, where: str = "payload", problems: list[str] | None = None) -> CveRecord:
    """A CveRecord from one decoded NVD API 2.0 `cve` object. Unusable scores are dropped and reported (see the
    module docstring); anything else that does not fit raises FeedUnreadable naming `where`, the record and why."""
    return _parse(obj, where, problems)


# -- files -----------------------------------------------------------------------------------------------


def _records_in(
    document: object, where: str, problems: list[str] | None, malformed: MalformedRecords | None = None
) -> Iterator[CveRecord]:
    if isinstance(document, Mapping) and "vulnerabilities" in document:
        entries = document["vulnerabilities"]
        if not isinstance(entries, list):
            raise FeedUnreadable(f"{SOURCE} {where}: 'vulnerabilities' must be a list")
        for index, entry in enumerate(entries):
            try:
                if not isinstance(entry, Mapping) or "cve" not in entry:
                    raise FeedUnreadable(f"{SOURCE} {where}: vulnerabilities[{index}] has no 'cve' object")
                record = _parse(entry["cve"], f"{where} vulnerabilities[{index}]", problems)
            except FeedUnreadable as exc:
                skip_or_raise(exc, malformed)
                continue
            yield record
        return
    try:
        if isinstance(document, Mapping) and "cve" in document and "id" not in document:
            record = _parse(document["cve"], where, problems)  # one entry of a page, saved on its own
        elif isinstance(document, Mapping):
            record = _parse(document, where, problems)
        else:
            raise FeedUnreadable(f"{SOURCE} {where}: neither a CVE object nor an API response page")
    except FeedUnreadable as exc:
        skip_or_raise(exc, malformed)
        return
    yield record


def _is_json(name: str) -> bool:
    return name.endswith((".json", ".json.gz")) and name != "SOURCES.json"  # a mirror's provenance list


def _file_records(
    raw: bytes, where: str, problems: list[str] | None, malformed: MalformedRecords | None, *, one_of_many: bool
) -> Iterator[CveRecord]:
    """The records of one file's bytes; in a dump of many files, a file that is not JSON is one malformed record."""
    try:
        document = decode_json(raw, f"{SOURCE} {where}")
    except FeedUnreadable as exc:
        if not one_of_many:
            raise
        skip_or_raise(exc, malformed)
        return
    yield from _records_in(document, where, problems, malformed)


def read_nvd(
    path: Path, *, problems: list[str] | None = None, malformed: MalformedRecords | None = None
) -> Iterator[CveRecord]:
    """Every record in `path`: a .json or .json.gz file (one `cve` object or an API response page), a directory
    of them, or a tar archive of them (.tar.xz, .tar.gz, .tar; read as a stream), one file at a time.

    Raises FeedUnreadable naming the file and record when one cannot be read (records before it have been
    yielded), unless `malformed` takes the record (see patchday.feeds.files.MalformedRecords); dropped scores
    go to `problems` (see the module docstring)."""
    if is_tar(path) and path.is_file():
        found = False
        for name, raw in tar_members(path, SOURCE, lambda n: _is_json(n) and not n.endswith(".gz"), MAX_FILE_BYTES):
            found = True
            yield from _file_records(raw, f"file {path} member {name}", problems, malformed, one_of_many=True)
        if not found:
            raise FeedUnreadable(f"{SOURCE}: {path} holds no .json files")
        return
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and _is_json(p.name))
        if not files:
            raise FeedUnreadable(f"{SOURCE}: {path} holds no .json or .json.gz files")
    elif not path.exists():
        raise FeedUnreadable(f"{SOURCE}: {path} does not exist")
    elif not _is_json(path.name):
        raise FeedUnreadable(f"{SOURCE}: {path} is not a directory, .json, .json.gz file or tar archive")
    else:
        files = [path]
    for file in files:
        raw = read_limited(file, SOURCE, MAX_FILE_BYTES)
        yield from _file_records(raw, f"file {file}", problems, malformed, one_of_many=path.is_dir())
