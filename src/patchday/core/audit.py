"""The audit trail's hash chain: how a record is hashed and how a chain is checked.

Each record's hash covers its own fields and the hash of its predecessor, so altering,
inserting or deleting any record breaks every hash after it. The first record links to
GENESIS_HASH.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Final

GENESIS_HASH: Final = "0" * 64


class ActorKind(StrEnum):
    """Who made a change."""

    USER = "user"  # a person signed in to the dashboard or the API
    TOKEN = "token"  # an API token, on behalf of its owner
    HOST = "host"  # a host's agent, acting on its own records
    SYSTEM = "system"  # the CLI, the worker or patchday itself


@dataclass(frozen=True, slots=True)
class Actor:
    """Who did something, and from where: `name` is a username, token prefix, hostname or component."""

    kind: ActorKind
    name: str
    user_id: int | None = None
    source_address: str | None = None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One audit record as it is hashed: `changes` is a JSON-able summary of what changed."""

    at: datetime
    actor_kind: ActorKind
    actor_name: str
    action: str
    object_type: str
    object_id: str
    changes: Mapping[str, object]
    source_address: str | None


@dataclass(frozen=True, slots=True)
class ChainedRecord:
    """An entry as stored: its id, the predecessor hash it claims, and its own stored hash."""

    id: int
    entry: AuditEntry
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class ChainReport:
    """Result of checking a chain: `reason` is None when every record checks out.

    `first_broken` names the first record that does not hold; it is None when the chain is intact,
    and also when it is broken with no record left to name (every record deleted).
    """

    checked: int
    head_hash: str
    first_broken: int | None
    reason: str | None

    @property
    def is_intact(self) -> bool:
        return self.reason is None


def canonical_changes(changes: Mapping[str, object]) -> str:
    """The one text form of `changes` that is stored and hashed (sorted keys, no spaces)."""
    return json.dumps(changes, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _timestamp(at: datetime) -> str:
    if at.tzinfo is None:
        raise ValueError("audit timestamps must be timezone-aware")
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def chain_hash(prev_hash: str, entry: AuditEntry) -> str:
    """SHA-256 over the predecessor's hash and every field of `entry`, in a fixed order."""
    fields = [
        prev_hash,
        _timestamp(entry.at),
        entry.actor_kind.value,
        entry.actor_name,
        entry.action,
        entry.object_type,
        entry.object_id,
        canonical_changes(entry.changes),
        entry.source_address or "",
    ]
    payload = json.dumps(fields, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def check_chain(
    records: Iterable[ChainedRecord],
    *,
    expected_head: str | None = None,
    expected_count: int | None = None,
) -> ChainReport:
    """Walk `records` in id order and name the first one whose links or hash do not hold.

    `expected_head`/`expected_count` come from the separately stored chain head; they catch
    records deleted from the end of the chain, which no link inside the chain can show.
    """
    prev = GENESIS_HASH
    checked = 0
    last_id: int | None = None
    for record in records:
        checked += 1
        last_id = record.id
        if record.prev_hash != prev:
            return ChainReport(checked, prev, record.id, "its predecessor link does not match the record before it")
        if chain_hash(record.prev_hash, record.entry) != record.hash:
            return ChainReport(checked, prev, record.id, "its contents do not match its hash")
        prev = record.hash
    if expected_count is not None and expected_count != checked:
        return ChainReport(
            checked, prev, last_id, f"the chain head counts {expected_count} records but {checked} exist"
        )
    if expected_head is not None and expected_head != prev:
        return ChainReport(checked, prev, last_id, "the last record does not match the stored chain head")
    return ChainReport(checked, prev, None, None)
