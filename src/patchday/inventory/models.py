"""Tables of inventory: hosts, distinct package versions (with their sort keys), and what each host has."""

from __future__ import annotations

from django.db import models


class Host(models.Model):
    """A machine in the fleet, identified by its name; `ecosystem` is the OSV ecosystem its OS packages use."""

    name = models.CharField(max_length=255, unique=True)
    os_id = models.CharField(max_length=64, blank=True)
    os_version = models.CharField(max_length=64, blank=True)
    os_name = models.CharField(max_length=255, blank=True)
    ecosystem = models.CharField(max_length=128, blank=True)
    created_at = models.DateTimeField()
    inventory_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.name


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
