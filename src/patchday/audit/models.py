"""Tables of the audit area: append-only records and the chain head that seals the end of the chain."""

from __future__ import annotations

from typing import Any, NoReturn

from django.db import models

from patchday.core.audit import ActorKind, AuditEntry, ChainedRecord


class AppendOnlyError(RuntimeError):
    """Raised by any attempt to change or remove an audit record through the ORM."""


class AuditRecordQuerySet(models.QuerySet["AuditRecord"]):
    def update(self, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("audit records are append-only")

    def delete(self) -> NoReturn:
        raise AppendOnlyError("audit records are append-only")


class AuditRecord(models.Model):
    """One change: when, who, what, to which object, from where; linked to its predecessor by hash."""

    at = models.DateTimeField(db_index=True)
    actor_kind = models.CharField(max_length=16, choices=[(k.value, k.value) for k in ActorKind])
    actor_name = models.CharField(max_length=150, db_index=True)
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=64, db_index=True)
    object_id = models.CharField(max_length=128, db_index=True)
    changes = models.TextField()  # canonical JSON, exactly as hashed
    source_address = models.CharField(max_length=64, blank=True, default="")
    prev_hash = models.CharField(max_length=64, unique=True)  # unique: the chain can never fork
    hash = models.CharField(max_length=64, unique=True)

    objects = AuditRecordQuerySet.as_manager()

    class Meta:
        ordering = ["id"]

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise AppendOnlyError("audit records are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("audit records are append-only")

    def to_chained(self) -> ChainedRecord:
        import json

        entry = AuditEntry(
            at=self.at,
            actor_kind=ActorKind(self.actor_kind),
            actor_name=self.actor_name,
            action=self.action,
            object_type=self.object_type,
            object_id=self.object_id,
            changes=json.loads(self.changes),
            source_address=self.source_address,
        )
        return ChainedRecord(id=self.pk, entry=entry, prev_hash=self.prev_hash, hash=self.hash)


class AuditChainHead(models.Model):
    """The single row holding the last record's hash and the record count; locked for each append."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    last_hash = models.CharField(max_length=64)
    count = models.BigIntegerField(default=0)
