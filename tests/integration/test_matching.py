"""The database matcher agrees with the in-memory matcher on a fixture fleet, and reconciles."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from patchday.advisories import services as advisories
from patchday.core.matching import InstalledPackage, index_advisories, match_inventory
from patchday.core.osv import parse_advisory
from patchday.findings import services as matcher
from patchday.findings.models import Match
from patchday.inventory import services as inventory
from patchday.inventory.models import PackageVersion
from tests.conftest import SYSTEM_ACTOR
from tests.support.fleet import ECOSYSTEM, debian_advisories, host_at, real_host

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)
Exposure = tuple[str, str, str, str, str | None]


def in_memory(fleet: dict[str, tuple[InstalledPackage, ...]]) -> set[Exposure]:
    index = index_advisories(debian_advisories(), {ECOSYSTEM: ECOSYSTEM})
    found: set[Exposure] = set()
    for host, packages in fleet.items():
        report = match_inventory(packages, index)
        found |= {(host, m.package.name, m.package.version, m.advisory.id, m.fixed_version) for m in report.matches}
    return found


def in_database() -> set[Exposure]:
    return {(m.host, m.package, m.installed_version, m.advisory_id, m.fixed_version) for m in matcher.host_matches()}


def record(fleet: dict[str, tuple[InstalledPackage, ...]]) -> None:
    for name, packages in fleet.items():
        change = inventory.record_inventory(
            SYSTEM_ACTOR, inventory.HostIdentity(name, ecosystem=ECOSYSTEM), packages, NOW
        )
        matcher.rematch_versions(change.new_versions)


def fixture_fleet() -> dict[str, tuple[InstalledPackage, ...]]:
    broken = InstalledPackage("weird", "not a version!", ECOSYSTEM, "openssl", "not a version!")
    return {
        "behind": real_host(),
        "security": host_at("bookworm-security"),
        "half": host_at("bookworm-security", only=60),
        "odd": (*real_host()[:50], broken),
    }


def test_both_matchers_agree_on_the_fixture_fleet_and_rematching_changes_nothing() -> None:
    advisories.import_advisories(SYSTEM_ACTOR, debian_advisories(), "debian-bookworm-osv")
    fleet = fixture_fleet()
    record(fleet)

    expected = in_memory(fleet)
    assert len(expected) > 100  # the real host is months behind: a meaningful fixture
    assert {e[0] for e in expected} >= {"behind", "half"}
    assert in_database() == expected
    # fewer exposures once patched, and the distinct versions are stored once for four hosts
    assert len({e for e in expected if e[0] == "security"}) < len({e for e in expected if e[0] == "behind"})
    assert PackageVersion.objects.count() < sum(len(p) for p in fleet.values())

    before = set(Match.objects.values_list("id", flat=True))
    change = matcher.rematch_all()
    assert (change.added, change.removed) == (0, 0)
    assert set(Match.objects.values_list("id", flat=True)) == before


def test_a_host_that_upgrades_past_the_fix_drops_out() -> None:
    advisories.import_advisories(SYSTEM_ACTOR, debian_advisories(), "debian-bookworm-osv")
    record({"behind": real_host()})
    exposed = in_database()
    assert exposed

    record({"behind": host_at("bookworm-security")})

    assert in_database() == in_memory({"behind": host_at("bookworm-security")})
    assert len(in_database()) < len(exposed)


def test_a_changed_advisory_is_rematched_for_its_packages_only() -> None:
    records = debian_advisories()
    advisories.import_advisories(SYSTEM_ACTOR, records, "debian-bookworm-osv")
    record({"behind": real_host()})
    exposure = next(iter(sorted(in_database())))
    _, _, _, advisory_id, fixed = exposure
    original = next(r for r in records if r.id == advisory_id)
    # The advisory is revised: its fix is withdrawn ("no fix yet"), with a new modified time.
    revised = parse_advisory(
        {
            "id": original.id,
            "modified": "2026-11-28T00:00:00Z",
            "upstream": list(original.upstream),
            "affected": [
                {
                    "package": {"ecosystem": p.ecosystem, "name": p.name},
                    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}],
                }
                for p in original.affected
            ],
        }
    )
    report = advisories.import_advisories(SYSTEM_ACTOR, [revised], "revision")
    assert (report.updated, report.unchanged) == (1, 0)
    matcher.rematch_packages(report.touched)

    revised_records = [revised if r.id == advisory_id else r for r in records]
    index = index_advisories(revised_records, {ECOSYSTEM: ECOSYSTEM})
    expected = {
        ("behind", m.package.name, m.package.version, m.advisory.id, m.fixed_version)
        for m in match_inventory(real_host(), index).matches
    }
    assert in_database() == expected
    assert any(e[3] == advisory_id and e[4] is None for e in expected)  # now "no fix available"
    assert fixed is not None


def test_importing_the_same_records_again_changes_nothing() -> None:
    first = advisories.import_advisories(SYSTEM_ACTOR, debian_advisories(), "debian-bookworm-osv")
    again = advisories.import_advisories(SYSTEM_ACTOR, debian_advisories(), "debian-bookworm-osv")
    assert first.added == len(debian_advisories())
    assert (again.added, again.updated, again.unchanged) == (0, 0, len(debian_advisories()))
    assert again.touched == frozenset()


def test_a_version_that_does_not_parse_is_kept_unkeyed_and_never_matched() -> None:
    advisories.import_advisories(SYSTEM_ACTOR, debian_advisories(), "debian-bookworm-osv")
    broken = replace(
        real_host()[0], name="weird", version="not a version!", source_name="openssl", source_version="not a version!"
    )
    record({"odd": (broken,)})
    row = PackageVersion.objects.get(name="weird")
    assert row.match_key is None
    assert "not a valid dpkg version" in row.key_error
    assert in_database() == set()
