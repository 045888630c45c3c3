"""Tables of findings: the affected-versions table (a distinct package version inside an advisory range).

Hosts reach their matches through their inventory (HostPackage -> PackageVersion -> Match), so
a fleet of hosts sharing versions costs one row per distinct version, not per host.
"""

from __future__ import annotations

from django.db import models

from patchday.advisories.models import Advisory, AffectedRange
from patchday.inventory.models import Host, PackageVersion


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


class FindingStatus(models.TextChoices):
    OPEN = "open"  # detected and not resolved (reopened findings are open again, with reopened_at set)
    FIXED = "fixed"  # no longer detected: fixed_at, and fix_verified when a re-inventory showed it
    ACCEPTED = "accepted"  # an approved exception covers it (still visible, outside SLA breach counts)
    NOT_AFFECTED = "not_affected"  # a VEX statement or a confirmed analysis says it does not apply


class Confidence(models.TextChoices):
    ADVISORY = "advisory"  # an advisory's affected range contains the installed version
    CHANGELOG = "changelog"  # only a pending update's changelog names the CVE: lower confidence


class Finding(models.Model):
    """One vulnerability on one host through one package, with its life history.

    `package` is the name advisories use (the source package on Debian); `installed_version`
    its version there. `fixed_version` is the lowest version that leaves every matching range
    ("" when no fix is published). Timestamps are set once and never rewritten: a reopened
    finding keeps its first detection and fixed_at history lives in FindingEvent.
    """

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="findings")
    vulnerability = models.CharField(max_length=128)  # the CVE id, else the advisory id (GHSA, PYSEC, ...)
    ecosystem = models.CharField(max_length=128)
    package = models.CharField(max_length=255)
    installed_version = models.CharField(max_length=255)
    fixed_version = models.CharField(max_length=255, blank=True)
    fixing_update = models.CharField(max_length=512, blank=True)  # "name candidate" the host's manager offers
    advisory_ids = models.JSONField(default=list)
    confidence = models.CharField(max_length=16, choices=Confidence.choices, default=Confidence.ADVISORY)
    status = models.CharField(max_length=16, choices=FindingStatus.choices, default=FindingStatus.OPEN)
    first_detected_at = models.DateTimeField()
    last_detected_at = models.DateTimeField()
    fix_available_since = models.DateTimeField(null=True, blank=True)
    fixed_at = models.DateTimeField(null=True, blank=True)
    fix_verified = models.BooleanField(default=False)
    fixed_by_rollout = models.PositiveIntegerField(null=True, blank=True)  # the rollout whose job verified the fix
    reopened_at = models.DateTimeField(null=True, blank=True)
    status_changed_at = models.DateTimeField()
    priority_score = models.PositiveSmallIntegerField(null=True, blank=True)
    priority_decision = models.CharField(max_length=8, blank=True)  # Track, Track*, Attend, Act
    priority_explanation = models.JSONField(default=list, blank=True)
    due_date = models.DateField(null=True, blank=True)
    sla_policy_version = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["host", "vulnerability", "ecosystem", "package"], name="findings_once")
        ]
        indexes = [
            models.Index(fields=["status", "priority_score"], name="findings_status_priority"),
            models.Index(fields=["vulnerability"], name="findings_vulnerability"),
            models.Index(fields=["host", "status"], name="findings_host_status"),
            models.Index(fields=["package", "status"], name="findings_package_status"),
            models.Index(fields=["status", "fixed_version"], name="findings_status_fix"),
        ]

    def __str__(self) -> str:
        return f"{self.vulnerability} on {self.host_id} ({self.package})"


class FindingEvent(models.Model):
    """A status change of a finding: what, when, why. Append-only; the finding's history."""

    finding = models.ForeignKey(Finding, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField()
    from_status = models.CharField(max_length=16, blank=True)
    to_status = models.CharField(max_length=16)
    reason = models.CharField(max_length=255)

    class Meta:
        ordering = ["at", "id"]


class SlaPolicy(models.Model):
    """One version of the SLA policy (rules as JSON, see patchday.core.sla); the newest version is in force.

    Versions are never edited: a change is a new version, with who made it and when, so a report
    can say which policy a due date came from.
    """

    version = models.PositiveIntegerField(unique=True)
    rules = models.JSONField()
    created_by = models.CharField(max_length=255)
    created_at = models.DateTimeField()
    comment = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["-version"]


class ExceptionState(models.TextChoices):
    REQUESTED = "requested"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    REVOKED = "revoked"


class RiskException(models.Model):
    """Accepted risk: findings in scope are `accepted` while it is approved and not expired.

    Scope is one finding, a vulnerability on a host group (or every host), or a package (every
    vulnerability of it). The requester cannot approve their own exception.
    """

    finding = models.ForeignKey(Finding, on_delete=models.CASCADE, null=True, blank=True, related_name="exceptions")
    vulnerability = models.CharField(max_length=128, blank=True)
    group = models.CharField(max_length=100, blank=True)  # a host group's name; "" = every host
    ecosystem = models.CharField(max_length=128, blank=True)
    package = models.CharField(max_length=255, blank=True)
    justification = models.TextField()
    expires_at = models.DateTimeField()
    state = models.CharField(max_length=16, choices=ExceptionState.choices, default=ExceptionState.REQUESTED)
    requested_by = models.CharField(max_length=255)
    requested_at = models.DateTimeField()
    decided_by = models.CharField(max_length=255, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_comment = models.TextField(blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]
        indexes = [models.Index(fields=["state", "expires_at"], name="findings_exception_state")]


class VexRecord(models.Model):
    """One not_affected statement in force: imported from an OpenVEX/CycloneDX VEX document, or a user's
    analysis of a finding once an approver confirmed it. Matching findings become `not_affected`."""

    vulnerability = models.CharField(max_length=128, db_index=True)
    aliases = models.JSONField(default=list)
    products = models.JSONField()  # [{"ecosystem", "name", "version" (null: every version), "purl"}]
    justification = models.CharField(max_length=64, blank=True)
    impact_statement = models.TextField(blank=True)
    source = models.CharField(max_length=255)  # the document's file name, or "analysis of finding N"
    source_format = models.CharField(max_length=32)
    created_by = models.CharField(max_length=255)
    created_at = models.DateTimeField()
    confirmed_by = models.CharField(max_length=255, blank=True)  # analyses: the approver who confirmed it
    confirmed_at = models.DateTimeField(null=True, blank=True)
    finding = models.ForeignKey(Finding, on_delete=models.CASCADE, null=True, blank=True, related_name="analyses")

    class Meta:
        ordering = ["-created_at", "-id"]


class PatchAction(models.Model):
    """One line of the "patch first" queue: updating `package` to `fixed_version` closes `findings` open
    findings on `hosts` hosts. Kept in step with the ledger for the packages a change touches (grouping a
    million findings on every page view would not be)."""

    ecosystem = models.CharField(max_length=128)
    package = models.CharField(max_length=255)
    fixed_version = models.CharField(max_length=255)
    findings = models.PositiveIntegerField()
    hosts = models.PositiveIntegerField()
    vulnerabilities = models.PositiveIntegerField()
    top_score = models.PositiveSmallIntegerField(null=True)
    top_rank = models.PositiveSmallIntegerField(default=0)  # the most urgent decision: 0 none, Track 1 ... Act 4
    earliest_due = models.DateField(null=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["ecosystem", "package", "fixed_version"], name="findings_action_once")
        ]
        indexes = [
            models.Index(fields=["-top_score", "earliest_due"], name="findings_action_urgency"),
            models.Index(fields=["package"], name="findings_action_package"),
        ]


class QueueRefresh(models.Model):
    """A package whose "patch first" lines must be recomputed: the ledger marks it (cheap, per change),
    the `findings.queue` task recomputes it (grouping every host's findings of a package is not per-request work)."""

    package = models.CharField(max_length=255, unique=True)
    marked_at = models.DateTimeField()
