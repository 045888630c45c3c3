"""Tables of inventory: hosts, distinct package versions (with their sort keys), and what each host has."""

from __future__ import annotations

from django.db import models


class Criticality(models.IntegerChoices):
    """How much the business depends on a host: tier 1 is mission-critical, tier 4 low."""

    MISSION_CRITICAL = 1, "mission-critical"
    HIGH = 2, "high"
    MEDIUM = 3, "medium"
    LOW = 4, "low"


class Exposure(models.TextChoices):
    """Who can reach the host over the network."""

    INTERNET_FACING = "internet-facing"
    INTERNAL = "internal"
    ISOLATED = "isolated"


class ManagementMode(models.TextChoices):
    """How the host's inventory reaches patchday."""

    AGENT = "agent"
    SSH = "ssh"
    IMPORT = "import"
    SCAN = "scan"


class AssetKind(models.TextChoices):
    """A machine, or an application known from its SBOM (its components are matched like packages)."""

    HOST = "host"
    APPLICATION = "application"


class Host(models.Model):
    """A machine in the fleet, identified by `machine_id` when it has one, else by its unique name.

    `ecosystem` is the OSV ecosystem its OS packages use. Facts come from the last inventory;
    business context (criticality, exposure, environment, owner, tags, groups) is set by people.
    """

    name = models.CharField(max_length=255, unique=True)
    kind = models.CharField(max_length=16, choices=AssetKind.choices, default=AssetKind.HOST)
    machine_id = models.CharField(max_length=64, blank=True, db_index=True)
    os_id = models.CharField(max_length=64, blank=True)
    os_version = models.CharField(max_length=64, blank=True)
    os_name = models.CharField(max_length=255, blank=True)
    ecosystem = models.CharField(max_length=128, blank=True)
    hostname = models.CharField(max_length=255, blank=True)
    fqdn = models.CharField(max_length=255, blank=True)
    addresses = models.JSONField(default=list, blank=True)
    architecture = models.CharField(max_length=32, blank=True)
    kernel_running = models.CharField(max_length=128, blank=True)
    kernels_installed = models.JSONField(default=list, blank=True)
    boot_time = models.DateTimeField(null=True, blank=True)
    hardware = models.JSONField(default=dict, blank=True)
    reboot_required = models.BooleanField(null=True)
    reboot_reasons = models.JSONField(default=list, blank=True)
    collection_errors = models.JSONField(default=list, blank=True)
    management_mode = models.CharField(max_length=16, choices=ManagementMode.choices, default=ManagementMode.SCAN)
    criticality = models.PositiveSmallIntegerField(choices=Criticality.choices, default=Criticality.MEDIUM)
    exposure = models.CharField(max_length=16, choices=Exposure.choices, default=Exposure.INTERNAL)
    environment = models.CharField(max_length=64, blank=True)
    owner = models.CharField(max_length=255, blank=True)
    # Rings and maintenance windows become objects with the deployment work; until then a name.
    ring = models.CharField(max_length=64, blank=True)
    maintenance_window = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField()
    inventory_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    inventory_sequence = models.BigIntegerField(null=True, blank=True)
    inventory_digest = models.CharField(max_length=64, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["machine_id"], condition=~models.Q(machine_id=""), name="inventory_host_machine_id_once"
            )
        ]

    def __str__(self) -> str:
        return self.name


class HostTag(models.Model):
    """A free label on a host ("pci", "db", "team-payments")."""

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="tags")
    tag = models.CharField(max_length=64)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["host", "tag"], name="inventory_hosttag_once")]
        indexes = [models.Index(fields=["tag"], name="inventory_hosttag_tag")]


class HostGroup(models.Model):
    """A named set of hosts: static (members listed) or dynamic (`rule` is a saved host filter)."""

    name = models.CharField(max_length=100, unique=True)
    description = models.CharField(max_length=255, blank=True)
    rule = models.JSONField(null=True, blank=True)
    members = models.ManyToManyField(Host, related_name="static_groups", blank=True)
    created_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.name

    @property
    def dynamic(self) -> bool:
        return self.rule is not None


class Collection(models.Model):
    """One inventory received for a host: when, how, and what changed. Package events point here."""

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="collections")
    received_at = models.DateTimeField()
    mode = models.CharField(max_length=16, choices=ManagementMode.choices)
    sequence = models.BigIntegerField(null=True, blank=True)
    digest = models.CharField(max_length=64)
    packages = models.PositiveIntegerField()
    added = models.PositiveIntegerField()
    removed = models.PositiveIntegerField()
    changed = models.PositiveIntegerField()

    class Meta:
        ordering = ["-received_at", "-id"]


class PackageEvent(models.Model):
    """A package appeared, disappeared or changed version on a host (empty from/to = installed/removed)."""

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="package_events")
    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="events")
    ecosystem = models.CharField(max_length=128)
    name = models.CharField(max_length=255)
    arch = models.CharField(max_length=255, blank=True)
    from_version = models.CharField(max_length=255, blank=True)
    to_version = models.CharField(max_length=255, blank=True)
    at = models.DateTimeField()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["host", "name", "at"], name="inventory_pkgevent_host_name")]


class PendingUpdate(models.Model):
    """An update the host's package manager offers, as of the last inventory."""

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="pending_updates")
    manager = models.CharField(max_length=16)
    name = models.CharField(max_length=255)
    arch = models.CharField(max_length=32, blank=True)
    installed = models.CharField(max_length=255, blank=True)
    candidate = models.CharField(max_length=255)
    origin = models.CharField(max_length=255, blank=True)
    suite = models.CharField(max_length=255, blank=True)
    security = models.BooleanField()
    source = models.CharField(max_length=255, blank=True)
    source_version = models.CharField(max_length=255, blank=True)
    changelog_cves = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["name", "arch"]


class EnrollmentSecret(models.Model):
    """A shared secret agents present once to enroll; only its SHA-256 is stored."""

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64)
    created_by = models.CharField(max_length=255)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    uses = models.PositiveIntegerField(default=0)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]


class HostToken(models.Model):
    """The bearer token an enrolled agent acts with; it reaches only its own host. Only the SHA-256 is stored."""

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="tokens")
    prefix = models.CharField(max_length=16, unique=True)
    token_hash = models.CharField(max_length=64)
    enrolled_with = models.ForeignKey(EnrollmentSecret, on_delete=models.SET_NULL, null=True, blank=True)
    created_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)


class PackageVersion(models.Model):
    """One distinct installed (ecosystem, package, version, source) anywhere in the fleet.

    `match_name`/`match_version` are what advisories name (the source package for Debian), and
    `match_key` is match_version's sort key (None when the version does not parse: `key_error` says why).
    Matching evaluates each row once, however many hosts have it.
    """

    ecosystem = models.CharField(max_length=128)
    name = models.CharField(max_length=255)
    version = models.CharField(max_length=255)
    source_name = models.CharField(max_length=255, blank=True)
    source_version = models.CharField(max_length=255, blank=True)
    match_name = models.CharField(max_length=255)
    match_version = models.CharField(max_length=255)
    match_key = models.BinaryField(null=True)
    key_error = models.CharField(max_length=255, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["ecosystem", "name", "version", "source_name", "source_version"],
                name="inventory_packageversion_distinct",
            )
        ]
        indexes = [models.Index(fields=["ecosystem", "match_name"], name="inventory_pv_match_name")]


class HostPackage(models.Model):
    """Host `host` has `package_version` installed (with this architecture)."""

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="packages")
    package_version = models.ForeignKey(PackageVersion, on_delete=models.PROTECT, related_name="installations")
    arch = models.CharField(max_length=32, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["host", "package_version", "arch"], name="inventory_hostpackage_once")
        ]
