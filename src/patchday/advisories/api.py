"""API routes of vulnerabilities and feeds: search CVEs, one CVE's story and affected hosts, feed runs and status."""

# No `from __future__ import annotations` here: ninja's @paginate re-reads the view's annotations in
# its own module, where the string "Query[VulnerabilityQuery]" cannot be resolved.
from datetime import date, datetime
from typing import Any

from django.http import HttpRequest
from django.utils import timezone
from ninja import Field, Query, Router, Schema
from ninja.pagination import paginate

from patchday.accounts.guards import Guard
from patchday.advisories import queries
from patchday.api.pagination import Pagination
from patchday.core.errors import InvalidInput
from patchday.core.roles import Permission
from patchday.core.severity import Rating

router = Router(tags=["vulnerabilities"])


class EpssOut(Schema):
    probability: float = Field(description="chance of exploitation activity in the next 30 days (0-1)")
    percentile: float = Field(description="share of scored CVEs with a lower probability (0-1)")
    score_date: date


class VulnerabilitySummaryOut(Schema):
    cve_id: str
    description: str = Field(description="the CVE record's, else an advisory's summary, else the KEV entry's name")
    severity: Rating = Field(description="rating of the best CVSS score; unknown when none is published")
    cvss_score: float | None
    cvss_version: str | None
    epss: EpssOut | None = Field(description="the latest EPSS score")
    kev: bool = Field(description="in CISA's Known Exploited Vulnerabilities catalog")
    kev_due_date: date | None
    packages: list[str]
    has_fix: bool = Field(description="an advisory in force names a fixed version")
    affected_hosts: int


class VulnerabilityQuery(Schema):
    q: str | None = Field(
        None, max_length=200, description="part of a CVE id, an advisory id, a package name, or words of a description"
    )
    kev: bool | None = Field(None, description="in the KEV catalog (true) or not (false)")
    epss_min: float | None = Field(None, ge=0, le=1, description="the latest EPSS probability is at least this")
    # Strings, checked in to_filter: ninja reports a bad item of a list query parameter as
    # "filters.severity.0", a name the client never sent.
    severity: list[str] = Field(
        default_factory=list,
        description="CVSS rating: critical, high, medium, low, or unknown (no score); repeat for several",
        json_schema_extra={"items": {"type": "string", "enum": [r.value for r in Rating]}},
    )
    has_fix: bool | None = Field(None, description="an advisory names a fixed version (true) or none does (false)")

    def to_filter(self) -> queries.VulnerabilityFilter:
        """The filter; raises InvalidInput naming `severity` for a rating that does not exist."""
        try:
            severities = frozenset(Rating(value.strip().lower()) for value in self.severity)
        except ValueError:
            accepted = ", ".join(r.value for r in Rating)
            raise InvalidInput(f"unknown severity in {self.severity}; use {accepted}", field="severity") from None
        return queries.VulnerabilityFilter(
            text=self.q or "",
            kev=self.kev,
            epss_min=self.epss_min,
            severities=severities,
            has_fix=self.has_fix,
        )


class CvssMetricOut(Schema):
    code: str
    name: str
    value_code: str
    value: str


class CvssOut(Schema):
    version: str
    vector: str
    base_score: float | None
    severity: Rating
    source: str = Field(description="nvd, cna, cisa-adp, other, or advisory")
    scorer: str = Field(description="the organisation that scored it, or the advisory id")
    is_best: bool = Field(description="the score patchday ranks by")
    metrics: list[CvssMetricOut] = Field(description="the vector in words; empty when it does not parse")


class CveRecordOut(Schema):
    source: str = Field(description="nvd or cve5: the feed that described it last")
    status: str
    description: str
    published: datetime | None
    modified: datetime | None
    cwes: list[str]
    ssvc: dict[str, Any] | None
    imported_at: datetime


class KevOut(Schema):
    vendor: str
    product: str
    name: str
    description: str
    date_added: date
    due_date: date | None
    required_action: str
    ransomware: str = Field(description="known use in ransomware campaigns: Known or Unknown, as CISA writes it")
    notes: str
    cwes: list[str]


class EpssTrendOut(Schema):
    latest: EpssOut
    change_7d: float | None = Field(description="probability change since the score 7 days before the latest")
    change_30d: float | None
    history: list[EpssOut] = Field(description="every stored score, oldest first")


class AdvisoryOut(Schema):
    advisory_id: str
    source: str
    summary: str
    published: datetime | None
    modified: datetime | None
    withdrawn: datetime | None


class RangeOut(Schema):
    advisory_id: str
    introduced: str
    fixed: str
    last_affected: str
    limit: str
    withdrawn: bool


class AffectedPackageOut(Schema):
    package: str
    fixed_versions: list[str] = Field(description="from advisories in force; empty when no fix has shipped")
    ranges: list[RangeOut]


class EcosystemOut(Schema):
    ecosystem: str
    packages: list[AffectedPackageOut]


class VulnerabilityOut(Schema):
    cve_id: str
    severity: Rating
    record: CveRecordOut | None = Field(description="from NVD or the CVE List; null when neither is imported")
    cvss: list[CvssOut] = Field(description="every score, the best first; empty when none is published")
    kev: KevOut | None = Field(description="the KEV catalog entry; null when the CVE is not in the catalog")
    kev_noted: date | None = Field(description="when NVD or CISA-ADP say the CVE was added to KEV")
    epss: EpssTrendOut | None
    advisories: list[AdvisoryOut]
    affected: list[EcosystemOut]
    references: list[str]
    has_fix: bool
    affected_hosts: int

    @staticmethod
    def resolve_cvss(obj: queries.CveStory) -> tuple[queries.DecodedCvss, ...]:
        return obj.scores

    @staticmethod
    def resolve_references(obj: queries.CveStory) -> list[str]:
        return [reference.url for reference in obj.references]


class InstalledAffectedOut(Schema):
    package: str
    version: str
    arch: str
    fixed_versions: list[str]
    advisories: list[str]


class AffectedHostOut(Schema):
    name: str
    os_name: str
    inventory_at: datetime | None
    packages: list[InstalledAffectedOut]


class FeedRunOut(Schema):
    id: int
    source: str
    origin: str
    checksum: str = Field(description="SHA-256 of the file (or of a directory's files)")
    started_at: datetime
    finished_at: datetime | None
    outcome: str = Field(description="running, succeeded or failed")
    added: int
    updated: int
    unchanged: int
    removed: int
    data_date: date | None = Field(description="the newest date the data speaks for")
    error: str
    skipped: list[str] = Field(description="malformed records an OSV, NVD or CVE 5 dump left out: file, record, why")


class FeedStatusOut(Schema):
    source: str
    state: queries.FeedState
    stale: bool = Field(description=f"no success yet, or its data is older than {queries.STALE_AFTER_DAYS} days")
    data_date: date | None
    age_days: int | None
    last_success: FeedRunOut | None
    last_attempt: FeedRunOut | None

    @staticmethod
    def resolve_stale(obj: queries.FeedStatus) -> bool:
        return obj.is_stale


class FeedStatusListOut(Schema):
    today: date
    stale_after_days: int
    sources: list[FeedStatusOut]


@router.get(
    "/vulnerabilities",
    response=list[VulnerabilitySummaryOut],
    auth=Guard(Permission.VIEW),
    summary="Search vulnerabilities (CVEs), newest first",
)
@paginate(Pagination)
def list_vulnerabilities(request: HttpRequest, filters: Query[VulnerabilityQuery]) -> object:
    return queries.search_vulnerabilities(filters.to_filter())


@router.get(
    "/vulnerabilities/{cve_id}",
    response=VulnerabilityOut,
    auth=Guard(Permission.VIEW),
    summary="One CVE: record, CVSS, EPSS, KEV, advisories, affected packages",
)
def get_vulnerability(request: HttpRequest, cve_id: str) -> queries.CveStory:
    return queries.vulnerability_story(cve_id)


@router.get(
    "/vulnerabilities/{cve_id}/hosts",
    response=list[AffectedHostOut],
    auth=Guard(Permission.VIEW),
    summary="Hosts with a package affected by one CVE",
)
@paginate(Pagination)
def list_affected_hosts(request: HttpRequest, cve_id: str) -> object:
    return queries.affected_hosts(queries.known_cve(cve_id))  # 404 for a CVE no feed names, not an empty list


@router.get("/feeds/runs", response=list[FeedRunOut], auth=Guard(Permission.VIEW), summary="Feed import runs")
@paginate(Pagination)
def list_feed_runs(request: HttpRequest, source: str | None = None) -> object:
    return queries.feed_runs(source)


@router.get("/feeds/status", response=FeedStatusListOut, auth=Guard(Permission.VIEW), summary="State of each feed")
def get_feed_status(request: HttpRequest) -> dict[str, object]:
    today = timezone.now().date()
    return {
        "today": today,
        "stale_after_days": queries.STALE_AFTER_DAYS,
        "sources": queries.feed_status(today),
    }
