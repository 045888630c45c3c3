"""CVE JSON 5 records (the CVE List, cvelistV5, and CISA's Vulnrichment) as CveRecords: one record per .json or
.json.gz file (or a JSON list of records), a directory laid out like cvelistV5 (every CVE-*.json below it; the
repository's delta.json and deltaLog.json are not records), or a .tar.xz / .tar.gz / .tar archive of CVE-*.json
files, read as a stream, member by member (patchday.feeds.files.tar_members: links skipped, nothing extracted).

What is taken from a record: the English description ("en", "en-US", ...); published and updated times from
cveMetadata; CVSS v4.0, v3.1, v3.0 and v2.0 metrics of the CNA container (source "cna", scorer = its
providerMetadata.shortName) and of ADP containers (CISA-ADP -> source "cisa-adp", any other ADP -> "other");
from CISA-ADP's `other` metrics the SSVC decision points (type "ssvc": Exploitation, Automatable, Technical Impact,
values lower-cased because Vulnrichment spells some in title case) and the KEV date (type "kev": dateAdded);
CWE ids and reference URLs of every container. A REJECTED record becomes a record with status "REJECTED", its
rejection reason as the description, and no scores, CWEs or references.

Scores are checked as the NVD reader checks them (patchday.feeds.nvd.checked_cvss): an unusable vector or a
baseScore that disagrees with its vector is dropped and reported, to `problems` when given, logged otherwise;
the record is kept. Anything else that does not fit raises FeedUnreadable naming the source, file, record and
reason, unless the caller passes a MalformedRecords policy (patchday.feeds.files), which leaves such a record out
and lists it. Records are yielded as they are read; callers that need all or nothing collect them first.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Final

from patchday.core.errors import FeedUnreadable
from patchday.core.vulnerability import CVE_ID, CveRecord, CvssScore, CvssVersion, SsvcPoints
from patchday.feeds.files import MalformedRecords, is_tar, read_limited, skip_or_raise, tar_members
from patchday.feeds.nvd import (
    CISA_ADP,
    CISA_ADP_ORG_ID,
    RecordContext,
    UnusableMetric,
    checked_cvss,
    decode_json,
    is_english,
    parse_time,
    ssvc_points,
)

SOURCE: Final = "CVE JSON 5"
MAX_RECORD_BYTES: Final = 64 * 1024 * 1024  # one record; the largest in cvelistV5 are a few MB
_METRICS: Final = {
    "cvssV4_0": CvssVersion.V4_0,
    "cvssV3_1": CvssVersion.V3_1,
    "cvssV3_0": CvssVersion.V3_0,
    "cvssV2_0": CvssVersion.V2,
}
_CWE_ID: Final = re.compile(r"^CWE-\d+$")
_CWE_IN_TEXT: Final = re.compile(r"^(CWE-\d+)\b")  # older records name the CWE only in the description text
_RECORD_FILE: Final = re.compile(r"^CVE-\d{4}-\d{4,}\.json(\.gz)?$")


def _object(
    parent: Mapping[str, object], key: str, ctx: RecordContext, *, required: bool = False
) -> Mapping[str, object]:
    value = parent.get(key)
    if value is None and not required:
        return {}
    if not isinstance(value, Mapping):
        raise ctx.fail(f"{key!r} must be an object" if value is not None else f"missing {key!r}")
    return value


def _objects(parent: Mapping[str, object], key: str, ctx: RecordContext) -> list[Mapping[str, object]]:
    value = parent.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
        raise ctx.fail(f"{key!r} must be a list of objects")
    return value


def _english(items: list[Mapping[str, object]]) -> str:
    for item in items:
        value = item.get("value")
        if is_english(item.get("lang")) and isinstance(value, str):
            return value
    return ""


def _time_field(metadata: Mapping[str, object], key: str, ctx: RecordContext) -> datetime | None:
    value = metadata.get(key)
    if value is None:
        return None
    moment = parse_time(value)
    if moment is None:
        raise ctx.fail(f"cveMetadata.{key} is not an ISO 8601 time: {value!r}")
    return moment


def _provider(container: Mapping[str, object], ctx: RecordContext) -> tuple[str, str]:
    """(shortName or orgId, orgId) of the container's provider."""
    metadata = _object(container, "providerMetadata", ctx)
    org, short = metadata.get("orgId"), metadata.get("shortName")
    org = org if isinstance(org, str) else ""
    return (short if isinstance(short, str) and short else org), org


class _Collected:
    """What the containers say, gathered in order."""

    __slots__ = ("cwes", "kev", "references", "scores", "ssvc")

    def __init__(self) -> None:
        self.scores: list[CvssScore] = []
        self.cwes: dict[str, None] = {}
        self.references: dict[str, None] = {}
        self.ssvc: SsvcPoints | None = None
        self.kev: date | None = None


def _read_other(other: Mapping[str, object], label: str, found: _Collected, ctx: RecordContext) -> None:
    """CISA-ADP's `other` metrics: SSVC points and the KEV date."""
    kind, content = other.get("type"), other.get("content")
    if kind == "ssvc":
        try:
            if not isinstance(content, Mapping):
                raise UnusableMetric("SSVC content is not an object")
            found.ssvc = ssvc_points(content.get("options"), content.get("timestamp"), "cisa-adp")
        except UnusableMetric as exc:
            ctx.drop(f"{label}: {exc}")
    elif kind == "kev":
        added = content.get("dateAdded") if isinstance(content, Mapping) else None
        try:
            found.kev = date.fromisoformat(added) if isinstance(added, str) else None
        except ValueError:
            found.kev = None
        if found.kev is None:
            ctx.drop(f"{label}: KEV dateAdded {added!r} is not a date")


def _read_container(
    container: Mapping[str, object], label: str, source: str, found: _Collected, ctx: RecordContext
) -> None:
    scorer, _ = _provider(container, ctx)
    for index, metric in enumerate(_objects(container, "metrics", ctx)):
        for key, version in _METRICS.items():
            data = metric.get(key)
            if data is None:
                continue
            try:
                if not isinstance(data, Mapping):
                    raise UnusableMetric(f"{key} is not an object")
                found.scores.append(checked_cvss(version, data, source, scorer))
            except UnusableMetric as exc:
                ctx.drop(f"{label}.metrics[{index}].{key} from {scorer}: {exc}")
        other = metric.get("other")
        if source == "cisa-adp" and isinstance(other, Mapping):
            _read_other(other, f"{label}.metrics[{index}].other", found, ctx)
    for problem_type in _objects(container, "problemTypes", ctx):
        for item in _objects(problem_type, "descriptions", ctx):
            cwe, text = item.get("cweId"), item.get("description")
            if isinstance(cwe, str) and _CWE_ID.match(cwe):
                found.cwes.setdefault(cwe, None)
            elif isinstance(text, str) and (match := _CWE_IN_TEXT.match(text)):
                found.cwes.setdefault(match.group(1), None)
    for reference in _objects(container, "references", ctx):
        url = reference.get("url")
        if isinstance(url, str) and url:
            found.references.setdefault(url, None)


def _parse(record: object, where: str, problems: list[str] | None) -> CveRecord:
    if not isinstance(record, Mapping):
        raise FeedUnreadable(f"{SOURCE} {where}: a CVE record must be a JSON object, not {type(record).__name__}")
    metadata = record.get("cveMetadata")
    ident = metadata.get("cveId") if isinstance(metadata, Mapping) else None
    if not isinstance(metadata, Mapping) or not isinstance(ident, str) or not CVE_ID.match(ident):
        raise FeedUnreadable(f"{SOURCE} {where}: record has no CVE id (cveMetadata.cveId is {ident!r})")
    ctx = RecordContext(SOURCE, where, ident, problems)
    if record.get("dataType", "CVE_RECORD") != "CVE_RECORD":
        raise ctx.fail(f"dataType is {record.get('dataType')!r}, not 'CVE_RECORD'")
    version = record.get("dataVersion")
    if version is not None and not str(version).startswith("5."):
        raise ctx.fail(f"dataVersion {version!r} is not CVE JSON 5")
    state = metadata.get("state")
    if state not in {"PUBLISHED", "REJECTED"}:
        raise ctx.fail(f"cveMetadata.state {state!r} is neither PUBLISHED nor REJECTED")
    containers = _object(record, "containers", ctx, required=True)
    cna = _object(containers, "cna", ctx, required=True)
    published, modified = _time_field(metadata, "datePublished", ctx), _time_field(metadata, "dateUpdated", ctx)
    if state == "REJECTED":
        return CveRecord(
            cve_id=ident,
            source="cve5",
            description=_english(_objects(cna, "rejectedReasons", ctx)),
            published=published,
            modified=modified,
            status="REJECTED",
            cvss=(),
            cwes=(),
            references=(),
        )
    found = _Collected()
    _read_container(cna, "containers.cna", "cna", found, ctx)
    adps = containers.get("adp", [])
    if not isinstance(adps, list) or not all(isinstance(adp, Mapping) for adp in adps):
        raise ctx.fail("containers.adp must be a list of objects")
    for index, adp in enumerate(adps):
        name, org = _provider(adp, ctx)
        source = "cisa-adp" if org == CISA_ADP_ORG_ID or name == CISA_ADP else "other"
        _read_container(adp, f"containers.adp[{index}]", source, found, ctx)
    return CveRecord(
        cve_id=ident,
        source="cve5",
        description=_english(_objects(cna, "descriptions", ctx)),
        published=published,
        modified=modified,
        status="PUBLISHED",
        cvss=tuple(found.scores),
        cwes=tuple(found.cwes),
        references=tuple(found.references),
        ssvc=found.ssvc,
        kev_date_added=found.kev,
    )


def parse_cve5(obj: object, *, where: str = "payload", problems: list[str] | None = None) -> CveRecord:
    """A CveRecord from one decoded CVE JSON 5 record. Unusable scores are dropped and reported (see the module
    docstring); anything else that does not fit raises FeedUnreadable naming `where`, the record and why."""
    return _parse(obj, where, problems)


# -- files -----------------------------------------------------------------------------------------------


def _records_in(
    document: object, where: str, problems: list[str] | None, malformed: MalformedRecords | None
) -> Iterator[CveRecord]:
    items = list(enumerate(document)) if isinstance(document, list) else [(None, document)]
    for index, item in items:
        try:
            record = _parse(item, where if index is None else f"{where} entry {index}", problems)
        except FeedUnreadable as exc:
            skip_or_raise(exc, malformed)
            continue
        yield record


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


def _is_record_file(name: str) -> bool:
    return bool(_RECORD_FILE.match(name)) and not name.endswith(".gz")


def read_cve5(
    path: Path, *, problems: list[str] | None = None, malformed: MalformedRecords | None = None
) -> Iterator[CveRecord]:
    """Every record in `path` (a .json or .json.gz file, a cvelistV5-style directory, or a tar archive; see the
    module docstring), one file at a time. Raises FeedUnreadable naming the file and record when one cannot be
    read (records before it have been yielded), unless `malformed` takes the record (see
    patchday.feeds.files.MalformedRecords); dropped scores go to `problems`."""
    if path.is_dir():
        files = sorted(p for p in path.rglob("CVE-*") if p.is_file() and _RECORD_FILE.match(p.name))
        if not files:
            raise FeedUnreadable(f"{SOURCE}: {path} holds no CVE-*.json files")
        for file in files:
            raw = read_limited(file, SOURCE, MAX_RECORD_BYTES)
            yield from _file_records(raw, f"file {file}", problems, malformed, one_of_many=True)
    elif not path.exists():
        raise FeedUnreadable(f"{SOURCE}: {path} does not exist")
    elif is_tar(path):
        for name, raw in tar_members(path, SOURCE, _is_record_file, MAX_RECORD_BYTES):
            yield from _file_records(raw, f"file {path} member {name}", problems, malformed, one_of_many=True)
    elif path.name.endswith((".json", ".json.gz")):
        raw = read_limited(path, SOURCE, MAX_RECORD_BYTES)
        yield from _file_records(raw, f"file {path}", problems, malformed, one_of_many=False)
    else:
        raise FeedUnreadable(f"{SOURCE}: {path} is not a directory, .json, .json.gz or tar archive")
