"""Tables of advisories: one row per feed record, and its affected ranges with sort keys."""

from __future__ import annotations

from django.db import models


class Advisory(models.Model):
    """One feed record (OSV id such as DSA-5418-1, ALSA-2024:1234, PYSEC-2023-1)."""

    advisory_id = models.CharField(max_length=128, unique=True)
    source = models.CharField(max_length=64)  # which feed or file it came from
    modified = models.DateTimeField(null=True)
    published = models.DateTimeField(null=True)
    withdrawn = models.DateTimeField(null=True)
    summary = models.TextField(blank=True)
    cve_ids = models.JSONField(default=list)
    aliases = models.JSONField(default=list)
    severity = models.JSONField(default=list)  # [{"type": "CVSS_V3", "score": "CVSS:3.1/..."}]
    content_hash = models.CharField(max_length=64, blank=True)  # of the record as parsed: re-imports compare it
    imported_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.advisory_id


class AdvisoryCve(models.Model):
    """Advisory `advisory` is about CVE `cve_id` (its id, aliases, upstream or related ids): the alias merge."""

    advisory = models.ForeignKey(Advisory, on_delete=models.CASCADE, related_name="cves")
    cve_id = models.CharField(max_length=32, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["advisory", "cve_id"], name="advisories_advisorycve_once")]


class AffectedRange(models.Model):
    """Versions of (ecosystem, package) in [introduced, fixed) or [introduced, last_affected], below limit.

    Keys are the versions' sort keys: introduced_key b"" means from the first version; a NULL
    upper key means unbounded. A range whose versions do not parse keeps `key_error` and is not matched.
    """

    advisory = models.ForeignKey(Advisory, on_delete=models.CASCADE, related_name="ranges")
    ecosystem = models.CharField(max_length=128)
    package = models.CharField(max_length=255)
    introduced = models.CharField(max_length=255, blank=True)
    fixed = models.CharField(max_length=255, blank=True)
    last_affected = models.CharField(max_length=255, blank=True)
    limit_version = models.CharField(max_length=255, blank=True)  # "limit" is an SQL keyword
    introduced_key = models.BinaryField(null=True)
    fixed_key = models.BinaryField(null=True)
    last_affected_key = models.BinaryField(null=True)
    limit_key = models.BinaryField(null=True)
    key_error = models.CharField(max_length=255, blank=True)

    class Meta:
        indexes = [models.Index(fields=["ecosystem", "package"], name="advisories_range_package")]


class Vulnerability(models.Model):
    """A CVE as NVD or the CVE List describe it, with its best CVSS score and the source of that score."""

    cve_id = models.CharField(max_length=32, unique=True)
    source = models.CharField(max_length=16)  # nvd | cve5: who said this last
    description = models.TextField(blank=True)
    published = models.DateTimeField(null=True)
    modified = models.DateTimeField(null=True)
    status = models.CharField(max_length=64, blank=True)
    cvss = models.JSONField(default=list)  # every score: [{"version", "vector", "base_score", "source", "scorer"}]
    cvss_version = models.CharField(max_length=8, blank=True)  # the best score, see core.vulnerability.best_cvss
    cvss_vector = models.CharField(max_length=255, blank=True)
    cvss_score = models.FloatField(null=True, db_index=True)
    cvss_source = models.CharField(max_length=64, blank=True)
    cwes = models.JSONField(default=list)
    references = models.JSONField(default=list)
    ssvc = models.JSONField(null=True)  # {"exploitation", "automatable", "technical_impact", "source", "assessed"}
    kev_date_added = models.DateField(null=True)
    imported_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.cve_id


class KevEntry(models.Model):
    """A CVE in CISA's Known Exploited Vulnerabilities catalog."""

    cve_id = models.CharField(max_length=32, unique=True)
    vendor = models.CharField(max_length=255)
    product = models.CharField(max_length=255)
    name = models.CharField(max_length=512)
    description = models.TextField(blank=True)
    date_added = models.DateField(db_index=True)
    due_date = models.DateField(null=True)
    required_action = models.TextField(blank=True)
    ransomware = models.CharField(max_length=16)
    notes = models.TextField(blank=True)
    cwes = models.JSONField(default=list)


class EpssScore(models.Model):
    """FIRST EPSS for one CVE on one score date; every date is kept so trends can be shown."""

    cve_id = models.CharField(max_length=32)
    score_date = models.DateField()
    probability = models.FloatField()
    percentile = models.FloatField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["cve_id", "score_date"], name="advisories_epss_once_a_day")]
        indexes = [models.Index(fields=["score_date", "cve_id"], name="advisories_epss_date")]


class FeedRun(models.Model):
    """One attempt to load a feed: it lands completely (succeeded) or not at all (failed)."""

    RUNNING, SUCCEEDED, FAILED = "running", "succeeded", "failed"

    source = models.CharField(max_length=32, db_index=True)  # kev, epss, nvd, cve5, osv, debian-dsa, debian-dla
    origin = models.CharField(max_length=1024)  # file path or URL
    checksum = models.CharField(max_length=64, blank=True)  # SHA-256 of the file
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True)
    outcome = models.CharField(max_length=16, default=RUNNING)
    added = models.IntegerField(default=0)
    updated = models.IntegerField(default=0)
    unchanged = models.IntegerField(default=0)
    removed = models.IntegerField(default=0)
    data_date = models.DateField(null=True)  # the newest date the data speaks for (catalog, score date)
    error = models.TextField(blank=True)
    skipped = models.JSONField(default=list)  # malformed records a dump left out: one message each (file, record, why)

    class Meta:
        ordering = ["-started_at", "-id"]
