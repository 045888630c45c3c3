"""Tables of the connectors: hosts collected agentlessly over SSH, with their pinned host keys."""

from __future__ import annotations

from datetime import timedelta

from django.db import models

DEFAULT_INTERVAL = timedelta(hours=6)


class SshAuth(models.TextChoices):
    """How patchday proves who it is to the host."""

    KEY_FILE = "key_file"  # a private key file on the patchday server (no passphrase)
    AGENT = "agent"  # the keys of the SSH agent at SSH_AUTH_SOCK


class SshTarget(models.Model):
    """A host patchday logs in to over SSH to collect its inventory.

    The host key is pinned on first contact (`host_key`, an OpenSSH public key line, and its SHA256
    fingerprint). A later connection presenting another key is refused and sets `hostkey_mismatch`;
    only an explicit, audited re-pin clears it. `host` is set once a collection has been stored.
    """

    address = models.CharField(max_length=255)
    port = models.PositiveIntegerField(default=22)
    username = models.CharField(max_length=32)
    auth = models.CharField(max_length=16, choices=SshAuth.choices, default=SshAuth.KEY_FILE)
    key_file = models.CharField(max_length=1024, blank=True)
    use_sudo = models.BooleanField(default=False)
    host_key = models.TextField(blank=True)
    host_key_fingerprint = models.CharField(max_length=128, blank=True)
    host_key_pinned_at = models.DateTimeField(null=True, blank=True)
    hostkey_mismatch = models.BooleanField(default=False)
    host = models.ForeignKey(
        "inventory.Host", null=True, blank=True, on_delete=models.SET_NULL, related_name="ssh_targets"
    )
    enabled = models.BooleanField(default=True)
    interval = models.DurationField(default=DEFAULT_INTERVAL)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["address", "port"], name="connectors_sshtarget_once")]

    def __str__(self) -> str:
        return self.label

    @property
    def label(self) -> str:
        """user@host:port as an operator writes it (IPv6 addresses in brackets)."""
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.username}@{host}:{self.port}"
