"""The accuracy gate (#6) on a lab host: the findings patchday stores from the agent's inventory of a real Debian 12
host equal the independent evaluation, with the host's own `dpkg-query` and `dpkg --compare-versions` as judges.

A lab host's minbase comes from the point release, which already has every fix the shipped advisories (up to
2026-08-21) publish for its packages. So the host also gets two packages from the point release that those advisories
still call affected: nss (DLA-4694-1, DLA-4729-1) and python-httplib2 (DLA-4748-1). The gate then has findings to
check, not just an empty set on both sides.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

import pytest

from patchday.agent.build import build_zipapp
from patchday.inventory.ingest import store_document
from patchday.inventory.models import ManagementMode
from tests.conftest import SYSTEM_ACTOR
from tests.integration.test_accuracy_gate import (
    ECOSYSTEM,
    Dpkg,
    binaries_of_dpkg_query,
    debian_entries,
    disagreements,
    evaluate,
    import_osv_feed,
    import_tracker_lists,
    open_findings_of,
    summary,
)
from tests.lab.fleet import Lab, LabHost

pytestmark = [pytest.mark.lab, pytest.mark.django_db]

Exec = Callable[..., CompletedProcess[str]]
AGENT = "/root/patchday-agent.pyz"
BEHIND = ("libnss3", "python3-httplib2")
DPKG_QUERY_FORMAT = "${Package}\t${Version}\t${source:Package}\t${source:Version}\t${Status}\n"


def test_open_findings_on_a_lab_host_equal_the_hosts_own_dpkg_evaluation(
    lab: Lab, lab_fleet: list[LabHost], lab_exec: Exec, tmp_path: Path
) -> None:
    host = lab_fleet[-1]
    archive = build_zipapp(tmp_path / "patchday-agent.pyz")
    import_osv_feed()
    try:
        lab_exec(host, ["apt-get", "update", "-qq"], timeout=300)
        lab_exec(host, ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "-t", "bookworm", *BEHIND])
        (host.root_dir / AGENT.lstrip("/")).write_bytes(archive.read_bytes())
        inventory = json.loads(lab_exec(host, ["python3", AGENT, "collect"], timeout=300).stdout)
        stored = store_document(SYSTEM_ACTOR, inventory, mode=ManagementMode.AGENT)
        import_tracker_lists()

        binaries = binaries_of_dpkg_query(lab_exec(host, ["dpkg-query", "-W", "-f", DPKG_QUERY_FORMAT]).stdout)
        excluded: Counter[str] = Counter()
        evaluation = evaluate(
            binaries, debian_entries(excluded), Dpkg(lambda argv: lab_exec(host, argv).stdout), excluded
        )
    finally:
        lab.reset(host)  # unpatched and without the extra packages again for the next test

    assert stored.host.ecosystem == ECOSYSTEM
    found = open_findings_of(stored.host.name)
    print(summary(stored.host.name, found, evaluation))  # shown with -s or -rP
    assert not disagreements(stored.host.name, found, evaluation), disagreements(stored.host.name, found, evaluation)
    assert {source for _, source, _ in evaluation.expected} >= {"nss", "python-httplib2"}, evaluation.expected
    from patchday.findings.models import Finding as LedgerFinding

    for finding in LedgerFinding.objects.filter(host=stored.host, status="open"):  # priority, explanation, due date
        assert finding.priority_score is not None, finding
        assert finding.priority_decision, finding
        assert finding.priority_explanation, finding
        assert finding.due_date is not None, finding
