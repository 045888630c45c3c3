"""Use cases of SSH targets: add one, collect some (pinning host keys on first contact), re-pin, find due ones.

The network part runs in asyncio (patchday.connectors.ssh) with no database access; these functions
load targets before it and save what came back after it, so the ORM is only ever used synchronously.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from patchday.audit import services as audit
from patchday.connectors.models import SshAuth, SshTarget
from patchday.connectors.ssh import (
    ConnectSpec,
    HostKey,
    JobRun,
    RemoteResult,
    Timeouts,
    collect_many,
    execute_job,
    parse_target,
)
from patchday.core.audit import Actor
from patchday.core.errors import Conflict, InvalidInput, NotFound, PatchdayError

logger = logging.getLogger(__name__)

MIN_INTERVAL = timedelta(minutes=5)


class CollectionStatus(StrEnum):
    """How collecting one target ended."""

    STORED = "stored"  # the document was stored (possibly a reduced one: see Outcome.reduced)
    FAILED = "failed"  # unreachable, refused, timed out, bad output, or the document was rejected
    HOSTKEY_MISMATCH = "hostkey_mismatch"  # the host presented another key than the pinned one: refused


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of collecting one target; `message` says what went wrong (empty when stored)."""

    target_id: int
    label: str
    status: CollectionStatus
    message: str = ""
    reduced: bool = False
    pinned_now: bool = False
    host_id: int | None = None
    packages: int = 0


def add_target(
    actor: Actor,
    user_at_host_port: str,
    key_file: str | Path | None = None,
    use_sudo: bool = False,
    interval: timedelta | None = None,
) -> SshTarget:
    """Register a host to collect over SSH; `key_file` None means the SSH agent authenticates.

    Raises InvalidInput naming the field (target, key_file, interval) and Conflict when the address and
    port are registered already. The host key is not contacted here: it is pinned by the first collection.
    """
    where = parse_target(user_at_host_port)
    key_path = _checked_key_file(key_file) if key_file is not None else ""
    if interval is not None and interval < MIN_INTERVAL:
        raise InvalidInput(f"interval {interval} is shorter than {MIN_INTERVAL}", field="interval")
    target = SshTarget(
        address=where.address,
        port=where.port,
        username=where.username,
        auth=SshAuth.KEY_FILE if key_path else SshAuth.AGENT,
        key_file=key_path,
        use_sudo=use_sudo,
        created_at=timezone.now(),
    )
    if interval is not None:
        target.interval = interval
    try:
        with transaction.atomic():
            target.save()
            audit.record(
                actor,
                "ssh.target_add",
                "ssh_target",
                target.pk,
                {"target": target.label, "auth": target.auth, "key_file": key_path, "use_sudo": use_sudo},
            )
    except IntegrityError:
        raise Conflict(f"{where.address} port {where.port} is an SSH target already") from None
    return target


def _checked_key_file(key_file: str | Path) -> str:
    text = str(key_file)
    if not text or not text.isprintable() or len(text) > 1024:
        raise InvalidInput(f"key file {text[:80]!r} is not a usable path", field="key_file")
    path = Path(text).expanduser().absolute()
    if not path.is_file():
        raise InvalidInput(f"key file {path} does not exist or is not a file", field="key_file")
    if not os.access(path, os.R_OK):
        raise InvalidInput(f"key file {path} is not readable by this process", field="key_file")
    return str(path)


def get_target(user_at_host_port_or_id: str | int) -> SshTarget:
    """A target by id, or by `user@host[:port]` (matched on host and port); raises NotFound."""
    if isinstance(user_at_host_port_or_id, int) or str(user_at_host_port_or_id).isdigit():
        found = SshTarget.objects.filter(pk=int(user_at_host_port_or_id)).first()
    else:
        where = parse_target(str(user_at_host_port_or_id))
        found = SshTarget.objects.filter(address=where.address, port=where.port).first()
    if found is None:
        raise NotFound(f"no SSH target {user_at_host_port_or_id}")
    return found


def repin(actor: Actor, target: SshTarget, host_key: str | None = None) -> SshTarget:
    """Forget the pinned host key (an admin's explicit decision), clearing the mismatch flag.

    With `host_key` (an OpenSSH public key line checked out of band) that key is pinned at once;
    without, the next collection pins whatever key the host presents (trust on first use again).
    """
    new = HostKey.parse(host_key) if host_key else None
    with transaction.atomic():
        row = SshTarget.objects.select_for_update().get(pk=target.pk)
        before = row.host_key_fingerprint
        row.host_key = new.line if new else ""
        row.host_key_fingerprint = new.fingerprint if new else ""
        row.host_key_pinned_at = timezone.now() if new else None
        row.hostkey_mismatch = False
        row.save(update_fields=["host_key", "host_key_fingerprint", "host_key_pinned_at", "hostkey_mismatch"])
        audit.record(
            actor,
            "ssh.repin",
            "ssh_target",
            row.pk,
            {"target": row.label, "from": before, "to": new.fingerprint if new else "next contact"},
        )
    return row


def due_targets(now: datetime) -> list[SshTarget]:
    """Enabled targets whose interval has passed since the last attempt, without a host-key mismatch.

    Mismatched targets wait for an admin's `repin`; collecting them again would only be refused again.
    """
    rows = SshTarget.objects.filter(enabled=True, hostkey_mismatch=False).order_by("id")
    return [t for t in rows if t.last_attempt_at is None or now - t.last_attempt_at >= t.interval]


def collect_targets(
    actor: Actor,
    targets: Iterable[SshTarget],
    concurrency: int = 8,
    timeouts: Timeouts | None = None,
    changelogs: bool = False,
) -> list[Outcome]:
    """Collect each target over SSH (at most `concurrency` at once) and store what came back.

    One target's failure never affects another; every outcome is recorded on its target. A host-key
    mismatch stores nothing, sets `hostkey_mismatch` and writes an `ssh.hostkey_mismatch` audit record.
    """
    # Read the rows afresh: a caller's stale copy must never decide which host key is trusted.
    wanted = [t.pk for t in targets]
    fresh = SshTarget.objects.in_bulk(wanted)
    rows = [fresh[pk] for pk in dict.fromkeys(wanted) if pk in fresh]
    if not rows:
        return []
    now = timezone.now()
    SshTarget.objects.filter(pk__in=[t.pk for t in rows]).update(last_attempt_at=now)
    specs = [_spec(t, changelogs) for t in rows]
    results = asyncio.run(collect_many(specs, concurrency=concurrency, timeouts=timeouts))
    outcomes = []
    for target, result in zip(rows, results, strict=True):
        try:
            outcomes.append(_settle(actor, target, result))
        except Exception as exc:  # one target's bookkeeping failing never loses the others' results
            logger.exception("recording the SSH collection of %s failed", target.label)
            outcomes.append(Outcome(target.pk, target.label, CollectionStatus.FAILED, f"internal error: {exc}"))
    return outcomes


def _spec(target: SshTarget, changelogs: bool) -> ConnectSpec:
    pinned = HostKey(target.host_key, target.host_key_fingerprint) if target.host_key else None
    return ConnectSpec(
        target_id=target.pk,
        label=target.label,
        address=target.address,
        port=target.port,
        username=target.username,
        key_file=target.key_file if target.auth == SshAuth.KEY_FILE and target.key_file else None,
        use_sudo=target.use_sudo,
        pinned=pinned,
        changelogs=changelogs,
    )


def _settle(actor: Actor, target: SshTarget, result: RemoteResult) -> Outcome:
    """Save what collecting `target` gave: the pin, the flags, the document."""
    if result.mismatch:
        return _record_mismatch(actor, target, result)
    pinned_now = False
    if result.authenticated and result.presented is not None:
        pinned_now = _pin_first_contact(actor, target, result.presented)
    if result.document is None:
        message = result.error or "no inventory came back"
        _record_failure(target, message)
        return Outcome(target.pk, target.label, CollectionStatus.FAILED, message, pinned_now=pinned_now)
    try:
        with transaction.atomic():
            host_id = store_document(actor, result.document, target.host_id)
            SshTarget.objects.filter(pk=target.pk).update(
                host_id=host_id, last_success_at=timezone.now(), last_error=""
            )
    except PatchdayError as exc:  # the document was rejected (InvalidInput names the field): nothing stored
        message = f"the inventory from {target.label} was not stored: {exc}"
        _record_failure(target, message)
        return Outcome(target.pk, target.label, CollectionStatus.FAILED, message, result.reduced, pinned_now)
    packages = result.document.get("packages")
    return Outcome(
        target.pk,
        target.label,
        CollectionStatus.STORED,
        reduced=result.reduced,
        pinned_now=pinned_now,
        host_id=host_id,
        packages=len(packages) if isinstance(packages, list) else 0,
    )


def store_document(actor: Actor, document: dict[str, Any], host_id: int | None) -> int:
    """Hand a collected document to inventory's ingest (mode "ssh"); returns the host's id.

    A target already bound to a host keeps updating that host (its identity is the pinned key).
    Raises InvalidInput naming the field when the document is rejected.
    """
    from patchday.inventory.ingest import store_document as ingest
    from patchday.inventory.models import Host

    host = Host.objects.filter(pk=host_id).first() if host_id is not None else None
    return ingest(actor, document, mode="ssh", host=host).host.pk


def _pin_first_contact(actor: Actor, target: SshTarget, key: HostKey) -> bool:
    """Pin `key` when the target has no pin yet; True when it was pinned now. Never replaces a pin."""
    with transaction.atomic():
        pinned = SshTarget.objects.filter(pk=target.pk, host_key="").update(
            host_key=key.line, host_key_fingerprint=key.fingerprint, host_key_pinned_at=timezone.now()
        )
        if pinned:
            audit.record(
                actor, "ssh.hostkey_pinned", "ssh_target", target.pk, {"target": target.label, "key": key.fingerprint}
            )
    return bool(pinned)


def _record_mismatch(actor: Actor, target: SshTarget, result: RemoteResult) -> Outcome:
    message = result.error or f"host key mismatch on {target.label}"
    with transaction.atomic():
        SshTarget.objects.filter(pk=target.pk).update(hostkey_mismatch=True, last_error=message)
        audit.record(
            actor,
            "ssh.hostkey_mismatch",
            "ssh_target",
            target.pk,
            {
                "target": target.label,
                "pinned": target.host_key_fingerprint,
                "presented": result.presented.fingerprint if result.presented else "",
                "presented_key": result.presented.line if result.presented else "",
            },
        )
    logger.error("%s", message)
    return Outcome(target.pk, target.label, CollectionStatus.HOSTKEY_MISMATCH, message)


def _record_failure(target: SshTarget, message: str) -> None:
    SshTarget.objects.filter(pk=target.pk).update(last_error=message[:4000])
    logger.warning("SSH collection of %s failed: %s", target.label, message)


def collect_due(actor: Actor, now: datetime | None = None, concurrency: int = 8) -> list[Outcome]:
    """Collect every due target (see due_targets); the periodic `ssh.collect_due` task calls this."""
    return collect_targets(actor, due_targets(now or timezone.now()), concurrency=concurrency)


def list_targets() -> Sequence[SshTarget]:
    return list(SshTarget.objects.order_by("address", "port"))


def run_jobs(
    jobs: Sequence[tuple[Any, dict[str, Any]]], concurrency: int = 8, timeouts: Timeouts | None = None
) -> list[JobRun]:
    """Run deployment jobs on SSH-managed hosts: each (host, lease) pair gets its host's enabled target's
    connection, at most `concurrency` at once. Results come back in the order of `jobs`."""
    specs: list[ConnectSpec | None] = []
    for host, _ in jobs:
        target = SshTarget.objects.filter(host_id=host.pk, enabled=True).order_by("pk").first()
        specs.append(_spec(target, False) if target is not None and not target.hostkey_mismatch else None)
    limits = timeouts or Timeouts(total=4 * 3600.0)

    async def all_jobs() -> list[JobRun]:
        gate = asyncio.Semaphore(max(1, concurrency))

        async def one(spec: ConnectSpec | None, lease: dict[str, Any]) -> JobRun:
            if spec is None:
                return JobRun(None, None, "no enabled SSH target with a trusted host key for this host")
            async with gate:
                return await execute_job(spec, lease["job"], limits)

        return list(await asyncio.gather(*(one(spec, lease) for spec, (_, lease) in zip(specs, jobs, strict=True))))

    return asyncio.run(all_jobs())
