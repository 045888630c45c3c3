"""Imports into the fleet through the API and the CLI: hosts CSV (dry run, then apply), SBOMs as a host
or an application asset (matched like any host), osquery results, and hostile files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from patchday.audit.models import AuditRecord
from patchday.core.roles import Role
from patchday.inventory.models import Host, HostGroup
from tests.conftest import ApiClient

IMPORTS = Path(__file__).resolve().parents[1] / "fixtures" / "imports"
CSV = b"""name,criticality,exposure,environment,owner,tags,groups
web-1,1,internet-facing,prod,payments team,pci;web,frontends
db-1,mission-critical,internal,prod,dba,pci,
"""

pytestmark = pytest.mark.django_db


def _upload(api: ApiClient, content: bytes, filename: str, **form: str):  # type: ignore[no-untyped-def]
    data = {"file": SimpleUploadedFile(filename, content), **form}
    return api.client.post("/api/v1/hosts/import", data=data, headers=api.headers)


def test_a_hosts_csv_dry_run_changes_nothing_then_applies(api_as) -> None:  # type: ignore[no-untyped-def]
    operator = api_as(Role.OPERATOR)

    preview = _upload(operator, CSV, "hosts.csv", format="csv", dry_run="true")
    assert preview.status_code == 200, preview.content
    assert [(r["name"], r["action"]) for r in preview.json()["rows"]] == [("web-1", "create"), ("db-1", "create")]
    assert not Host.objects.exists()

    applied = _upload(operator, CSV, "hosts.csv", format="csv")
    again = _upload(operator, CSV, "hosts.csv", format="csv", dry_run="true")

    assert applied.json()["applied"] is True
    web = Host.objects.get(name="web-1")
    assert (web.criticality, web.exposure, web.environment, web.owner) == (
        1,
        "internet-facing",
        "prod",
        "payments team",
    )
    assert sorted(web.tags.values_list("tag", flat=True)) == ["pci", "web"]
    assert list(HostGroup.objects.get(name="frontends").members.values_list("name", flat=True)) == ["web-1"]
    assert Host.objects.get(name="db-1").criticality == 1
    assert {r["action"] for r in again.json()["rows"]} == {"unchanged"}
    assert AuditRecord.objects.filter(action="host.import_csv").count() == 1


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"name,criticality\nweb-1,7\n", "criticality"),
        (b'name,owner\nweb-1,=HYPERLINK("http://x")\n', "owner"),
        (b"name\nweb-1\nWEB-1\n", "WEB-1"),
        (b"name,owner\nweb-1,\xff\xfe\n", "UTF-8"),
        (b"owner\nnobody\n", "name"),
    ],
)
def test_a_bad_csv_changes_nothing_and_names_the_problem(admin_api: ApiClient, content: bytes, fragment: str) -> None:
    answer = _upload(admin_api, content, "hosts.csv", format="csv")

    assert answer.status_code == 422
    assert fragment in answer.json()["error"]["message"]
    assert not Host.objects.exists()


def test_a_host_sbom_is_stored_as_a_host_with_its_os_packages(admin_api: ApiClient) -> None:
    content = (IMPORTS / "syft-1.18.1-debian12-rootfs.cdx-1.6.json").read_bytes()

    answer = _upload(admin_api, content, "rootfs.cdx.json", format="sbom", name="image-1")

    assert answer.status_code == 200, answer.content
    host = Host.objects.get(name="image-1")
    assert (host.kind, host.management_mode, host.ecosystem) == ("host", "import", "Debian:12")
    assert host.packages.count() >= 10


def test_an_application_sbom_is_an_asset_with_its_components(admin_api: ApiClient) -> None:
    content = (IMPORTS / "cyclonedx-php-composer-laravel.cdx-1.4.trimmed.json").read_bytes()

    answer = _upload(admin_api, content, "laravel.cdx.json", format="sbom")

    assert answer.status_code == 200, answer.content
    asset = Host.objects.get(name=answer.json()["hosts"][0]["host_name"])
    assert asset.kind == "application"
    ecosystems = set(asset.packages.values_list("package_version__ecosystem", flat=True))
    assert ecosystems
    assert "" not in ecosystems


def test_osquery_results_become_hosts(admin_api: ApiClient) -> None:
    content = (IMPORTS / "osqueryd-results-two-hosts.log").read_bytes()

    answer = _upload(admin_api, content, "osqueryd.results.log", format="osquery")

    assert answer.status_code == 200, answer.content
    assert len(answer.json()["hosts"]) == 2
    assert Host.objects.filter(management_mode="import").count() == 2


def test_truncated_sbom_is_refused_and_stores_nothing(admin_api: ApiClient) -> None:
    content = (IMPORTS / "syft-1.18.1-debian12-rootfs.cdx-1.6.json").read_bytes()[:5000]

    answer = _upload(admin_api, content, "broken.json", format="sbom")

    assert answer.status_code == 422
    assert not Host.objects.exists()


def test_viewers_cannot_import(api_as) -> None:  # type: ignore[no-untyped-def]
    answer = _upload(api_as(Role.VIEWER), CSV, "hosts.csv", format="csv")

    assert answer.status_code == 403
    assert not Host.objects.exists()


def test_the_cli_previews_and_imports_a_csv(tmp_path: Path, child_env: dict[str, str]) -> None:
    path = tmp_path / "hosts.csv"
    path.write_bytes(CSV)
    command = [sys.executable, "-m", "patchday.cli.main", "hosts", "import", str(path)]

    preview = subprocess.run([*command, "--dry-run"], env=child_env, capture_output=True, text=True, check=False)
    assert preview.returncode == 0, preview.stderr
    assert "would change: 2 created" in preview.stdout
    assert not Host.objects.exists()

    applied = subprocess.run(command, env=child_env, capture_output=True, text=True, check=False)
    assert applied.returncode == 0, applied.stderr
    listed = subprocess.run(
        [sys.executable, "-m", "patchday.cli.main", "hosts", "list", "--tag", "pci", "-o", "csv"],
        env=child_env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    assert [line.split(",")[0] for line in listed.stdout.splitlines()[1:]] == ["db-1", "web-1"]
