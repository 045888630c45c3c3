"""Storing inventory documents: facts, packages, history, pending updates, replays and hostile input."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from patchday.audit.models import AuditRecord
from patchday.core.errors import Conflict, InvalidInput
from patchday.findings.models import Match
from patchday.inventory import ingest, queries
from patchday.inventory.models import Collection, Host, PackageEvent, PendingUpdate
from tests.conftest import SYSTEM_ACTOR
from tests.support.documents import document, pending_update
from tests.support.fleet import host_at, real_host

pytestmark = pytest.mark.django_db


@pytest.fixture
def debian_advisories_loaded() -> None:
    from patchday.advisories import services as advisories
    from tests.support.fleet import debian_advisories

    advisories.import_advisories(SYSTEM_ACTOR, debian_advisories(), "debian-bookworm-osv")


def _store(doc: dict, **kwargs: object) -> ingest.StoredInventory:
    return ingest.store_document(SYSTEM_ACTOR, doc, mode="agent", **kwargs)  # type: ignore[arg-type]


def test_a_first_inventory_creates_the_host_with_its_facts_and_history() -> None:
    packages = real_host()
    doc = document(packages, pending=[pending_update("libssl3", "3.0.20-1~deb12u2", "3.0.22-1~deb12u2")])
    doc["reboot"] = {"required": True, "reasons": ["/run/reboot-required"], "packages": ["libc6"]}

    stored = _store(doc, sequence=1)

    host = Host.objects.get(machine_id=doc["machine_id"])
    assert stored.created
    assert host.name == "web-1"
    assert (host.os_id, host.os_version, host.ecosystem) == ("debian", "12", "Debian:12")
    assert host.kernel_running == "6.1.0-27-amd64"
    assert host.reboot_required is True
    assert host.packages.count() == len(packages)
    assert host.inventory_sequence == 1
    assert host.inventory_digest == ingest.canonical_digest(doc)
    assert PackageEvent.objects.filter(host=host, from_version="").count() == len(packages)
    assert list(PendingUpdate.objects.filter(host=host).values_list("name", "security")) == [("libssl3", True)]
    assert AuditRecord.objects.filter(action="host.inventory", object_id="web-1").count() == 1


def test_an_upgrade_is_recorded_as_version_changes_and_the_past_can_be_asked() -> None:
    before = real_host()
    first = _store(document(before), sequence=1)
    after = host_at("bookworm-security")
    changed = {(p.name, p.arch) for p in before} ^ {(p.name, p.arch) for p in after}
    assert not changed, "the fixture host keeps its package names across patch levels"
    at_first = first.collection.received_at

    second = _store(document(after), sequence=2, now=at_first + timedelta(hours=1))

    versions_before = {(p.name, p.version) for p in before}
    versions_after = {(p.name, p.version) for p in after}
    moved = {name for name, _ in versions_after - versions_before}
    assert second.changed == len(moved) > 0
    assert second.added == second.removed == 0
    events = PackageEvent.objects.filter(collection=second.collection)
    assert {e.name for e in events} == moved
    assert all(e.from_version and e.to_version for e in events)
    assert {(n, v) for _, n, _, v in queries.packages_at(first.host, at_first)} == versions_before
    assert {(n, v) for _, n, _, v in queries.packages_at(first.host, timezone.now() + timedelta(days=1))} == (
        versions_after
    )


def test_a_replayed_older_inventory_changes_nothing() -> None:
    _store(document(host_at("bookworm-security")), sequence=5)
    host = Host.objects.get()
    packages_before = set(host.packages.values_list("package_version_id", flat=True))

    with pytest.raises(Conflict, match="sequence 4 is not newer than the stored 5"):
        _store(document(real_host()), sequence=4)
    with pytest.raises(Conflict):
        _store(document(real_host()), sequence=5)

    assert set(host.packages.values_list("package_version_id", flat=True)) == packages_before
    assert Collection.objects.count() == 1


def test_new_package_versions_are_matched_against_advisories(debian_advisories_loaded: None) -> None:
    _store(document(real_host()), sequence=1)

    assert Match.objects.filter(package_version__installations__host__name="web-1").exists()


def test_exact_duplicate_packages_are_stored_once() -> None:
    packages = real_host()[:10]
    doc = document([*packages, *packages])

    _store(doc)

    assert Host.objects.get().packages.count() == 10


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d["packages"][3].update(version="1" * 300), "inventory.packages.3.version"),
        (lambda d: d["packages"][0].update(name="bad\x00name"), "inventory.packages.0.name"),
        (lambda d: d["packages"][1].update(manager="pip"), "inventory.packages.1.manager"),
        (lambda d: d.update(hostname="web;rm -rf /"), "inventory.hostname"),
        (lambda d: d.update(hostname="<script>alert(1)</script>"), "inventory.hostname"),
        (lambda d: d.update(addresses=["10.0.0.300"]), "inventory.addresses.0"),
        (lambda d: d.update(format=2), "inventory.format"),
        (lambda d: d.update(machine_id="../../etc/passwd"), "inventory.machine_id"),
        (lambda d: d["pending_updates"].append({"name": "x"}), "inventory.pending_updates.0.manager"),
        (lambda d: d.pop("os"), "inventory.os"),
    ],
)
def test_hostile_documents_are_refused_naming_the_field_and_change_nothing(mutate, field) -> None:  # type: ignore[no-untyped-def]
    doc = document(real_host()[:20])
    mutate(doc)

    with pytest.raises(InvalidInput) as caught:
        _store(doc)

    assert caught.value.field == field
    assert not Host.objects.exists()
    assert not PackageEvent.objects.exists()


def test_names_with_shell_and_html_characters_are_stored_as_data() -> None:
    packages = list(real_host()[:3])
    doc = document(packages)
    doc["packages"][0].update(name="$(reboot)", source="<b>x</b>")
    doc["packages"][1].update(name="a;b|c&&d", source="../../etc")

    _store(doc)

    names = set(Host.objects.get().packages.values_list("package_version__name", flat=True))
    assert {"$(reboot)", "a;b|c&&d"} <= names


def test_a_host_bound_to_a_token_is_updated_whatever_the_document_says() -> None:
    _store(document(real_host()[:5], hostname="a", machine_id="a" * 32))
    _store(document(real_host()[:5], hostname="b", machine_id="b" * 32))
    host_a = Host.objects.get(name="a")

    _store(document(real_host()[:7], hostname="b", machine_id="b" * 32), host=host_a)

    assert Host.objects.get(name="a").packages.count() == 7
    assert Host.objects.get(name="b").packages.count() == 5
