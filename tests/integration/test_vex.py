"""VEX in the ledger through the API: an imported not_affected statement suppresses the findings it covers
(and future ones), a user's analysis needs another approver, the fleet's statements export as OpenVEX,
and a document that does not fit is refused whole."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from patchday.advisories import feed_imports
from patchday.core.roles import Role
from patchday.findings.models import Finding, FindingStatus, VexRecord
from patchday.inventory import ingest
from tests.conftest import SYSTEM_ACTOR, ApiClient
from tests.support.documents import document
from tests.support.fleet import debian_advisories, real_host

pytestmark = pytest.mark.django_db
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "vex"


@pytest.fixture
def finding() -> Finding:
    feed_imports.store_advisories(SYSTEM_ACTOR, list(debian_advisories()), "debian-bookworm-osv")
    ingest.store_document(SYSTEM_ACTOR, document(real_host()), mode="agent")
    found = Finding.objects.filter(status=FindingStatus.OPEN, ecosystem="Debian:12").first()
    assert found is not None
    return found


def _openvex(finding: Finding, version: str | None) -> bytes:
    product = f"pkg:deb/debian/{finding.package}" + (f"@{version}" if version else "") + "?distro=debian-12"
    return json.dumps(
        {
            "@context": "https://openvex.dev/ns/v0.2.0",
            "@id": "https://example.net/vex/1",
            "author": "Example Security",
            "timestamp": "2026-11-01T00:00:00Z",
            "version": 1,
            "statements": [
                {
                    "vulnerability": {"name": finding.vulnerability},
                    "products": [{"@id": product}],
                    "status": "not_affected",
                    "justification": "vulnerable_code_not_in_execute_path",
                }
            ],
        }
    ).encode()


def _upload(api: ApiClient, content: bytes, name: str = "vex.json"):  # type: ignore[no-untyped-def]
    return api.client.post("/api/v1/vex", data={"file": SimpleUploadedFile(name, content)}, headers=api.headers)


def test_an_imported_statement_suppresses_its_findings_now_and_later(api_as, finding: Finding) -> None:  # type: ignore[no-untyped-def]
    answer = _upload(api_as(Role.APPROVER), _openvex(finding, None))

    assert answer.status_code == 200, answer.content
    assert answer.json()["recorded"] == 1
    assert answer.json()["suppressed"] >= 1
    finding.refresh_from_db()
    assert finding.status == FindingStatus.NOT_AFFECTED
    assert "VEX not_affected" in finding.events.last().reason  # type: ignore[union-attr]

    ingest.store_document(SYSTEM_ACTOR, document(real_host(), hostname="web-2", machine_id="2" * 32), mode="agent")
    later = Finding.objects.get(host__name="web-2", vulnerability=finding.vulnerability, package=finding.package)
    assert later.status == FindingStatus.NOT_AFFECTED


def test_a_statement_for_another_version_suppresses_nothing(api_as, finding: Finding) -> None:  # type: ignore[no-untyped-def]
    answer = _upload(api_as(Role.APPROVER), _openvex(finding, "0.0.1-1"))

    assert answer.json()["suppressed"] == 0
    finding.refresh_from_db()
    assert finding.status == FindingStatus.OPEN


def test_a_document_that_does_not_fit_is_refused_whole(api_as, finding: Finding) -> None:  # type: ignore[no-untyped-def]
    good = json.loads(_openvex(finding, None))
    good["statements"].append(
        {"vulnerability": {"name": "CVE-2024-0001"}, "products": [{"@id": "not-a-purl"}], "status": "not_affected",
         "justification": "component_not_present"}
    )  # fmt: skip

    answer = _upload(api_as(Role.APPROVER), json.dumps(good).encode())

    assert answer.status_code == 422
    assert "statement" in answer.json()["error"]["message"]
    assert not VexRecord.objects.exists()
    finding.refresh_from_db()
    assert finding.status == FindingStatus.OPEN


def test_operators_cannot_import_vex(api_as, finding: Finding) -> None:  # type: ignore[no-untyped-def]
    assert _upload(api_as(Role.OPERATOR), _openvex(finding, None)).status_code == 403


def test_an_analysis_needs_another_approver_then_exports_as_openvex(
    api_as, make_user, token_for, finding: Finding
) -> None:  # type: ignore[no-untyped-def]
    author = ApiClient(token_for(make_user(Role.ADMIN)))
    proposed = author.post(
        f"findings/{finding.pk}/not-affected",
        json={"justification": "vulnerable_code_not_present", "impact_statement": "the module is not built"},
    )
    assert proposed.status_code == 201, proposed.content
    record_id = proposed.json()["id"]
    finding.refresh_from_db()
    assert finding.status == FindingStatus.OPEN

    assert author.post(f"vex/{record_id}/confirm").status_code == 403
    confirmed = api_as(Role.APPROVER).post(f"vex/{record_id}/confirm")
    exported = api_as(Role.VIEWER).get("vex/export").json()

    assert confirmed.status_code == 200
    finding.refresh_from_db()
    assert finding.status == FindingStatus.NOT_AFFECTED
    [statement] = exported["statements"]
    assert statement["vulnerability"]["name"] == finding.vulnerability
    assert statement["status"] == "not_affected"
    assert finding.package in statement["products"][0]["@id"]


def test_a_real_openvex_document_parses_and_records_its_statements(api_as, finding: Finding) -> None:  # type: ignore[no-untyped-def]
    samples = sorted(p for p in FIXTURES.glob("*.json") if "schema" not in p.name)
    results = [_upload(api_as(Role.APPROVER), p.read_bytes(), p.name) for p in samples]

    assert any(r.status_code == 200 and r.json()["statements"] > 0 for r in results)
    assert all(r.status_code in (200, 422) for r in results)


def test_the_cli_exports_what_the_cli_imported(finding: Finding, child_env: dict[str, str], tmp_path: Path) -> None:
    import subprocess
    import sys

    vex_file = tmp_path / "in.openvex.json"
    vex_file.write_bytes(_openvex(finding, None))
    command = [sys.executable, "-m", "patchday.cli.main", "vex"]

    imported = subprocess.run([*command, "import", str(vex_file)], env=child_env, capture_output=True, text=True)
    exported = subprocess.run([*command, "export"], env=child_env, capture_output=True, text=True)

    assert imported.returncode == 0, imported.stderr
    assert "1 not_affected in force" in imported.stdout
    assert exported.returncode == 0, exported.stderr
    assert json.loads(exported.stdout)["statements"][0]["vulnerability"]["name"] == finding.vulnerability


def test_the_browser_flow_proposes_confirms_and_imports(finding: Finding, make_user) -> None:  # type: ignore[no-untyped-def]
    from django.test import Client

    operator, approver, viewer = Client(), Client(), Client()
    operator.force_login(make_user(Role.OPERATOR))
    approver.force_login(make_user(Role.APPROVER))
    viewer.force_login(make_user(Role.VIEWER))

    proposed = operator.post(
        f"/findings/{finding.pk}/not-affected/",
        {"justification": "vulnerable_code_not_in_execute_path", "impact_statement": "<i>not reachable</i>"},
    )
    record = VexRecord.objects.get()
    page = approver.get("/findings/vex/").content.decode()
    confirmed = approver.post(f"/findings/vex/{record.pk}/confirm/")
    bad = approver.post("/findings/vex/import/", {"file": SimpleUploadedFile("bad.json", b"{not json")})

    assert proposed.status_code == 302
    assert "&lt;i&gt;not reachable&lt;/i&gt;" in page
    assert confirmed.status_code == 302
    finding.refresh_from_db()
    assert finding.status == FindingStatus.NOT_AFFECTED
    assert VexRecord.objects.count() == 1  # the refused document added nothing
    assert bad.status_code == 302
    assert viewer.post(f"/findings/vex/{record.pk}/confirm/").status_code == 403
    assert "Import a VEX document" not in viewer.get("/findings/vex/").content.decode()
