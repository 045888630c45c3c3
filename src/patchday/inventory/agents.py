"""Agents: enrollment secrets, enrolling a host for a host token, and check-ins (docs/agent.md).

Secrets and tokens are random, shown once and stored as SHA-256. A host token reaches only its
own host; a revoked or expired enrollment secret enrolls nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db import connection, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from patchday.audit import services as audit
from patchday.core.audit import Actor, ActorKind
from patchday.core.errors import AuthenticationFailed, Conflict, InvalidInput, NotFound, PermissionDenied
from patchday.inventory.document import _HOSTNAME, _MACHINE_ID
from patchday.inventory.models import EnrollmentSecret, Host, HostToken, ManagementMode
from patchday.settings import load_settings

SECRET_PREFIX = "pde_"
HOST_TOKEN_PREFIX = "pdh_"


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def _split(raw: str, prefix: str, what: str) -> str:
    """The lookup id inside a `prefix<id>_<random>` value; raises AuthenticationFailed when malformed."""
    if not raw.startswith(prefix) or len(raw) > 200:
        raise AuthenticationFailed(f"malformed {what}")
    lookup, sep, rest = raw[len(prefix) :].partition("_")
    if not sep or not lookup or not rest:
        raise AuthenticationFailed(f"malformed {what}")
    return lookup


@dataclass(frozen=True, slots=True)
class IssuedSecret:
    record: EnrollmentSecret
    secret: str  # shown once


@dataclass(frozen=True, slots=True)
class Enrollment:
    host: Host
    token: str  # shown once
    created: bool


# -- enrollment secrets ------------------------------------------------------------------------------


def create_secret(actor: Actor, name: str, expires_at: datetime | None = None) -> IssuedSecret:
    name = name.strip()
    if not 0 < len(name) <= 100:
        raise InvalidInput("enrollment secret name must be 1-100 characters", field="name")
    now = timezone.now()
    if expires_at is not None and expires_at <= now:
        raise InvalidInput("expiry must be in the future", field="expires_at")
    prefix = secrets.token_hex(6)
    secret = f"{SECRET_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    with transaction.atomic():
        record = EnrollmentSecret.objects.create(
            name=name,
            prefix=prefix,
            secret_hash=_hash(secret),
            created_by=actor.name,
            created_at=now,
            expires_at=expires_at,
        )
        audit.record(
            actor,
            "enrollment_secret.create",
            "enrollment_secret",
            prefix,
            {"name": name, "expires_at": expires_at.isoformat() if expires_at else None},
        )
    return IssuedSecret(record, secret)


def list_secrets() -> QuerySet[EnrollmentSecret]:
    return EnrollmentSecret.objects.all()


def revoke_secret(actor: Actor, prefix: str) -> EnrollmentSecret:
    with transaction.atomic():
        record = EnrollmentSecret.objects.select_for_update().filter(prefix=prefix).first()
        if record is None:
            raise NotFound(f"no enrollment secret with id {prefix!r}")
        if record.revoked_at is not None:
            raise Conflict(f"enrollment secret {prefix!r} is already revoked")
        record.revoked_at = timezone.now()
        record.save(update_fields=["revoked_at"])
        audit.record(actor, "enrollment_secret.revoke", "enrollment_secret", prefix, {"name": record.name})
    return record


def secret_state(record: EnrollmentSecret, now: datetime | None = None) -> str:
    now = now or timezone.now()
    if record.revoked_at is not None:
        return "revoked"
    if record.expires_at is not None and record.expires_at <= now:
        return "expired"
    return "active"


# -- enrolling -----------------------------------------------------------------------------------------


def _check_identity(machine_id: str, hostname: str) -> None:
    if not _MACHINE_ID.match(machine_id) or not machine_id:
        raise InvalidInput("machine_id must be 1-64 letters, digits or '-'", field="machine_id")
    if not hostname or len(hostname) > 253 or not _HOSTNAME.match(hostname):
        raise InvalidInput("hostname must be letters, digits, '-', '_' and '.' only", field="hostname")


def _valid_secret(raw: str, now: datetime) -> EnrollmentSecret:
    try:
        prefix = _split(raw, SECRET_PREFIX, "enrollment secret")
    except AuthenticationFailed:
        raise PermissionDenied("unknown enrollment secret") from None
    record = EnrollmentSecret.objects.select_for_update().filter(prefix=prefix).first()
    if record is None or not hmac.compare_digest(record.secret_hash, _hash(raw)):
        raise PermissionDenied("unknown enrollment secret")
    state = secret_state(record, now)
    if state != "active":
        raise PermissionDenied(f"enrollment secret {record.prefix!r} is {state}")
    return record


def _unique_name(hostname: str, machine_id: str) -> str:
    if not Host.objects.filter(name=hostname).exists():
        return hostname
    return f"{hostname}-{machine_id[:8]}"


def enroll(secret: str, machine_id: str, hostname: str, source: str) -> Enrollment:
    """Bind a host (found by machine-id, else new) to a new host token; older tokens of that host are revoked.

    Raises PermissionDenied for an unknown, revoked or expired secret; nothing is created then.
    """
    _check_identity(machine_id, hostname)
    now = timezone.now()
    with transaction.atomic():
        record = _valid_secret(secret, now)
        host = Host.objects.select_for_update().filter(machine_id=machine_id).first()
        created = host is None
        if host is None:
            host = Host.objects.create(
                name=_unique_name(hostname, machine_id),
                machine_id=machine_id,
                hostname=hostname,
                created_at=now,
                management_mode=ManagementMode.AGENT,
                last_seen_at=now,
            )
        else:
            host.management_mode, host.last_seen_at = ManagementMode.AGENT, now
            host.save(update_fields=["management_mode", "last_seen_at"])
        host.tokens.filter(revoked_at=None).update(revoked_at=now)
        prefix = secrets.token_hex(6)
        token = f"{HOST_TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
        HostToken.objects.create(
            host=host, prefix=prefix, token_hash=_hash(token), enrolled_with=record, created_at=now
        )
        EnrollmentSecret.objects.filter(pk=record.pk).update(uses=F("uses") + 1, last_used_at=now)
        actor = Actor(ActorKind.SYSTEM, f"enrollment/{record.prefix}", None, source)
        audit.record(
            actor,
            "host.enroll",
            "host",
            host.name,
            {"created": created, "machine_id": machine_id, "hostname": hostname, "secret": record.prefix},
        )
    return Enrollment(host, token, created)


@dataclass(frozen=True, slots=True)
class HostCredential:
    """Who an agent request is from: its host and token, read in one query (check-ins are the hot path)."""

    host_id: int
    host_name: str
    inventory_digest: str
    token_id: int
    token_last_used: datetime | None


_CREDENTIAL_SQL = (
    "SELECT t.id, t.token_hash, t.revoked_at, t.last_used_at, h.id, h.name, h.inventory_digest "
    "FROM inventory_hosttoken t JOIN inventory_host h ON h.id = t.host_id WHERE t.prefix = %s"
)


def authenticate_host(raw: str) -> HostCredential:
    """The host behind host token `raw`; raises AuthenticationFailed for anything else."""
    prefix = _split(raw, HOST_TOKEN_PREFIX, "host token")
    with connection.cursor() as cursor:
        cursor.execute(_CREDENTIAL_SQL, [prefix])
        found = cursor.fetchone()
    if found is None or not hmac.compare_digest(found[1], _hash(raw)):
        raise AuthenticationFailed("unknown host token")
    token_id, _, revoked_at, last_used, host_id, host_name, digest = found
    if revoked_at is not None:
        raise AuthenticationFailed("host token was revoked; enroll again")
    return HostCredential(host_id, host_name, digest, token_id, _aware(last_used))


def _aware(value: datetime | str | None) -> datetime | None:
    """A timestamp from a raw query: SQLite gives naive UTC (or text), PostgreSQL an aware datetime."""
    if value is None:
        return None
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def revoke_host_tokens(actor: Actor, host: Host) -> int:
    with transaction.atomic():
        count = host.tokens.filter(revoked_at=None).update(revoked_at=timezone.now())
        audit.record(actor, "host.tokens_revoke", "host", host.name, {"revoked": count})
    return count


# -- check-ins ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CheckinReply:
    inventory_wanted: bool
    checkin_interval: int
    jobs: list[dict[str, object]]
    simulations: list[dict[str, object]] = field(default_factory=list)


def checkin(credential: HostCredential, digest: str) -> CheckinReply:
    """Note the heartbeat; ask for the full inventory only when the digest differs from the stored one."""
    now = timezone.now()
    with connection.cursor() as cursor:  # raw: the ORM's query building cost more than the query
        cursor.execute(
            "UPDATE inventory_host SET last_seen_at = %s WHERE id = %s",
            [connection.ops.adapt_datetimefield_value(now), credential.host_id],
        )
    if credential.token_last_used is None or now - credential.token_last_used > timedelta(minutes=1):
        HostToken.objects.filter(pk=credential.token_id).update(last_used_at=now)  # coarse on purpose
    wanted = not credential.inventory_digest or credential.inventory_digest != digest
    from patchday.rollouts.driver import lease_jobs
    from patchday.rollouts.plans import simulation_requests

    jobs: list[dict[str, object]] = [lease.to_data() for lease in lease_jobs(credential.host_id, now)]
    simulations: list[dict[str, object]] = list(simulation_requests(credential.host_id))
    return CheckinReply(wanted, load_settings().checkin_interval, jobs, simulations)
