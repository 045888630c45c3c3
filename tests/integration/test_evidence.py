"""Evidence packs from a seeded ledger: every file in the manifest with its SHA-256, CSV rows equal to the
database, a PDF naming the framework and its controls, control status from hand-counted findings, an empty
period, bad input, who may download, and the compliance doc naming every control the code knows."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone
from pypdf import PdfReader

from patchday.accounts.models import User
from patchday.audit.models import AuditRecord
from patchday.core.audit import Actor, ActorKind
from patchday.core.roles import Role
from patchday.findings.models import ExceptionState, Finding, FindingStatus, RiskException
from patchday.inventory.models import Collection, Host
from patchday.reports import compliance, evidence
from tests.conftest import SYSTEM_ACTOR, ApiClient

pytestmark = pytest.mark.django_db
DOC = Path(__file__).resolve().parents[2] / "docs" / "compliance.md"
AUDITOR = Actor(ActorKind.USER, "audrey")
PACK_FILES = {
    "summary.pdf", "findings.csv", "exceptions.csv", "rollouts.csv", "jobs.csv", "approvals.csv",
    "audit-verification.json", "metrics.json", "manifest.json", "SHA256SUMS",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Ledger:
    start: date
    end: date
    in_period: set[int]  # finding ids findings.csv must list
    outside: set[int]  # closed before the period, or detected after it


def _finding(host: Host, cve: str, **fields: object) -> Finding:
    now = timezone.now()
    values: dict[str, object] = {
        "ecosystem": "Debian:12", "package": "openssl", "installed_version": "3.0.1", "fixed_version": "3.0.2",
        "first_detected_at": now - timedelta(days=50), "last_detected_at": now, "status_changed_at": now,
        "priority_score": 80, "priority_decision": "Act", "due_date": (now + timedelta(days=5)).date(),
        "sla_policy_version": 1,
    }  # fmt: skip
    values.update(fields)
    return Finding.objects.create(host=host, vulnerability=cve, **values)


def _rollout(host: Host) -> None:
    """A plan on `host`, requested by an operator, approved by an approver, started: one rollout and one job."""
    from patchday.inventory.models import PendingUpdate
    from patchday.rollouts import driver, plans

    operator = Actor(ActorKind.USER, "olga")
    PendingUpdate.objects.create(
        host=host, manager="apt", name="openssl", arch="amd64", installed="3.0.1", candidate="3.0.2",
        security=True, source="openssl", source_version="3.0.2",
    )  # fmt: skip
    plan = plans.create_plan(
        operator, operator.name, "openssl", {"kind": "security"}, {"hosts": [host.name]}, {}, [{"name": "all"}]
    )
    plans.submit(operator, plan.pk)
    plans.decide(SYSTEM_ACTOR, "aaron", plan.pk, True, '=HYPERLINK("x") looks fine')
    driver.start(operator, plan.pk)


@pytest.fixture
def ledger() -> Ledger:
    now = timezone.now()
    today = now.date()
    start, end = today - timedelta(days=60), today
    web = Host.objects.create(name="web-1", created_at=now - timedelta(days=400), exposure="internet-facing")
    db = Host.objects.create(name="=db-1", created_at=now - timedelta(days=400))  # a formula-like name
    for host in (web, db):
        Collection.objects.create(host=host, received_at=now - timedelta(days=1), mode="agent", digest="x",
                                  packages=10, added=0, removed=0, changed=0)  # fmt: skip
    fix = now - timedelta(days=45)
    in_time = _finding(web, "CVE-2025-0001", status=FindingStatus.FIXED, fix_available_since=fix, fix_verified=True,
                       fixed_at=fix + timedelta(days=10), status_changed_at=fix + timedelta(days=10))  # fmt: skip
    late = _finding(db, "CVE-2025-0002", status=FindingStatus.FIXED, fix_available_since=fix,
                    fixed_at=fix + timedelta(days=40), status_changed_at=fix + timedelta(days=40))  # fmt: skip
    still_open = _finding(web, "CVE-2025-0003", fix_available_since=fix, package="-cmd")
    no_fix_date = _finding(db, "CVE-2025-0004", priority_decision="Attend")
    accepted = _finding(db, "CVE-2025-0005", status=FindingStatus.ACCEPTED, fix_available_since=fix)
    low = _finding(web, "CVE-2025-0006", priority_decision="Track", fix_available_since=fix)
    closed_long_ago = _finding(
        web, "CVE-2024-0007", status=FindingStatus.FIXED, first_detected_at=now - timedelta(days=300),
        fixed_at=now - timedelta(days=200), status_changed_at=now - timedelta(days=200),
    )  # fmt: skip
    future = _finding(web, "CVE-2025-0008", first_detected_at=now + timedelta(days=2))
    RiskException.objects.create(
        finding=accepted, justification="compensating control: WAF rule 42", expires_at=now + timedelta(days=30),
        state=ExceptionState.APPROVED, requested_by="olga", requested_at=now - timedelta(days=20),
        decided_by="aaron", decided_at=now - timedelta(days=19),
    )  # fmt: skip
    RiskException.objects.create(
        vulnerability="CVE-2020-0001", justification="long gone and expired", expires_at=now - timedelta(days=100),
        state=ExceptionState.EXPIRED, requested_by="olga", requested_at=now - timedelta(days=300),
    )  # fmt: skip
    _rollout(web)
    in_period = {f.pk for f in (in_time, late, still_open, no_fix_date, accepted, low)}
    return Ledger(start, end, in_period, {closed_long_ago.pk, future.pk})


def _open(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        return {name: archive.read(name) for name in archive.namelist()}


def _rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode())))


def _pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def test_pack_lists_every_file_in_the_manifest_with_its_sha256(ledger: Ledger) -> None:
    name, data = evidence.build_pack("pci-dss", ledger.start, ledger.end, AUDITOR)
    files = _open(data)
    manifest = json.loads(files["manifest.json"])

    assert name == f"patchday-evidence-pci-dss-{ledger.start}-{ledger.end}.zip"
    assert set(files) == PACK_FILES
    assert {entry["name"] for entry in manifest["files"]} == PACK_FILES - {"manifest.json", "SHA256SUMS"}
    for entry in manifest["files"]:
        assert hashlib.sha256(files[entry["name"]]).hexdigest() == entry["sha256"], entry["name"]
        assert len(files[entry["name"]]) == entry["bytes"]
    sums = {
        name: digest for digest, name in (line.split("  ", 1) for line in files["SHA256SUMS"].decode().splitlines())
    }
    assert set(sums) == PACK_FILES - {"SHA256SUMS"}
    assert all(hashlib.sha256(files[n]).hexdigest() == digest for n, digest in sums.items())
    assert (manifest["framework"], manifest["generated_by"]) == ("pci-dss", "audrey")
    assert manifest["period"] == {"from": str(ledger.start), "to": str(ledger.end)}
    verification = json.loads(files["audit-verification.json"])
    assert verification["intact"] is True
    assert verification["checked"] == AuditRecord.objects.count() - 1  # the export's own record came after


def test_csv_rows_equal_the_database(ledger: Ledger) -> None:
    files = _open(evidence.build_pack("pci-dss", ledger.start, ledger.end, AUDITOR)[1])

    findings = _rows(files["findings.csv"])
    assert list(findings[0]) == list(evidence.FINDING_COLUMNS)
    assert {int(row["id"]) for row in findings} == ledger.in_period
    for row in findings:
        f = Finding.objects.select_related("host").get(pk=row["id"])
        expected = {
            "host": evidence.cell(f.host.name), "vulnerability": f.vulnerability, "package": evidence.cell(f.package),
            "status": f.status, "priority_decision": f.priority_decision,
            "first_detected_at": f.first_detected_at.isoformat(),
            "fixed_at": f.fixed_at.isoformat() if f.fixed_at else "", "fix_verified": str(f.fix_verified).lower(),
            "due_date": f.due_date.isoformat() if f.due_date else "", "sla_policy_version": "1",
        }  # fmt: skip
        assert {k: row[k] for k in expected} == expected
    assert {row["host"] for row in findings} == {"web-1", "'=db-1"}  # neutralised: no formula reaches a sheet
    assert "'-cmd" in {row["package"] for row in findings}

    [exception] = _rows(files["exceptions.csv"])  # the expired one ended before the period
    assert (exception["state"], exception["requested_by"], exception["decided_by"]) == ("approved", "olga", "aaron")
    [rollout] = _rows(files["rollouts.csv"])
    assert (rollout["plan_requested_by"], rollout["plan_decided_by"], rollout["plan_name"]) == (
        "olga",
        "aaron",
        "openssl",
    )
    [job] = _rows(files["jobs.csv"])
    assert (job["host"], job["rollout"]) == ("web-1", rollout["id"])
    [approval] = _rows(files["approvals.csv"])
    assert (approval["decision"], approval["by"], approval["plan_requested_by"]) == ("approve", "aaron", "olga")
    assert approval["comment"].startswith("'=HYPERLINK")


def test_pdf_names_the_framework_controls_and_their_status(ledger: Ledger) -> None:
    files = _open(evidence.build_pack("pci-dss", ledger.start, ledger.end, AUDITOR)[1])
    text = _pdf_text(files["summary.pdf"])
    metrics = json.loads(files["metrics.json"])

    assert files["summary.pdf"].startswith(b"%PDF")
    for needle in ("PCI DSS v4.0 evidence pack", "6.3.3", "11.3", "audrey", str(ledger.start), "Key metrics"):
        assert needle in text, needle
    assert "no data for this period" not in text
    # 6.3.3 by hand: Act/Attend findings whose 30 days after the fix ended in the period: in_time (fixed in 10
    # days), late (40), still_open; the accepted one and the one without a fix date are excluded, Track is not urgent.
    urgent = metrics["metrics"][compliance.URGENT_FIXED_30D]
    assert urgent["value"] == pytest.approx(1 / 3)
    assert urgent["excluded_reasons"] == {"no fix availability date": 1, "accepted by an approved exception": 1}
    [pci_633, pci_113] = metrics["controls"]
    assert (pci_633["control"], pci_633["status"]) == ("6.3.3", "not met")
    assert "33.3%" in " ".join(pci_633["measured"])
    assert pci_113["control"] == "11.3"
    assert metrics["metrics"][compliance.HOSTS_ASSESSED_90D]["value"] == 1.0
    assert "not met" in text
    assert "2 excluded" in text  # the exclusions are in the PDF too


def test_a_period_without_data_makes_a_valid_pack_that_says_so(ledger: Ledger) -> None:
    files = _open(evidence.build_pack("hipaa", date(2001, 1, 1), date(2001, 3, 31), AUDITOR)[1])

    assert set(files) == PACK_FILES
    assert all(len(_rows(files[name])) == 0 for name in PACK_FILES if name.endswith(".csv"))
    assert "There is no data for this period" in _pdf_text(files["summary.pdf"])
    assert {c["status"] for c in json.loads(files["metrics.json"])["controls"]} <= {"no data", "not met", "met"}


def test_the_export_is_audited_with_the_manifest_digest(ledger: Ledger) -> None:
    buffer = io.BytesIO()
    pack = evidence.write_pack("nist", ledger.start, ledger.end, AUDITOR, buffer)
    record = AuditRecord.objects.filter(action="report.evidence").get()
    changes = json.loads(record.changes)
    manifest = _open(buffer.getvalue())["manifest.json"]

    assert (record.actor_name, record.object_id) == ("audrey", pack.filename)
    assert changes["framework"] == "nist"
    assert changes["from"] == str(ledger.start)
    assert changes["manifest_sha256"] == hashlib.sha256(manifest).hexdigest() == pack.manifest_sha256
    assert set(changes["statuses"]) == {"SI-2", "RA-5", "SP800-40r4"}


def test_auditors_download_packs_and_operators_may_not(api_as: Callable[[Role], ApiClient], ledger: Ledger) -> None:
    body = {"framework": "pci-dss", "from": str(ledger.start), "to": str(ledger.end)}
    answer = api_as(Role.AUDITOR).post("reports/evidence", json=body)
    refused = api_as(Role.OPERATOR).post("reports/evidence", json=body)

    assert answer.status_code == 200
    assert answer["Content-Type"] == "application/zip"
    assert (
        answer["Content-Disposition"]
        == f'attachment; filename="patchday-evidence-pci-dss-{ledger.start}-{ledger.end}.zip"'
    )
    files = _open(b"".join(answer.streaming_content))
    assert hashlib.sha256(files["manifest.json"]).hexdigest() == answer["X-Patchday-Manifest-SHA256"]
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "forbidden"
    assert AuditRecord.objects.filter(action="report.evidence").count() == 1


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"framework": "sox", "from": "2025-01-01", "to": "2025-03-31"}, "framework", "unknown framework 'sox'"),
        ({"framework": "pci-dss", "from": "2025-03-31", "to": "2025-01-01"}, "to", "ends (2025-01-01) before"),
        ({"framework": "pci-dss", "from": "2025-02-30", "to": "2025-03-31"}, "from", ""),
    ],
)
def test_bad_input_is_422_with_a_clear_message(
    api_as: Callable[[Role], ApiClient], body: dict[str, str], field: str, message: str
) -> None:
    answer = api_as(Role.AUDITOR).post("reports/evidence", json=body)

    assert answer.status_code == 422, answer.content
    error = answer.json()["error"]
    assert error["code"] == "invalid_input"
    assert message in error["message"]
    assert [d["field"] for d in error["details"]] == [field]
    assert not AuditRecord.objects.filter(action="report.evidence").exists()


def test_the_dashboard_form_downloads_a_pack(make_user: Callable[..., User], ledger: Ledger) -> None:
    auditor, operator = Client(), Client()
    auditor.force_login(make_user(Role.AUDITOR))
    operator.force_login(make_user(Role.OPERATOR))
    form = {"framework": "cis", "start": str(ledger.start), "end": str(ledger.end)}

    page = auditor.get("/reports/evidence/")
    download = auditor.post("/reports/evidence/", form)
    backwards = auditor.post("/reports/evidence/", {**form, "start": str(ledger.end), "end": str(ledger.start)})

    assert page.status_code == 200
    assert b"Download evidence pack" in page.content
    assert download.status_code == 200
    assert download["Content-Type"] == "application/zip"
    assert set(_open(b"".join(download.streaming_content))) == PACK_FILES  # type: ignore[attr-defined]
    assert backwards.status_code == 400
    assert b"before it starts" in backwards.content
    assert operator.get("/reports/evidence/").status_code == 403


def test_the_cli_writes_the_pack_and_refuses_bad_input(ledger: Ledger, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from patchday.cli.reports import report_app

    runner = CliRunner()
    target = tmp_path / "pack.zip"
    made = runner.invoke(
        report_app,
        ["evidence", "--framework", "iso27001", "--from", str(ledger.start), "--to", str(ledger.end),
         "--output", str(target)],
    )  # fmt: skip
    backwards = runner.invoke(
        report_app, ["evidence", "--framework", "gdpr", "--from", "2025-02-01", "--to", "2025-01-01"]
    )
    malformed = runner.invoke(
        report_app, ["evidence", "--framework", "gdpr", "--from", "02/01/2025", "--to", "2025-01-01"]
    )

    assert made.exit_code == 0, made.output
    assert "A.8.8" in made.output
    assert set(_open(target.read_bytes())) == PACK_FILES
    assert not list(tmp_path.glob("*.partial"))
    assert "before it starts" in str(backwards.exception)
    assert malformed.exit_code == 2
    assert "is not a date" in malformed.output


# -- the mapping and its document --------------------------------------------------------------------------


def test_every_control_in_code_is_documented_with_its_rules() -> None:
    text = DOC.read_text(encoding="utf-8")

    for chosen in compliance.FRAMEWORKS.values():
        assert f"`{chosen.key}`" in text, chosen.key
        for control in chosen.controls:
            assert re.search(rf"^###+ {re.escape(control.id)} ", text, re.MULTILINE), control.id
            for rule in control.rules:
                assert rule.describe() in text, f"{control.id}: {rule.describe()}"
            for item in control.evidence:
                assert f"`{item.source}`" in text or item.source in text, f"{control.id}: {item.source}"


def test_status_is_the_worst_judged_rule_and_nothing_judged_is_no_data() -> None:
    from patchday.reports.metrics import Metric

    def ratio(name: str, value: float | None) -> Metric:
        return Metric(name, name, value, "ratio", {}, 0, {})

    ra5 = next(c for c in compliance.FRAMEWORKS["nist"].controls if c.id == "RA-5")
    both = {
        compliance.HOSTS_ASSESSED_90D: ratio(compliance.HOSTS_ASSESSED_90D, 1.0),
        "sla_compliance": ratio("sla_compliance", 0.85),
    }

    assert ra5.assess(both).status is compliance.Status.PARTIALLY_MET
    assert ra5.assess({**both, "sla_compliance": ratio("sla_compliance", 0.5)}).status is compliance.Status.NOT_MET
    assert ra5.assess({**both, "sla_compliance": ratio("sla_compliance", None)}).status is compliance.Status.MET
    assert ra5.assess({}).status is compliance.Status.NO_DATA
