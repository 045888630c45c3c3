"""The agent ships as one deterministic zipapp that runs on Python 3.9+ with nothing but the standard library."""

from __future__ import annotations

import ast
import hashlib
import json
import os
import subprocess
import zipfile
from pathlib import Path

import pytest

from patchday.agent.build import build_zipapp, zipapp_entries

from .conftest import HOST_TOKEN, SECRET, StubServer

AGENT_SRC = Path(__file__).resolve().parents[3] / "src" / "patchday" / "agent"
SYSTEM_PYTHON = "/usr/bin/python3"


@pytest.mark.parametrize("path", sorted(AGENT_SRC.rglob("*.py")), ids=lambda p: p.name)
def test_agent_modules_parse_as_python_3_9(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path), feature_version=(3, 9))
    assert isinstance(tree.body[0], ast.Expr), "every module opens with a docstring"
    assert (
        any(isinstance(node, ast.ImportFrom) and node.module == "__future__" for node in tree.body)
        or path.name == "__init__.py"
    ), "annotations stay strings on 3.9"


@pytest.mark.parametrize("path", sorted(AGENT_SRC.rglob("*.py")), ids=lambda p: p.name)
def test_agent_modules_use_no_3_10_runtime_features(path: Path) -> None:
    """What feature_version cannot see: calls that only 3.10+ accept, and `X | Y` types evaluated at runtime."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = getattr(node.func, "id", getattr(node.func, "attr", ""))
            keywords = {k.arg for k in node.keywords}
            if name == "dataclass" and keywords & {"slots", "kw_only", "match_args"}:
                problems.append(f"line {node.lineno}: dataclass({keywords})")
            if name == "zip" and "strict" in keywords:
                problems.append(f"line {node.lineno}: zip(strict=)")
            if name in ("isinstance", "issubclass") and any(isinstance(a, ast.BinOp) for a in node.args):
                problems.append(f"line {node.lineno}: {name} with X | Y")
        if isinstance(node, ast.Attribute) and node.attr == "UTC" and getattr(node.value, "id", "") == "datetime":
            problems.append(f"line {node.lineno}: datetime.UTC (3.11)")
    assert problems == []


def test_the_zipapp_is_deterministic(tmp_path: Path) -> None:
    first = build_zipapp(tmp_path / "a" / "patchday-agent.pyz")
    second = build_zipapp(tmp_path / "b" / "patchday-agent.pyz")
    assert hashlib.sha256(first.read_bytes()).hexdigest() == hashlib.sha256(second.read_bytes()).hexdigest()
    assert first.read_bytes().startswith(b"#!/usr/bin/env python3\n")
    assert os.stat(first).st_mode & 0o777 == 0o755
    with zipfile.ZipFile(first) as archive:
        infos = archive.infolist()
    names = [info.filename for info in infos]
    assert names == sorted(names)
    assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {info.external_attr >> 16 for info in infos} == {0o100644}


def test_the_zipapp_holds_only_the_agent_and_the_collectors() -> None:
    names = [name for name, _ in zipapp_entries()]
    assert "__main__.py" in names
    assert "patchday/__init__.py" in names
    assert "patchday/agent/cli.py" in names
    assert "patchday/collectors/inventory.py" in names
    assert all(
        name in ("__main__.py", "patchday/__init__.py") or name.startswith(("patchday/agent/", "patchday/collectors/"))
        for name in names
    )
    assert not any("__pycache__" in name or name.endswith(".pyc") for name in names)


@pytest.fixture(scope="module")
def pyz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not Path(SYSTEM_PYTHON).exists():
        pytest.skip(f"{SYSTEM_PYTHON} is needed")
    return build_zipapp(tmp_path_factory.mktemp("pyz") / "patchday-agent.pyz")


def system_python(pyz: Path, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None):  # type: ignore[no-untyped-def]
    """Run the zipapp with the system interpreter, isolated (-I: no PYTHONPATH, no user site), away from the repo."""
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8"}
    return subprocess.run(
        [SYSTEM_PYTHON, "-I", str(pyz), *args],
        env={**base, **(env or {})},
        cwd=cwd or pyz.parent,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_zipapp_collects_with_the_system_python_and_no_django(pyz: Path) -> None:
    check = subprocess.run([SYSTEM_PYTHON, "-I", "-c", "import django"], capture_output=True, check=False)
    assert check.returncode != 0, "Django must not be importable by the system python for this test to mean anything"
    done = system_python(pyz, "collect")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["format"] == 1
    assert {"machine_id", "hostname", "packages", "errors"} <= document.keys()


def test_the_zipapp_enrolls_checks_in_and_reports_status_without_django(
    pyz: Path, stub_server: StubServer, tmp_path: Path
) -> None:
    env = {"PATCHDAY_AGENT_CONFIG": str(tmp_path / "agent.json"), "PATCHDAY_AGENT_STATE_DIR": str(tmp_path / "state")}
    enrolled = system_python(
        pyz, "enroll", "--server", stub_server.url, env={**env, "PATCHDAY_AGENT_ENROLL_SECRET": SECRET}
    )
    assert enrolled.returncode == 0, enrolled.stderr
    assert "enrolled as host" in enrolled.stdout
    once = system_python(pyz, "once", env=env)
    assert once.returncode == 0, once.stderr
    assert "inventory sent" in once.stdout
    put = stub_server.requests[-1]
    assert (put.method, put.path) == ("PUT", "/api/v1/agent/inventory")
    assert put.body["inventory"]["format"] == 1
    assert put.headers["User-Agent"].startswith("patchday-agent/")
    status = system_python(pyz, "status", env=env)
    assert status.returncode == 0, status.stderr
    assert "sequence: 1" in status.stdout
    assert "mode 0600" in status.stdout
    for done in (enrolled, once, status):
        assert HOST_TOKEN not in done.stdout + done.stderr


def test_once_fails_with_status_1_when_the_server_is_down(pyz: Path, tmp_path: Path) -> None:
    (tmp_path / "agent.json").write_text(json.dumps({"server": "http://127.0.0.1:9", "timeout": 2}))
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / "state.json").write_text(json.dumps({"host_id": 7, "host_name": "h1", "host_token": HOST_TOKEN}))
    env = {"PATCHDAY_AGENT_CONFIG": str(tmp_path / "agent.json"), "PATCHDAY_AGENT_STATE_DIR": str(state)}
    done = system_python(pyz, "once", env=env)
    assert done.returncode == 1
    assert "failed" in done.stderr
    assert HOST_TOKEN not in done.stderr
    assert "127.0.0.1:9" in json.loads((state / "state.json").read_text())["last_error"]


def test_the_agent_refuses_plain_http_to_another_host(pyz: Path, tmp_path: Path) -> None:
    env = {"PATCHDAY_AGENT_CONFIG": str(tmp_path / "agent.json"), "PATCHDAY_AGENT_STATE_DIR": str(tmp_path / "s")}
    done = system_python(pyz, "enroll", "--server", "http://patchday.example", "--secret", SECRET, env=env)
    assert done.returncode == 1
    assert "refusing plain http://" in done.stderr
    assert not (tmp_path / "s").exists()


def test_patchday_agent_build_writes_the_same_zipapp(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from patchday.cli.main import app

    result = CliRunner().invoke(app, ["agent", "build", "--output", str(tmp_path / "cli.pyz")])
    assert result.exit_code == 0, result.output
    expected = build_zipapp(tmp_path / "direct.pyz").read_bytes()
    assert (tmp_path / "cli.pyz").read_bytes() == expected
    assert hashlib.sha256(expected).hexdigest() in result.output


def test_inside_the_zipapp_install_finds_the_archive_to_copy(pyz: Path) -> None:
    code = "import sys; from patchday.agent.install import running_archive; print(running_archive())"
    done = subprocess.run(
        [SYSTEM_PYTHON, "-I", "-c", f"import sys; sys.path.insert(0, {str(pyz)!r}); {code}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(pyz)
