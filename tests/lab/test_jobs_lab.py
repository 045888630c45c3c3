"""Deployment jobs on real Debian 12 lab hosts: the agent zipapp's job runner deploys security updates at exact
versions with real apt, keeps the previous package files, rolls back to exactly the previous versions (also after
a maintainer script broke the upgrade half-way), and refuses a hostile spec without touching the host."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import pytest

from patchday.agent.build import build_zipapp
from patchday.agent.jobs import zipapp_argv
from tests.lab.conftest import timings
from tests.lab.fleet import Lab, LabHost

pytestmark = [pytest.mark.lab]

Exec = Callable[..., CompletedProcess[str]]
PYZ = "/root/patchday-agent.pyz"
UPGRADABLE = re.compile(r"^(?P<name>[^/\s]+)/(?P<suites>\S+) (?P<candidate>\S+) (?P<arch>\S+) \[upgradable from: ")
# Libraries the lab host itself runs on (python3, apt, sshd, PAM): downgrading them in a test proves nothing more.
AVOID = ("libc6", "libssl", "libpython", "libapt", "libpam", "libsystemd", "libudev", "libgcc", "libstdc++", "libcrypt")


@pytest.fixture(scope="module")
def pyz(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return build_zipapp(tmp_path_factory.mktemp("pyz") / "patchday-agent.pyz").read_bytes()


def _dpkg(lab_exec: Exec, host: LabHost) -> dict[str, str]:
    """package -> version of every installed package, as dpkg says inside the host."""
    out = lab_exec(host, ["dpkg-query", "-W", "-f", "${Package}\t${Version}\t${Status}\n"]).stdout
    rows = [line.split("\t") for line in out.splitlines()]
    return {name: version for name, version, status in rows if status.endswith(" installed")}


def _pick_targets(lab_exec: Exec, host: LabHost, count: int = 2) -> list[tuple[str, str, str]]:
    """(name, candidate, arch) of the `count` smallest security-updated libraries that ship no prerm.

    Deterministic for a given archive state: security upgrades only, libraries the host does not run
    on, ranked by the candidate's download size, then name.
    """
    listing = lab_exec(host, ["apt", "list", "--upgradable"], env={"LC_ALL": "C"}).stdout
    found = []
    for line in listing.splitlines():
        m = UPGRADABLE.match(line)
        if m and "-security" in m["suites"] and m["name"].startswith("lib") and not m["name"].startswith(AVOID):
            info = host.root_dir / "var/lib/dpkg/info"
            if not (info / f"{m['name']}.prerm").exists() and not (info / f"{m['name']}:{m['arch']}.prerm").exists():
                found.append((m["name"], m["candidate"], m["arch"]))
    assert len(found) >= count, f"{host.name}: not enough security updates to deploy: {listing}"
    shown = lab_exec(host, ["apt-cache", "show", "--no-all-versions", "--", *(f"{n}={v}" for n, v, _ in found)]).stdout
    sizes = {}
    for stanza in shown.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line and not line.startswith(" "))
        if "Package" in fields:
            sizes[fields["Package"]] = int(fields.get("Size", "0"))
    return sorted(found, key=lambda t: (sizes.get(t[0], 1 << 40), t[0]))[:count]


def _run_job(lab_exec: Exec, host: LabHost, pyz: bytes, spec: dict[str, Any]) -> tuple[int, dict[str, Any], float]:
    """Run the job runner of the agent zipapp inside the host, the spec on stdin: (exit status, result, seconds)."""
    target = host.root_dir / PYZ.lstrip("/")
    if not target.exists():
        target.write_bytes(pyz)
    started = time.monotonic()
    done = lab_exec(host, zipapp_argv(PYZ), input=json.dumps(spec), check=False, timeout=600)
    seconds = time.monotonic() - started
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout), seconds


def _rollback_spec(job_id: int, of: dict[str, Any]) -> dict[str, Any]:
    restore = [{"name": n, "version": s["version"], "arch": s["arch"]} for n, s in sorted(of["before"].items())]
    return {"job_id": job_id, "kind": "rollback", "manager": "apt", "rollback_of": of["job_id"], "restore": restore}


def _deploy_spec(job_id: int, targets: list[tuple[str, str, str]]) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "kind": "deploy",
        "manager": "apt",
        "targets": [{"name": n, "version": v} for n, v, _ in targets],
        "reboot": "never",
        "pre_scripts": [{"name": "check-dpkg", "argv": ["dpkg", "--audit"], "timeout": 60}],
        "health_checks": [{"name": "python", "argv": ["python3", "-c", "import pyexpat, lzma"], "timeout": 60}],
        "step_timeout": 300,
    }


def _failure(result: dict[str, Any]) -> str:
    return (
        json.dumps({k: result[k] for k in ("status", "error", "before", "after")})
        + "\n"
        + "\n".join(f"{s['name']} {s['exit_code']}: {s['stderr'][-500:]}" for s in result["steps"])
    )


def test_a_deploy_at_exact_versions_and_its_rollback_leave_exactly_the_previous_versions(
    lab: Lab, lab_fleet: list[LabHost], lab_exec: Exec, pyz: bytes
) -> None:
    host = lab_fleet[0]
    try:
        started = time.monotonic()
        lab_exec(host, ["apt-get", "update", "-qq"], timeout=300)
        targets = _pick_targets(lab_exec, host)
        print(f"{host.name}: deploying {targets}")  # shown with -rP: which updates the archive offered today
        original = _dpkg(lab_exec, host)

        code, deployed, seconds = _run_job(lab_exec, host, pyz, _deploy_spec(101, targets))
        timings["jobs: deploy"] = round(seconds, 1)
        assert (code, deployed["status"]) == (0, "succeeded"), _failure(deployed)
        now = _dpkg(lab_exec, host)
        for name, candidate, _ in targets:
            assert deployed["after"][name]["version"] == candidate == now[name]
            assert deployed["before"][name]["version"] == original[name]
        assert {
            f"/var/lib/patchday/jobs/101/{n}_{original[n].replace(':', '%3a')}_{a}.deb" for n, _, a in targets
        } <= set(deployed["kept_files"])
        for path in deployed["kept_files"]:
            assert (host.root_dir / path.lstrip("/")).is_file()
        manifest = json.loads((host.root_dir / "var/lib/patchday/jobs/101/manifest.json").read_text())
        assert {n: p["version"] for n, p in manifest["packages"].items()} == {
            n: s["version"] for n, s in deployed["before"].items()
        }
        assert deployed["health"] == [{"name": "python", "ok": True, "detail": "exit 0"}]

        code, rolled_back, seconds = _run_job(lab_exec, host, pyz, _rollback_spec(102, deployed))
        timings["jobs: rollback"] = round(seconds, 1)
        assert (code, rolled_back["status"]) == (0, "succeeded"), _failure(rolled_back)
        assert _dpkg(lab_exec, host) == original, "the rollback must leave every package exactly as before"
        timings["jobs: deploy + rollback test"] = round(time.monotonic() - started, 1)
    finally:
        lab.reset(host)


def test_an_upgrade_broken_by_a_maintainer_script_fails_at_install_and_rolls_back_exactly(
    lab: Lab, lab_fleet: list[LabHost], lab_exec: Exec, pyz: bytes
) -> None:
    host = lab_fleet[1]
    try:
        started = time.monotonic()
        lab_exec(host, ["apt-get", "update", "-qq"], timeout=300)
        targets = _pick_targets(lab_exec, host)
        broken, _, arch = targets[0]
        print(f"{host.name}: deploying {targets}, {broken}'s old prerm fails")
        # The old prerm fails on "upgrade" and the new version ships none for "failed-upgrade": dpkg gives up.
        info = host.root_dir / "var/lib/dpkg/info"
        prefix = f"{broken}:{arch}" if (info / f"{broken}:{arch}.list").exists() else broken
        prerm = info / f"{prefix}.prerm"
        prerm.write_text("#!/bin/sh\nexit 1\n")
        prerm.chmod(0o755)
        original = _dpkg(lab_exec, host)

        code, deployed, _ = _run_job(lab_exec, host, pyz, _deploy_spec(201, targets))
        assert (code, deployed["status"]) == (0, "failed"), _failure(deployed)
        assert deployed["error"].startswith("step install failed: apt-get exited with 100"), deployed["error"]
        assert [s["name"] for s in deployed["steps"]][-2:] == ["install", "installed-after"]
        assert deployed["after"][broken]["version"] == original[broken]
        assert _dpkg(lab_exec, host)[broken] == original[broken]

        code, rolled_back, _ = _run_job(lab_exec, host, pyz, _rollback_spec(202, deployed))
        assert (code, rolled_back["status"]) == (0, "succeeded"), _failure(rolled_back)
        assert _dpkg(lab_exec, host) == original, "the rollback must leave every package exactly as before"
        timings["jobs: broken upgrade + rollback test"] = round(time.monotonic() - started, 1)
    finally:
        lab.reset(host)


def test_a_hostile_spec_exits_2_and_changes_nothing(lab_fleet: list[LabHost], lab_exec: Exec, pyz: bytes) -> None:
    host = lab_fleet[2]
    original = _dpkg(lab_exec, host)
    for version in ("1.0;reboot", "$(touch /tmp/pwned)", "-oAPT::Get::AllowUnauthenticated=1"):
        spec = {
            "job_id": 301,
            "kind": "deploy",
            "manager": "apt",
            "targets": [{"name": "libexpat1", "version": version}],
        }
        code, answer, _ = _run_job(lab_exec, host, pyz, spec)
        assert code == 2
        assert answer["status"] == "invalid"
        assert version in answer["error"]
    assert _dpkg(lab_exec, host) == original
    assert not (host.root_dir / "var/lib/patchday/jobs").exists()
    assert not (host.root_dir / "tmp/pwned").exists()
    assert not Path("/tmp/pwned").exists()  # noqa: S108 - the file a shell would have made
