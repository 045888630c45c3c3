"""The findings ledger follows inventory and advisories: opened, fixed (verified by re-inventory),
reopened, refreshed; incremental updates and the full re-evaluation agree."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from patchday.advisories import feed_imports
from patchday.findings import ledger
from patchday.findings.models import Finding, FindingEvent, FindingStatus
from patchday.findings.services import host_matches
from patchday.inventory import ingest
from patchday.inventory.models import Host
from tests.conftest import SYSTEM_ACTOR
from tests.support.documents import document, pending_update
from tests.support.fleet import debian_advisories, host_at, real_host

pytestmark = pytest.mark.django_db


@pytest.fixture
def advisories() -> None:
    feed_imports.store_advisories(SYSTEM_ACTOR, list(debian_advisories()), "debian-bookworm-osv")


def _store(packages, sequence: int, **kwargs):  # type: ignore[no-untyped-def]
    return ingest.store_document(SYSTEM_ACTOR, document(packages, **kwargs), mode="agent", sequence=sequence)


def _open(host: str = "web-1") -> set[tuple[str, str]]:
    rows = Finding.objects.filter(host__name=host, status=FindingStatus.OPEN)
    return set(rows.values_list("vulnerability", "package"))


def _expected(host: str = "web-1") -> set[tuple[str, str]]:
    """What the matcher says, per CVE (or advisory id when it names none) and source package."""
    from patchday.advisories.models import Advisory

    cves = {a.advisory_id: a.cve_ids for a in Advisory.objects.all()}
    found = set()
    for m in host_matches([host]):
        source = Host.objects.get(name=host).packages.filter(package_version__name=m.package).first()
        package = source.package_version.match_name if source else m.package
        for cve in cves[m.advisory_id] or [m.advisory_id]:
            found.add((cve, package))
    return found


def test_an_inventory_opens_one_finding_per_vulnerability_and_source_package(advisories: None) -> None:
    _store(real_host(), 1)

    opened = _open()
    assert opened
    assert opened == _expected()
    finding = Finding.objects.filter(host__name="web-1").exclude(fixed_version="").first()
    assert finding is not None
    assert finding.first_detected_at == finding.status_changed_at
    assert finding.events.get().to_status == FindingStatus.OPEN


def test_upgrading_fixes_findings_verified_and_downgrading_reopens_them(advisories: None) -> None:
    _store(real_host(), 1)
    before = _open()
    _store(host_at("bookworm-security"), 2)
    fixed = set(
        Finding.objects.filter(status=FindingStatus.FIXED, fix_verified=True).values_list("vulnerability", "package")
    )

    assert fixed
    assert fixed == before - _open()
    assert _open() == _expected()

    _store(real_host(), 3)

    assert _open() == before
    reopened = Finding.objects.exclude(reopened_at=None)
    assert set(reopened.values_list("vulnerability", "package")) == fixed
    one = reopened.first()
    assert one is not None
    assert [e.to_status for e in one.events.all()] == ["open", "fixed", "open"]
    assert one.fixed_at is None


def test_advisories_imported_after_the_inventory_open_findings_on_existing_hosts() -> None:
    _store(real_host(), 1)
    assert not Finding.objects.exists()

    feed_imports.store_advisories(SYSTEM_ACTOR, list(debian_advisories()), "debian-bookworm-osv")

    assert _open() == _expected()
    assert not Finding.objects.filter(fix_verified=True).exists()


def test_the_full_re_evaluation_agrees_with_the_incremental_ledger(advisories: None) -> None:
    _store(real_host(), 1, hostname="a", machine_id="a" * 32)
    _store(host_at("bookworm-security"), 1, hostname="b", machine_id="b" * 32)
    snapshot = set(Finding.objects.values_list("host__name", "vulnerability", "package", "status", "fixed_version"))

    change = ledger.reconcile_all()

    assert change.opened == change.reopened == change.fixed == 0
    after = set(Finding.objects.values_list("host__name", "vulnerability", "package", "status", "fixed_version"))
    assert after == snapshot


def test_a_cve_only_a_changelog_names_is_a_lower_confidence_finding(advisories: None) -> None:
    update = pending_update("zlib1g", "1:1.2.13.dfsg-1", "1:1.2.13.dfsg-1+deb12u9")
    update["source"], update["source_version"] = "zlib", "1:1.2.13.dfsg-1+deb12u9"
    update["changelog_cves"] = ["CVE-2099-0001"]

    _store(real_host(), 1, pending=[update])

    finding = Finding.objects.get(vulnerability="CVE-2099-0001")
    assert (finding.confidence, finding.package, finding.fixed_version) == (
        "changelog",
        "zlib",
        "1:1.2.13.dfsg-1+deb12u9",
    )


def test_findings_name_the_pending_update_that_fixes_them(advisories: None) -> None:
    packages = real_host()
    _store(packages, 1)
    finding = Finding.objects.filter(status=FindingStatus.OPEN).exclude(fixed_version="").first()
    assert finding is not None
    binary = next(p for p in packages if (p.source_name or p.name) == finding.package)
    update = pending_update(binary.name, binary.version, finding.fixed_version)
    update["source"] = finding.package

    _store(packages, 2, pending=[update])

    finding.refresh_from_db()
    assert finding.fixing_update == f"{binary.name} {finding.fixed_version}"
    assert FindingEvent.objects.filter(finding=finding).count() == 1
    assert finding.last_detected_at > finding.first_detected_at - timedelta(seconds=1)
    assert finding.first_detected_at <= timezone.now()


def test_the_api_lists_explains_and_queues_findings(advisories: None, api_as) -> None:  # type: ignore[no-untyped-def]
    from patchday.core.roles import Role

    _store(real_host(), 1)
    viewer = api_as(Role.VIEWER)
    from patchday.findings.queries import refresh_marked

    assert refresh_marked() > 0  # what the every-minute findings.queue task does

    listed = viewer.get("findings?page_size=500").json()
    one = viewer.get(f"findings/{listed['items'][0]['id']}").json()
    by_cve = viewer.get(f"findings?vulnerability={one['vulnerability'].lower()}").json()
    queue = viewer.get("findings/queue?page_size=500").json()
    bad = viewer.get("findings?status=broken")

    assert listed["count"] == len(_open())
    assert one["events"][0]["to_status"] == "open"
    assert {f["vulnerability"] for f in by_cve["items"]} == {one["vulnerability"]}
    assert (
        sum(item["findings"] for item in queue["items"])
        == Finding.objects.filter(status="open").exclude(fixed_version="").count()
    )
    assert bad.status_code == 422
    assert viewer.post("findings/reevaluate").status_code == 403
    assert api_as(Role.ADMIN).post("findings/reevaluate").status_code == 202


def test_the_cli_lists_and_explains(advisories: None, child_env: dict[str, str]) -> None:
    import subprocess
    import sys

    _store(real_host(), 1)
    finding = Finding.objects.filter(status="open").first()
    assert finding is not None
    command = [sys.executable, "-m", "patchday.cli.main", "findings"]

    listed = subprocess.run(
        [*command, "list", "-o", "csv", "--limit", "0"], env=child_env, capture_output=True, text=True
    )
    explained = subprocess.run([*command, "explain", str(finding.pk)], env=child_env, capture_output=True, text=True)
    missing = subprocess.run([*command, "explain", "999999"], env=child_env, capture_output=True, text=True)

    assert listed.returncode == 0, listed.stderr
    assert len(listed.stdout.splitlines()) == len(_open()) + 1
    assert explained.returncode == 0, explained.stderr
    assert finding.vulnerability in explained.stdout
    assert missing.returncode == 2
    assert "no finding with id 999999" in missing.stderr
