"""Tables of findings: the affected-versions table (a distinct package version inside an advisory range).

Hosts reach their matches through their inventory (HostPackage -> PackageVersion -> Match), so
a fleet of hosts sharing versions costs one row per distinct version, not per host.
"""

from __future__ import annotations

from django.db import models

from patchday.advisories.models import Advisory, AffectedRange
from patchday.inventory.models import PackageVersion


class Match(models.Model):
    """`package_version` is inside `affected_range` of `advisory`."""

    package_version = models.ForeignKey(PackageVersion, on_delete=models.CASCADE, related_name="matches")
    affected_range = models.ForeignKey(AffectedRange, on_delete=models.CASCADE, related_name="matches")
    advisory = models.ForeignKey(Advisory, on_delete=models.CASCADE, related_name="matches")
    matched_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["package_version", "affected_range"], name="findings_match_once")
        ]
