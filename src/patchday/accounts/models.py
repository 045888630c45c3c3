"""Tables of the accounts area: users with a role, API tokens (hashed), failed sign-ins."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models

from patchday.core.roles import Permission, Role, is_allowed


class User(AbstractUser):
    """A person who signs in; `role` decides what they may do. Disabled users have is_active=False."""

    role = models.CharField(max_length=16, choices=[(r.value, r.value) for r in Role], default=Role.VIEWER)

    @property
    def role_enum(self) -> Role:
        return Role(self.role)

    def may(self, permission: Permission) -> bool:
        return self.is_active and is_allowed(self.role_enum, permission)


class ApiToken(models.Model):
    """A bearer token acting as its owner. Only `prefix` and the SHA-256 of the whole token are stored."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    token_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.prefix} ({self.name})"


class LoginFailure(models.Model):
    """One failed sign-in, kept for throttling: by username and by source address."""

    username = models.CharField(max_length=150, db_index=True)
    source_address = models.CharField(max_length=64, db_index=True)
    at = models.DateTimeField(db_index=True)
