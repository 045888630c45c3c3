"""The auditor's evidence pack in a real browser: sign in, open Evidence, download the PCI DSS pack with the
button, then open the zip and check every file against its manifest."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from patchday.core.roles import Role
from tests.e2e.conftest import Seeded, sign_in
from tests.e2e.test_findings import seed_findings

pytestmark = pytest.mark.e2e


def test_an_auditor_downloads_the_pci_dss_evidence_pack(seeded: Seeded, page: Page, tmp_path: Path) -> None:
    seed_findings()
    password = seeded.user("audrey", Role.AUDITOR)
    today = timezone.now().date()
    sign_in(page, "audrey", password)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Evidence").click()
    expect(page.get_by_role("heading", name="Evidence packs", level=1)).to_be_visible()
    page.get_by_label("Framework", exact=True).select_option(label="PCI DSS v4.0")
    page.get_by_label("From", exact=True).fill(str(today - timedelta(days=89)))
    page.get_by_label("To", exact=True).fill(str(today))
    page.screenshot(path=tmp_path / "evidence-form.png", full_page=True)
    with page.expect_download(timeout=60_000) as started:
        page.get_by_role("button", name="Download evidence pack").click()
    download = started.value
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)

    assert download.suggested_filename == f"patchday-evidence-pci-dss-{today - timedelta(days=89)}-{today}.zip"
    with zipfile.ZipFile(io.BytesIO(saved.read_bytes())) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    manifest = json.loads(files["manifest.json"])
    assert (manifest["framework"], manifest["generated_by"]) == ("pci-dss", "audrey")
    listed = {entry["name"]: entry["sha256"] for entry in manifest["files"]}
    assert set(listed) == set(files) - {"manifest.json", "SHA256SUMS"}
    assert all(hashlib.sha256(files[name]).hexdigest() == digest for name, digest in listed.items())
    assert files["summary.pdf"].startswith(b"%PDF")
    assert len(files["findings.csv"].decode().splitlines()) > 1  # the seeded host's findings are in it
    assert json.loads(files["audit-verification.json"])["intact"] is True
