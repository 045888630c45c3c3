"""Use cases of the audit trail: append a record (the only writer), verify the chain, search, export."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from patchday.audit.models import AuditChainHead, AuditRecord
from patchday.core.audit import (
    GENESIS_HASH,
    Actor,
    AuditEntry,
    ChainReport,
    canonical_changes,
    chain_hash,
    check_chain,
)

EXPORT_FIELDS = (
    "id",
    "at",
    "actor_kind",
    "actor_name",
    "action",
    "object_type",
    "object_id",
    "changes",
    "source_address",
    "prev_hash",
    "hash",
)


def record(
    actor: Actor,
    action: str,
    object_type: str,
    object_id: object,
    changes: Mapping[str, object] | None = None,
) -> AuditRecord:
    """Append one record to the chain, inside the caller's transaction (so a failed change leaves none).

    Appends are serialised by locking the chain head row, so concurrent writers on PostgreSQL
    (and SQLite's single writer) always link to the true predecessor.
    """
    with transaction.atomic():
        head = _locked_head()
        entry = AuditEntry(
            at=timezone.now(),
            actor_kind=actor.kind,
            actor_name=actor.name,
            action=action,
            object_type=object_type,
            object_id=str(object_id),
            # Hash what verification will read back: the stored JSON, not the caller's Python values
            # (int keys and other non-JSON values come back changed and would no longer match).
            changes=json.loads(canonical_changes(changes or {})),
            source_address=actor.source_address,
        )
        digest = chain_hash(head.last_hash, entry)
        row = AuditRecord.objects.create(
            at=entry.at,
            actor_kind=entry.actor_kind.value,
            actor_name=entry.actor_name,
            action=entry.action,
            object_type=entry.object_type,
            object_id=entry.object_id,
            changes=canonical_changes(entry.changes),
            source_address=entry.source_address or "",
            prev_hash=head.last_hash,
            hash=digest,
        )
        AuditChainHead.objects.filter(pk=1).update(last_hash=digest, count=head.count + 1)
    return row


def _locked_head() -> AuditChainHead:
    """The chain head, locked until the caller's transaction ends; created at genesis by the first append."""
    head = AuditChainHead.objects.select_for_update().filter(pk=1).first()
    if head is not None:
        return head
    try:
        with transaction.atomic():  # a savepoint: a concurrent first append may create the head first
            AuditChainHead.objects.create(pk=1, last_hash=GENESIS_HASH, count=0)
    except IntegrityError:
        pass
    return AuditChainHead.objects.select_for_update().get(pk=1)


@contextmanager
def _snapshot() -> Iterator[None]:
    """A read-only transaction that sees the database at one moment, without holding up writers."""
    if connection.in_atomic_block:  # the caller's transaction already decides what is seen
        yield
        return
    with connection.cursor():  # connect (and health-check) first: SET TRANSACTION must be the first statement
        pass
    if connection.vendor == "sqlite":
        # Our SQLite transactions are IMMEDIATE (they take the write lock); a deferred one reads a WAL snapshot.
        mode = connection.transaction_mode  # type: ignore[attr-defined]
        connection.transaction_mode = "DEFERRED"  # type: ignore[attr-defined]
        try:
            with transaction.atomic():
                yield
        finally:
            connection.transaction_mode = mode  # type: ignore[attr-defined]
        return
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield


def verify() -> ChainReport:
    """Check every record against the chain and the chain head; the report names the first broken record.

    The head and the records are read from one snapshot, so records appended while verification
    runs are not mistaken for records missing from the end of the chain.
    """
    with _snapshot():
        head = AuditChainHead.objects.filter(pk=1).first()
        records = (r.to_chained() for r in AuditRecord.objects.order_by("id").iterator(chunk_size=2000))
        return check_chain(
            records,
            expected_head=head.last_hash if head else GENESIS_HASH,
            expected_count=head.count if head else 0,
        )


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Search criteria for the audit trail; each None means 'any'."""

    actor: str | None = None
    action: str | None = None
    object_type: str | None = None
    object_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def search(criteria: AuditFilter) -> QuerySet[AuditRecord]:
    """Records matching `criteria`, newest first. `action` matches a prefix ('user.' finds all user actions)."""
    rows = AuditRecord.objects.all()
    if criteria.actor:
        rows = rows.filter(actor_name=criteria.actor)
    if criteria.action:
        rows = rows.filter(action__startswith=criteria.action)
    if criteria.object_type:
        rows = rows.filter(object_type=criteria.object_type)
    if criteria.object_id:
        rows = rows.filter(object_id=criteria.object_id)
    if criteria.since:
        rows = rows.filter(at__gte=criteria.since)
    if criteria.until:
        rows = rows.filter(at__lt=criteria.until)
    return rows.order_by("-id")


def as_dict(row: AuditRecord) -> dict[str, object]:
    """One record as exported: `changes` decoded, times in ISO 8601 UTC."""
    return {
        "id": row.pk,
        "at": row.at.isoformat(),
        "actor_kind": row.actor_kind,
        "actor_name": row.actor_name,
        "action": row.action,
        "object_type": row.object_type,
        "object_id": row.object_id,
        "changes": json.loads(row.changes),
        "source_address": row.source_address,
        "prev_hash": row.prev_hash,
        "hash": row.hash,
    }


def export_csv(rows: QuerySet[AuditRecord]) -> Iterator[str]:
    """CSV lines (header first) for `rows`; `changes` stays canonical JSON so hashes can be re-checked."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_FIELDS)
    yield buffer.getvalue()
    for row in rows.iterator(chunk_size=2000):
        buffer.seek(0)
        buffer.truncate()
        values = [getattr(row, f) if f != "id" else row.pk for f in EXPORT_FIELDS]
        values[1] = row.at.isoformat()
        writer.writerow(values)
        yield buffer.getvalue()


def export_json(rows: QuerySet[AuditRecord]) -> Iterator[str]:
    """A JSON array of `rows`, streamed record by record."""
    yield "["
    for index, row in enumerate(rows.iterator(chunk_size=2000)):
        yield ("," if index else "") + json.dumps(as_dict(row), ensure_ascii=False)
    yield "]\n"
