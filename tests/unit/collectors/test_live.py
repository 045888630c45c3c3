"""collect() on this machine against the package manager's own answers, and the entry point run as the agent runs it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from patchday.collectors.inventory import collect

SRC = Path(__file__).resolve().parents[3] / "src"
needs_dpkg = pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="not a dpkg host")


@pytest.mark.slow
@needs_dpkg
def test_collect_on_this_host_matches_dpkg_query_and_uname() -> None:
    document = collect("/")
    listed = subprocess.run(
        ["dpkg-query", "-W", "-f", "${db:Status-Status}\\t${Package}\\t${Version}\\t${Architecture}\\n"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "LC_ALL": "C"},
    ).stdout
    expected = {
        (name, version, arch)
        for status, name, version, arch in (line.split("\t") for line in listed.splitlines())
        if status == "installed"
    }
    actual = {(p["name"], p["version"], p["arch"]) for p in document["packages"] if p["manager"] == "dpkg"}
    assert actual == expected
    assert document["kernel"]["running"] == os.uname().release
    assert document["architecture"] == os.uname().machine
    machine_id = Path("/etc/machine-id").read_text().strip()
    assert document["machine_id"] == machine_id
    upgradable = subprocess.run(
        ["apt", "list", "--upgradable"], capture_output=True, text=True, check=False, env={**os.environ, "LC_ALL": "C"}
    ).stdout
    expected_names = {line.split("/")[0] for line in upgradable.splitlines() if "[upgradable from:" in line}
    pending_names = {u["name"] for u in document["pending_updates"] if u["installed"]}
    assert pending_names == expected_names
    assert not [e for e in document["errors"] if e["collector"] in ("dpkg", "apt", "os-release", "machine-id")]


def _zip_of_collectors(tmp_path: Path) -> Path:
    bundle = tmp_path / "collectors.zip"
    with zipfile.ZipFile(bundle, "w") as archive:
        archive.writestr("patchday/__init__.py", '"""patchday collectors."""\n')
        for path in sorted((SRC / "patchday" / "collectors").glob("*.py")):
            archive.write(path, f"patchday/collectors/{path.name}")
    return bundle


def _python39() -> str | None:
    for candidate in ("python3.9",):
        found = shutil.which(candidate)
        if found and subprocess.run([found, "--version"], capture_output=True, check=False).returncode == 0:
            return found
    pyenv = Path.home() / ".pyenv/versions"
    for version in sorted(pyenv.glob("3.9.*")) if pyenv.is_dir() else []:
        if (version / "bin/python3.9").exists():
            return str(version / "bin/python3.9")
    return None


@pytest.mark.slow
@pytest.mark.parametrize("python", ["current", "3.9"])
def test_the_entry_point_runs_from_a_zip(tmp_path: Path, python: str) -> None:
    interpreter = sys.executable if python == "current" else _python39()
    if interpreter is None:
        pytest.skip("no Python 3.9 interpreter on this machine")
    bundle = _zip_of_collectors(tmp_path)
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/machine-id").write_text("4c4c4544004e3510804fc2c04f4b4d32\n")
    done = subprocess.run(
        [
            interpreter,
            "-I",
            "-c",
            "import sys, runpy; sys.path.insert(0, sys.argv[1]); sys.argv = ['x', '--root', sys.argv[2]];"
            " runpy.run_module('patchday.collectors', run_name='__main__', alter_sys=True)",
            str(bundle),
            str(root),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["machine_id"] == "4c4c4544004e3510804fc2c04f4b4d32"
    assert document["format"] == 1
