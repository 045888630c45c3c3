"""Read-only questions about vulnerabilities and feeds, shared by the API and the dashboard.

The searchable list of CVEs, one CVE's whole story (record, CVSS decoded, EPSS trend, KEV entry,
advisories, affected packages and hosts), and each feed's import runs and state. Lists are
`Listing`s: counted in the database and loaded one page at a time, in a fixed number of queries.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from functools import reduce
from operator import or_
from typing import Any, Final, Generic, TypeVar, overload

from cvss import CVSS2, CVSS3, CVSS4, constants2, constants3, constants4
from cvss.exceptions import CVSSError
from django.db.models import Count, Exists, Max, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Length, Substr

from patchday.advisories.models import (
    Advisory,
    AdvisoryCve,
    EpssScore,
    FeedRun,
    KevEntry,
    Vulnerability,
)
from patchday.core.errors import NotFound
from patchday.core.severity import Rating, rating_for_score
from patchday.core.vulnerability import CVE_ID
from patchday.feeds.detect import SOURCES
from patchday.inventory.models import Host, HostPackage

STALE_AFTER_DAYS: Final = 7  # a feed whose newest data is older than this is stale (as `patchday feeds status`)

CHUNK: Final = 500
K = TypeVar("K")
T = TypeVar("T")


class Listing(Generic[T]):
    """A list too long to load: its length is counted in the database, and only a slice is loaded.

    Slicing loads the keys of that slice, then `hydrate` turns them into rows in a fixed number of
    queries. Django's Paginator and ninja's pagination both accept it in place of a QuerySet.
    """

    def __init__(self, keys: QuerySet[Any, K], hydrate: Callable[[list[K]], list[T]]) -> None:
        self._keys = keys
        self._hydrate = hydrate

    def __len__(self) -> int:
        return self._keys.count()

    def __iter__(self) -> Iterator[T]:
        """Everything, a chunk at a time (pages slice instead)."""
        start = 0
        while chunk := self[start : start + CHUNK]:
            yield from chunk
            start += CHUNK

    @overload
    def __getitem__(self, index: int) -> T: ...
    @overload
    def __getitem__(self, index: slice) -> list[T]: ...
    def __getitem__(self, index: int | slice) -> T | list[T]:
        if isinstance(index, int):
            return self._hydrate([self._keys[index]])[0]
        return self._hydrate(list(self._keys[index]))


# -- values the pages and the API show ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Epss:
    probability: float
    percentile: float
    score_date: date


@dataclass(frozen=True, slots=True)
class EpssTrend:
    """The latest EPSS score, every score kept (oldest first), and the change over 7 and 30 days."""

    latest: Epss
    history: tuple[Epss, ...]
    change_7d: float | None
    change_30d: float | None


@dataclass(frozen=True, slots=True)
class VulnerabilitySummary:
    """One row of the vulnerability list."""

    cve_id: str
    description: str  # the CVE record's, else an advisory's summary, else the KEV entry's name
    severity: Rating  # UNKNOWN when no CVSS score is published
    cvss_score: float | None
    cvss_version: str | None
    epss: Epss | None
    kev: bool  # in CISA's catalog, or NVD says it is
    kev_due_date: date | None
    packages: tuple[str, ...]
    has_fix: bool
    affected_hosts: int


@dataclass(frozen=True, slots=True)
class CvssMetric:
    code: str  # "AV"
    name: str  # "Attack Vector"
    value_code: str  # "N"
    value: str  # "Network"


@dataclass(frozen=True, slots=True)
class DecodedCvss:
    """One CVSS assessment with its vector spelled out; `metrics` is empty when the vector does not parse."""

    version: str
    vector: str
    base_score: float | None
    severity: Rating
    source: str  # nvd, cna, cisa-adp, other, or "advisory"
    scorer: str  # who scored it: nvd@nist.gov, GitHub_M, or the advisory id
    is_best: bool  # the score patchday ranks by (see core.vulnerability.best_cvss)
    metrics: tuple[CvssMetric, ...]


@dataclass(frozen=True, slots=True)
class AdvisoryNote:
    advisory_id: str
    source: str
    summary: str
    published: datetime | None
    modified: datetime | None
    withdrawn: datetime | None


@dataclass(frozen=True, slots=True)
class RangeNote:
    """Versions of a package an advisory says are affected: from `introduced` up to `fixed` (or `last_affected`)."""

    advisory_id: str
    introduced: str
    fixed: str
    last_affected: str
    limit: str
    withdrawn: bool


@dataclass(frozen=True, slots=True)
class AffectedPackage:
    ecosystem: str
    package: str
    fixed_versions: tuple[str, ...]  # from advisories still in force; empty: no fix has shipped
    ranges: tuple[RangeNote, ...]


@dataclass(frozen=True, slots=True)
class EcosystemPackages:
    ecosystem: str
    packages: tuple[AffectedPackage, ...]


@dataclass(frozen=True, slots=True)
class Reference:
    url: str
    is_web: bool  # http(s): safe to link; anything else is shown as text


@dataclass(frozen=True, slots=True)
class CveStory:
    """Everything patchday knows about one CVE; each part is None or empty when no feed said it."""

    cve_id: str
    record: Vulnerability | None  # from NVD or the CVE List
    severity: Rating
    scores: tuple[DecodedCvss, ...]  # the best first
    kev: KevEntry | None
    kev_noted: date | None  # when NVD or CISA-ADP say it was added to KEV, even without the catalog
    epss: EpssTrend | None
    advisories: tuple[AdvisoryNote, ...]
    affected: tuple[EcosystemPackages, ...]
    references: tuple[Reference, ...]
    affected_hosts: int
    records_loaded: bool  # whether any CVE record, KEV entry, EPSS score is stored at all: "not in KEV" means
    kev_loaded: bool  # something only once the catalog is imported
    epss_loaded: bool

    @property
    def description(self) -> str:
        return self.record.description if self.record else ""

    @property
    def has_fix(self) -> bool:
        return any(p.fixed_versions for e in self.affected for p in e.packages)


@dataclass(frozen=True, slots=True)
class InstalledAffected:
    package: str
    version: str
    arch: str
    fixed_versions: tuple[str, ...]
    advisories: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AffectedHost:
    name: str
    os_name: str
    inventory_at: datetime | None
    packages: tuple[InstalledAffected, ...]


class FeedState(StrEnum):
    OK = "ok"
    STALE = "stale"  # the newest data of the last success is older than STALE_AFTER_DAYS (or undated)
    FAILING = "failing"  # the last attempt failed; the data of the last success is still in use
    NEVER = "never"  # never imported successfully


@dataclass(frozen=True, slots=True)
class FeedStatus:
    source: str
    state: FeedState
    last_success: FeedRun | None
    last_attempt: FeedRun | None
    age_days: int | None  # days between the last success's data date and today

    @property
    def data_date(self) -> date | None:
        return self.last_success.data_date if self.last_success else None

    @property
    def is_stale(self) -> bool:
        """No success yet, or its data is undated or older than STALE_AFTER_DAYS (even while failing)."""
        return self.age_days is None or self.age_days > STALE_AFTER_DAYS


# -- the vulnerability list ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VulnerabilityFilter:
    """What the list shows. Unset criteria (empty, None) do not filter.

    `text` matches part of a CVE id, an advisory id, a package name, or words of a description or summary;
    `epss_min` is a probability (0-1) the latest EPSS score reaches; `severities` are CVSS ratings,
    UNKNOWN meaning no score; `has_fix` asks whether some advisory in force names a fixed version.
    """

    text: str = ""
    kev: bool | None = None
    epss_min: float | None = None
    severities: frozenset[Rating] = frozenset()
    has_fix: bool | None = None


# Score bands of the CVSS v3/v4 ratings: [low, high). They agree with severity.rating_for_score (a test checks).
SCORE_BANDS: Final[dict[Rating, tuple[float, float | None]]] = {
    Rating.LOW: (0.0, 4.0),
    Rating.MEDIUM: (4.0, 7.0),
    Rating.HIGH: (7.0, 9.0),
    Rating.CRITICAL: (9.0, None),
}


def _latest_epss_date() -> Subquery:
    return Subquery(
        EpssScore.objects.filter(cve_id=OuterRef("cve_id")).order_by("-score_date").values("score_date")[:1]
    )


def _named_in(rows: QuerySet[Any]) -> Q:
    """Some row of `rows` names the CVE being filtered: EXISTS, so that a negation is an anti-join
    (PostgreSQL plans NOT IN over a large subquery row by row)."""
    return Q(Exists(rows.filter(cve_id=OuterRef("cve_id"))))


def _in_kev() -> Q:
    return _named_in(KevEntry.objects.all()) | _named_in(Vulnerability.objects.filter(kev_date_added__isnull=False))


def _has_fix() -> Q:
    return _named_in(AdvisoryCve.objects.filter(advisory__withdrawn__isnull=True, advisory__ranges__fixed__gt=""))


def _text(text: str) -> Q:
    advisories = AdvisoryCve.objects.filter(
        Q(advisory__advisory_id__icontains=text)
        | Q(advisory__summary__icontains=text)
        | Q(advisory__ranges__package__icontains=text)
    )
    records = Vulnerability.objects.filter(description__icontains=text)
    kev = KevEntry.objects.filter(Q(name__icontains=text) | Q(product__icontains=text) | Q(vendor__icontains=text))
    return Q(cve_id__icontains=text) | _named_in(advisories) | _named_in(records) | _named_in(kev)


def _severity(severities: Iterable[Rating]) -> Q:
    ratings = set(severities)
    bands = [
        Q(cvss_score__gte=low) & (Q(cvss_score__lt=high) if high is not None else Q())
        for rating, (low, high) in SCORE_BANDS.items()
        if rating in ratings
    ]
    wanted: list[Q] = []
    if bands:
        wanted.append(_named_in(Vulnerability.objects.filter(reduce(or_, bands))))
    if Rating.UNKNOWN in ratings:
        wanted.append(~_named_in(Vulnerability.objects.filter(cvss_score__isnull=False)))
    return reduce(or_, wanted)


def _criteria(criteria: VulnerabilityFilter) -> Q:
    where = Q()
    text = criteria.text.strip()
    if text:
        where &= _text(text)
    if criteria.kev is not None:
        where &= _in_kev() if criteria.kev else ~_in_kev()
    if criteria.epss_min is not None:
        where &= _named_in(EpssScore.objects.filter(probability__gte=criteria.epss_min, score_date=_latest_epss_date()))
    if criteria.severities:
        where &= _severity(criteria.severities)
    if criteria.has_fix is not None:
        where &= _has_fix() if criteria.has_fix else ~_has_fix()
    return where


def search_vulnerabilities(criteria: VulnerabilityFilter) -> Listing[VulnerabilitySummary]:
    """CVEs any advisory, CVE record or KEV entry names (EPSS alone does not list a CVE), newest id first."""
    where = _criteria(criteria)
    # Sorted as numbers: CVE-2024-10000 is newer than CVE-2024-9999. The prefix "CVE-YYYY-" is fixed width.
    branches = [
        model.objects.filter(where)
        .annotate(cve_year=Substr("cve_id", 5, 4), cve_width=Length("cve_id"))
        .values_list("cve_id", "cve_year", "cve_width")
        .order_by()
        for model in (AdvisoryCve, Vulnerability, KevEntry)
    ]
    keys = branches[0].union(*branches[1:]).order_by("-cve_year", "-cve_width", "-cve_id")
    return Listing(keys, lambda rows: summaries([row[0] for row in rows]))


def _latest_epss(cve_ids: Sequence[str]) -> dict[str, Epss]:
    rows = EpssScore.objects.filter(cve_id__in=cve_ids, score_date=_latest_epss_date())
    return {row.cve_id: Epss(row.probability, row.percentile, row.score_date) for row in rows}


def _host_counts(cve_ids: Sequence[str]) -> dict[str, int]:
    rows = (
        AdvisoryCve.objects.filter(cve_id__in=cve_ids)
        .values("cve_id")
        .annotate(hosts=Count("advisory__matches__package_version__installations__host", distinct=True))
        .values_list("cve_id", "hosts")
        .order_by()
    )
    return dict(rows)


def summaries(cve_ids: Sequence[str]) -> list[VulnerabilitySummary]:
    """List rows of `cve_ids`, in that order, in five queries however many there are."""
    if not cve_ids:
        return []
    fields = ("cve_id", "description", "cvss_score", "cvss_version", "kev_date_added")
    records = {v.cve_id: v for v in Vulnerability.objects.filter(cve_id__in=cve_ids).only(*fields)}
    kev = {k.cve_id: k for k in KevEntry.objects.filter(cve_id__in=cve_ids).only("cve_id", "name", "due_date")}
    epss = _latest_epss(cve_ids)
    hosts = _host_counts(cve_ids)
    packages: dict[str, set[str]] = defaultdict(set)
    fixed: set[str] = set()
    summary: dict[str, str] = {}
    advisory_rows = (
        AdvisoryCve.objects.filter(cve_id__in=cve_ids)
        .values_list("cve_id", "advisory__summary", "advisory__withdrawn", "advisory__ranges__package",
                     "advisory__ranges__fixed")
        .order_by("advisory__advisory_id")
    )  # fmt: skip
    for cve_id, advisory_summary, withdrawn, package, fixed_version in advisory_rows:
        summary.setdefault(cve_id, advisory_summary)
        if package:
            packages[cve_id].add(package)
        if fixed_version and withdrawn is None:
            fixed.add(cve_id)
    rows: list[VulnerabilitySummary] = []
    for cve_id in cve_ids:
        record, entry = records.get(cve_id), kev.get(cve_id)
        score = record.cvss_score if record else None
        description = (record.description if record else "") or summary.get(cve_id) or (entry.name if entry else "")
        rows.append(
            VulnerabilitySummary(
                cve_id=cve_id,
                description=description,
                severity=rating_for_score(score) if score is not None else Rating.UNKNOWN,
                cvss_score=score,
                cvss_version=(record.cvss_version or None) if record else None,
                epss=epss.get(cve_id),
                kev=entry is not None or (record is not None and record.kev_date_added is not None),
                kev_due_date=entry.due_date if entry else None,
                packages=tuple(sorted(packages[cve_id])),
                has_fix=cve_id in fixed,
                affected_hosts=hosts.get(cve_id, 0),
            )
        )
    return rows


# -- one CVE's story ------------------------------------------------------------------------------------

_NAMING_MODELS: Final = (AdvisoryCve, Vulnerability, KevEntry, EpssScore)
_PARSERS: Final = {"2": (CVSS2, constants2), "3": (CVSS3, constants3), "4": (CVSS4, constants4)}
_OSV_TYPES: Final = {"CVSS_V2": "2.0", "CVSS_V3": "3.1", "CVSS_V4": "4.0"}


def decode_cvss(version: str, vector: str) -> tuple[tuple[CvssMetric, ...], float | None]:
    """The metrics of a CVSS vector in words (Attack Vector: Network), and its base score.

    A vector that does not parse under `version` gives no metrics and no score.
    """
    parser = _PARSERS.get(version[:1])
    if parser is None:
        return (), None
    kind, names = parser
    try:
        parsed = kind(vector)
    except CVSSError:
        return (), None
    metrics: list[CvssMetric] = []
    for part in parsed.clean_vector().split("/"):
        code, _, value = part.partition(":")
        if code == "CVSS" or not value:
            continue
        name = names.METRICS_ABBREVIATIONS.get(code, code)
        words = names.METRICS_VALUE_NAMES.get(code, {}).get(value, value)
        metrics.append(CvssMetric(code, name, value, words))
    base = float(parsed.base_score) if isinstance(parsed, CVSS4) else float(parsed.scores()[0])
    return tuple(metrics), base


def _scores(record: Vulnerability | None, advisories: Iterable[Advisory]) -> tuple[DecodedCvss, ...]:
    scores: list[DecodedCvss] = []
    for item in record.cvss if record else []:
        version, vector = str(item.get("version", "")), str(item.get("vector", ""))
        metrics, computed = decode_cvss(version, vector)
        given = item.get("base_score")
        base = float(given) if isinstance(given, int | float) else computed
        is_best = record is not None and vector == record.cvss_vector and version == record.cvss_version
        scores.append(
            DecodedCvss(
                version=version,
                vector=vector,
                base_score=base,
                severity=rating_for_score(base) if base is not None else Rating.UNKNOWN,
                source=str(item.get("source", "")),
                scorer=str(item.get("scorer", "")),
                is_best=is_best,
                metrics=metrics,
            )
        )
    for advisory in advisories:
        for item in advisory.severity:
            named = _OSV_TYPES.get(str(item.get("type", "")))
            vector = str(item.get("score", ""))
            if named is None:
                continue
            version = vector[5:].split("/", 1)[0] if vector.startswith("CVSS:") else named
            metrics, base = decode_cvss(version, vector)
            severity = rating_for_score(base) if base is not None else Rating.UNKNOWN
            scores.append(
                DecodedCvss(version, vector, base, severity, "advisory", advisory.advisory_id, False, metrics)
            )
    return tuple(sorted(scores, key=lambda s: not s.is_best))


def _change(history: Sequence[Epss], days: int) -> float | None:
    latest = history[-1]
    before = [s for s in history if s.score_date <= latest.score_date - timedelta(days=days)]
    return latest.probability - before[-1].probability if before else None


def _epss_trend(rows: Iterable[EpssScore]) -> EpssTrend | None:
    history = tuple(Epss(r.probability, r.percentile, r.score_date) for r in rows)
    if not history:
        return None
    return EpssTrend(history[-1], history, _change(history, 7), _change(history, 30))


def _affected(advisories: Iterable[Advisory]) -> tuple[EcosystemPackages, ...]:
    ranges: dict[tuple[str, str], list[RangeNote]] = defaultdict(list)
    for advisory in advisories:
        for r in advisory.ranges.all():
            note = RangeNote(
                advisory.advisory_id,
                r.introduced,
                r.fixed,
                r.last_affected,
                r.limit_version,
                advisory.withdrawn is not None,
            )
            ranges[(r.ecosystem, r.package)].append(note)
    by_ecosystem: dict[str, list[AffectedPackage]] = defaultdict(list)
    for (ecosystem, package), notes in sorted(ranges.items()):
        fixed = tuple(sorted({n.fixed for n in notes if n.fixed and not n.withdrawn}))
        by_ecosystem[ecosystem].append(AffectedPackage(ecosystem, package, fixed, tuple(notes)))
    return tuple(EcosystemPackages(e, tuple(p)) for e, p in sorted(by_ecosystem.items()))


def _reference(url: object) -> Reference:
    text = str(url)
    return Reference(text, bool(re.match(r"^https?://", text, re.IGNORECASE)))


def normalize_cve_id(text: str) -> str:
    """`text` as a CVE id (CVE-2024-3094); raises NotFound when it is not one."""
    cve_id = text.strip().upper()
    if not CVE_ID.match(cve_id):
        raise NotFound(f"{text!r} is not a CVE id (CVE-YYYY-NNNN)")
    return cve_id


def known_cve(cve_id: str) -> str:
    """`cve_id`, normalized, when some feed names it; raises NotFound otherwise."""
    cve_id = normalize_cve_id(cve_id)
    if not any(model.objects.filter(cve_id=cve_id).exists() for model in _NAMING_MODELS):
        raise NotFound(f"no feed names {cve_id}: no advisory, CVE record, KEV entry or EPSS score")
    return cve_id


def vulnerability_story(cve_id: str) -> CveStory:
    """What every feed says about `cve_id`, in six queries; raises NotFound when no feed names it."""
    cve_id = normalize_cve_id(cve_id)
    record = Vulnerability.objects.filter(cve_id=cve_id).first()
    kev = KevEntry.objects.filter(cve_id=cve_id).first()
    epss = _epss_trend(EpssScore.objects.filter(cve_id=cve_id).order_by("score_date"))
    advisories = list(
        Advisory.objects.filter(cves__cve_id=cve_id)
        .defer("aliases", "cve_ids")
        .prefetch_related("ranges")
        .order_by("advisory_id")
    )
    if record is None and kev is None and epss is None and not advisories:
        raise NotFound(f"no feed names {cve_id}: no advisory, CVE record, KEV entry or EPSS score")
    hosts = HostPackage.objects.filter(package_version__matches__advisory__cves__cve_id=cve_id)
    score = record.cvss_score if record else None
    return CveStory(
        cve_id=cve_id,
        record=record,
        severity=rating_for_score(score) if score is not None else Rating.UNKNOWN,
        scores=_scores(record, advisories),
        kev=kev,
        kev_noted=record.kev_date_added if record else None,
        epss=epss,
        advisories=tuple(
            AdvisoryNote(a.advisory_id, a.source, a.summary, a.published, a.modified, a.withdrawn) for a in advisories
        ),
        affected=_affected(advisories),
        references=tuple(_reference(url) for url in (record.references if record else [])),
        affected_hosts=hosts.values("host_id").distinct().count(),
        records_loaded=record is not None or Vulnerability.objects.exists(),
        kev_loaded=kev is not None or KevEntry.objects.exists(),
        epss_loaded=epss is not None or EpssScore.objects.exists(),
    )


def affected_hosts(cve_id: str) -> Listing[AffectedHost]:
    """Hosts with an installed package inside a range of an advisory naming `cve_id`, by name."""
    cve_id = normalize_cve_id(cve_id)
    installed = HostPackage.objects.filter(package_version__matches__advisory__cves__cve_id=cve_id)
    keys = Host.objects.filter(pk__in=installed.values("host_id")).order_by("name", "pk")

    def hydrate(hosts: list[Host]) -> list[AffectedHost]:
        found: dict[tuple[int, str, str, str], tuple[set[str], set[str]]] = defaultdict(lambda: (set(), set()))
        rows = installed.filter(host__in=hosts).values_list(
            "host_id", "package_version__name", "package_version__version", "arch",
            "package_version__matches__affected_range__fixed", "package_version__matches__advisory__advisory_id",
        )  # fmt: skip
        for host_id, package, version, arch, fixed, advisory_id in rows:
            fixes, advisories = found[(host_id, package, version, arch)]
            if fixed:
                fixes.add(fixed)
            advisories.add(advisory_id)
        packages: dict[int, list[InstalledAffected]] = defaultdict(list)
        for (host_id, package, version, arch), (fixes, advisories) in sorted(found.items()):
            packages[host_id].append(
                InstalledAffected(package, version, arch, tuple(sorted(fixes)), tuple(sorted(advisories)))
            )
        return [AffectedHost(h.name, h.os_name, h.inventory_at, tuple(packages[h.pk])) for h in hosts]

    return Listing(keys, hydrate)


# -- feeds ---------------------------------------------------------------------------------------------


def feed_runs(source: str | None = None) -> QuerySet[FeedRun]:
    """Import runs, newest first (of one source, when given)."""
    runs = FeedRun.objects.all()
    return runs.filter(source=source) if source else runs


def _latest_per_source(runs: QuerySet[FeedRun]) -> dict[str, FeedRun]:
    newest = runs.filter(source=OuterRef("source")).order_by("-started_at", "-id").values("pk")[:1]
    return {run.source: run for run in runs.filter(pk=Subquery(newest))}


def feed_status(today: date) -> list[FeedStatus]:
    """Each known source (and any other that has run), with its last success, last attempt and state."""
    last = _latest_per_source(FeedRun.objects.all())
    good = _latest_per_source(FeedRun.objects.filter(outcome=FeedRun.SUCCEEDED))
    statuses: list[FeedStatus] = []
    for source in sorted(set(SOURCES) | set(last)):
        attempt, success = last.get(source), good.get(source)
        data_date = success.data_date if success else None
        age = (today - data_date).days if data_date else None
        if success is None:
            state = FeedState.FAILING if attempt and attempt.outcome == FeedRun.FAILED else FeedState.NEVER
        elif attempt is not None and attempt.outcome == FeedRun.FAILED:
            state = FeedState.FAILING
        elif age is None or age > STALE_AFTER_DAYS:
            state = FeedState.STALE
        else:
            state = FeedState.OK
        statuses.append(FeedStatus(source, state, success, attempt, age))
    return statuses


BUNDLED_PREFIX: Final = "bundled:"  # the origin of runs that loaded the bundled snapshot (feed_imports)


@dataclass(frozen=True, slots=True)
class BundledSnapshot:
    """The feed data is only the bundled snapshot: each source's data date (source -> date, by source)."""

    data_dates: tuple[tuple[str, date | None], ...]

    @property
    def newest(self) -> date | None:
        return max((day for _, day in self.data_dates if day), default=None)


def bundled_snapshot() -> BundledSnapshot | None:
    """The snapshot's data dates while every successful feed run came from the bundled snapshot (no sync or
    import of real data has succeeded yet); None once one has, or when nothing was ever loaded. One query."""
    bundled = Q(origin__startswith=BUNDLED_PREFIX)
    rows = (
        FeedRun.objects.filter(outcome=FeedRun.SUCCEEDED)
        .values("source")
        .annotate(real=Count("pk", filter=~bundled), data_date=Max("data_date", filter=bundled))
        .order_by("source")  # replaces the model's ordering, which would split the groups
    )
    found = list(rows)
    if not found or any(row["real"] for row in found):
        return None
    return BundledSnapshot(tuple((row["source"], row["data_date"]) for row in found))
