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
    imported_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.advisory_id


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
