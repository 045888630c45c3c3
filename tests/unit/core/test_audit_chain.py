"""The audit hash chain: hashing is deterministic, and check_chain names the first record that does not hold."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from patchday.core.audit import (
    GENESIS_HASH,
    ActorKind,
    AuditEntry,
    ChainedRecord,
    canonical_changes,
    chain_hash,
    check_chain,
)

T0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def entry(n: int, **fields: object) -> AuditEntry:
    base = AuditEntry(
        at=T0 + timedelta(seconds=n),
        actor_kind=ActorKind.USER,
        actor_name=f"alice-{n}",
        action="user.set_role",
        object_type="user",
        object_id=f"bob-{n}",
        changes={"role": ["viewer", "operator"], "n": n},
        source_address="192.0.2.7",
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def build_chain(count: int, first_id: int = 1) -> list[ChainedRecord]:
    """`count` correctly linked records with ids first_id, first_id + 1, ..."""
    records: list[ChainedRecord] = []
    prev = GENESIS_HASH
    for n in range(count):
        e = entry(n)
        digest = chain_hash(prev, e)
        records.append(ChainedRecord(id=first_id + n, entry=e, prev_hash=prev, hash=digest))
        prev = digest
    return records


# -- hashing ------------------------------------------------------------------------------------------


def test_chain_hash_is_deterministic_and_hex_sha256() -> None:
    first = chain_hash(GENESIS_HASH, entry(1))
    assert first == chain_hash(GENESIS_HASH, entry(1))
    assert len(first) == 64
    assert int(first, 16) >= 0


def test_chain_hash_does_not_depend_on_key_order_or_timezone_of_the_timestamp() -> None:
    plain = entry(1, changes={"a": 1, "b": [1, 2]})
    reordered = entry(1, changes={"b": [1, 2], "a": 1})
    in_paris = entry(1, at=(T0 + timedelta(seconds=1)).astimezone(timezone(timedelta(hours=2))))
    assert chain_hash(GENESIS_HASH, plain) == chain_hash(GENESIS_HASH, reordered)
    assert chain_hash(GENESIS_HASH, entry(1)) == chain_hash(GENESIS_HASH, in_paris)


def test_canonical_changes_sorts_keys_without_spaces() -> None:
    assert canonical_changes({"b": 1, "a": ["x", "é"]}) == '{"a":["x","é"],"b":1}'


@pytest.mark.parametrize(
    "field",
    [
        {"at": T0 + timedelta(seconds=1, microseconds=1)},
        {"actor_kind": ActorKind.TOKEN},
        {"actor_name": "mallory"},
        {"action": "user.create"},
        {"object_type": "api_token"},
        {"object_id": "bob-2"},
        {"changes": {"role": ["viewer", "admin"], "n": 1}},
        {"source_address": "198.51.100.1"},
        {"source_address": None},
    ],
    ids=lambda f: next(iter(f)),
)
def test_every_field_is_covered_by_the_hash(field: dict[str, object]) -> None:
    assert chain_hash(GENESIS_HASH, entry(1, **field)) != chain_hash(GENESIS_HASH, entry(1))


def test_the_predecessor_hash_is_covered_by_the_hash() -> None:
    assert chain_hash("1" * 64, entry(1)) != chain_hash(GENESIS_HASH, entry(1))


def test_fields_cannot_be_shifted_into_each_other() -> None:
    # Joining fields naively ("ab" + "c" == "a" + "bc") would let text move between fields unnoticed.
    assert chain_hash(GENESIS_HASH, entry(1, actor_name="ab", action="c")) != chain_hash(
        GENESIS_HASH, entry(1, actor_name="a", action="bc")
    )


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        chain_hash(GENESIS_HASH, entry(1, at=datetime(2026, 3, 1, 12, 0)))


# -- checking a chain ---------------------------------------------------------------------------------


def test_an_intact_chain_checks_out_with_its_head() -> None:
    records = build_chain(5)
    report = check_chain(records, expected_head=records[-1].hash, expected_count=5)
    assert report.is_intact
    assert (report.checked, report.head_hash, report.first_broken, report.reason) == (5, records[-1].hash, None, None)


def test_an_empty_chain_is_intact_at_genesis() -> None:
    report = check_chain([], expected_head=GENESIS_HASH, expected_count=0)
    assert report.is_intact
    assert report.head_hash == GENESIS_HASH


@pytest.mark.parametrize("index", [0, 2, 4])
def test_an_altered_field_names_that_record(index: int) -> None:
    records = build_chain(5)
    records[index] = replace(records[index], entry=replace(records[index].entry, actor_name="mallory"))
    report = check_chain(records, expected_head=records[-1].hash, expected_count=5)
    assert report.first_broken == records[index].id
    assert report.reason == "its contents do not match its hash"


def test_altered_changes_name_that_record() -> None:
    records = build_chain(5)
    records[3] = replace(records[3], entry=replace(records[3].entry, changes={"role": ["viewer", "admin"], "n": 3}))
    assert check_chain(records).first_broken == records[3].id


def test_a_rehashed_record_is_caught_by_its_successor() -> None:
    # A forger who alters record 2 and recomputes its hash still breaks record 3's link.
    records = build_chain(5)
    forged = replace(records[1].entry, action="user.create")
    records[1] = replace(records[1], entry=forged, hash=chain_hash(records[1].prev_hash, forged))
    report = check_chain(records)
    assert report.first_broken == records[2].id
    assert report.reason == "its predecessor link does not match the record before it"


def test_an_inserted_record_is_detected() -> None:
    records = build_chain(5)
    inserted = entry(99, action="user.create")
    fake = ChainedRecord(id=100, entry=inserted, prev_hash="f" * 64, hash=chain_hash("f" * 64, inserted))
    report = check_chain([*records[:2], fake, *records[2:]])
    assert report.first_broken == 100


def test_an_inserted_record_that_links_correctly_breaks_the_next_link() -> None:
    records = build_chain(5)
    inserted = entry(99, action="user.create")
    fake = ChainedRecord(id=100, entry=inserted, prev_hash=records[1].hash, hash=chain_hash(records[1].hash, inserted))
    report = check_chain([*records[:2], fake, *records[2:]])
    assert report.first_broken == records[2].id


@pytest.mark.parametrize("index", [0, 2])
def test_a_deleted_record_names_its_successor(index: int) -> None:
    records = build_chain(5)
    del records[index]
    report = check_chain(records, expected_head=records[-1].hash, expected_count=5)
    assert report.first_broken == records[index].id
    assert report.reason == "its predecessor link does not match the record before it"


def test_reordered_records_are_detected() -> None:
    records = build_chain(5)
    records[1], records[2] = records[2], records[1]
    assert check_chain(records).first_broken == records[1].id


def test_deleting_the_last_record_is_seen_only_through_the_head() -> None:
    records = build_chain(5)
    head = records[-1].hash
    truncated = records[:-1]
    assert check_chain(truncated).is_intact  # no link inside the chain can show it
    report = check_chain(truncated, expected_head=head, expected_count=5)
    assert report.first_broken == truncated[-1].id
    assert report.reason == "the chain head counts 5 records but 4 exist"


def test_a_head_that_does_not_match_the_last_record_is_reported() -> None:
    records = build_chain(3)
    report = check_chain(records, expected_head="e" * 64, expected_count=3)
    assert report.first_broken == records[-1].id
    assert report.reason == "the last record does not match the stored chain head"


def test_a_chain_emptied_completely_is_reported_against_its_head() -> None:
    records = build_chain(3)
    report = check_chain([], expected_head=records[-1].hash, expected_count=3)
    assert not report.is_intact  # no record is left to name, but the chain is still broken
    assert report.first_broken is None
    assert report.reason == "the chain head counts 3 records but 0 exist"
