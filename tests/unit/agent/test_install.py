"""`patchday-agent install` into a temporary root: files, modes, the unit, systemctl calls, re-installs."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest

from patchday.agent.config import StateStore, load_config
from patchday.agent.errors import ConfigError, ServerRefused
from patchday.agent.install import InstallPaths, install, running_archive, systemd_unit

from .conftest import HOST_TOKEN, SECRET, StubServer


@pytest.fixture
def paths(tmp_path: Path) -> InstallPaths:
    return InstallPaths(
        pyz=tmp_path / "usr/local/lib/patchday/patchday-agent.pyz",
        unit=tmp_path / "etc/systemd/system/patchday-agent.service",
        config=tmp_path / "etc/patchday-agent/agent.json",
        state_dir=tmp_path / "var/lib/patchday-agent",
        ca_file=tmp_path / "etc/patchday-agent/ca.pem",
    )


@pytest.fixture
def source_pyz(tmp_path: Path) -> Path:
    path = tmp_path / "download" / "patchday-agent.pyz"
    path.parent.mkdir()
    path.write_bytes(b"#!/usr/bin/env python3\nPK-not-really")
    return path


def run_install(
    stub: StubServer, paths: InstallPaths, source: Path, secret: str = SECRET, **options: Any
) -> tuple[list[list[str]], list[str]]:
    """install() against the stand-in server, as if root and under systemd; (systemctl calls, lines said)."""
    calls: list[list[str]] = []
    said: list[str] = []
    options = {"systemd": True, **options}
    install(
        stub.url,
        secret,
        paths=paths,
        source=source,
        require_root=False,
        run=lambda argv: calls.append(list(argv)),
        say=said.append,
        **options,
    )
    return calls, said


def test_install_puts_everything_in_place_and_starts_the_service(
    stub_server: StubServer, paths: InstallPaths, source_pyz: Path
) -> None:
    calls, said = run_install(stub_server, paths, source_pyz)
    assert paths.pyz.read_bytes() == source_pyz.read_bytes()
    assert stat.S_IMODE(paths.pyz.stat().st_mode) == 0o755
    assert load_config(paths.config).server == stub_server.url
    store = StateStore(paths.state_dir)
    assert store.require().host_token == HOST_TOKEN
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    unit = paths.unit.read_text()
    assert f"-I {paths.pyz} --config {paths.config} --state-dir {paths.state_dir} run" in unit
    assert calls == [
        ["systemctl", "daemon-reload"],
        ["systemctl", "enable", "patchday-agent.service"],
        ["systemctl", "restart", "patchday-agent.service"],
    ]
    assert not any(HOST_TOKEN in line for line in said)


def test_reinstalling_keeps_the_token_and_needs_no_secret(
    stub_server: StubServer, paths: InstallPaths, source_pyz: Path
) -> None:
    run_install(stub_server, paths, source_pyz)
    enrolls = len(stub_server.requests)
    _, said = run_install(stub_server, paths, source_pyz, secret="")
    assert len(stub_server.requests) == enrolls
    assert any("keeping its host token" in line for line in said)


def test_moving_to_another_server_needs_force(stub_server: StubServer, paths: InstallPaths, source_pyz: Path) -> None:
    run_install(stub_server, paths, source_pyz)
    with pytest.raises(ConfigError, match="--force"):
        install("https://other.example", SECRET, paths=paths, source=source_pyz, require_root=False, systemd=False)


def test_a_refused_secret_installs_nothing(stub_server: StubServer, paths: InstallPaths, source_pyz: Path) -> None:
    with pytest.raises(ServerRefused):
        run_install(stub_server, paths, source_pyz, secret="pde_wrong")
    assert not paths.pyz.exists()
    assert not paths.unit.exists()
    assert not paths.config.exists()


def test_without_systemd_it_says_how_to_run_the_agent(
    stub_server: StubServer, paths: InstallPaths, source_pyz: Path
) -> None:
    calls, said = run_install(stub_server, paths, source_pyz, systemd=False)
    assert calls == []
    assert any("systemd is not running here" in line and f"{paths.pyz}" in line for line in said)


def test_a_ca_file_is_copied_next_to_the_config(
    stub_server: StubServer, paths: InstallPaths, source_pyz: Path, tmp_path: Path
) -> None:
    import ssl

    ca = Path(ssl.get_default_verify_paths().cafile or "/etc/ssl/certs/ca-certificates.crt")
    if not ca.exists():
        pytest.skip("no system CA bundle to stand in for a private CA")
    run_install(stub_server, paths, source_pyz, ca_file=str(ca))
    assert paths.ca_file.read_bytes() == ca.read_bytes()
    assert load_config(paths.config).ca_file == str(paths.ca_file)


def test_install_refuses_to_run_as_a_normal_user(monkeypatch: pytest.MonkeyPatch, paths: InstallPaths) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    with pytest.raises(ConfigError, match="as root"):
        install("https://patchday.example", SECRET, paths=paths)


def test_the_unit_is_hardened_where_patching_allows_it(paths: InstallPaths) -> None:
    unit = systemd_unit("/usr/bin/python3", InstallPaths())
    for line in ("ProtectHome=read-only", "PrivateTmp=yes", "UMask=0077", "Restart=always"):
        assert line in unit.splitlines()
    assert "\nNoNewPrivileges=" not in unit  # apt and dpkg need set-uid helpers; the comment says why
    assert "NoNewPrivileges=" in unit
    assert "ExecStart=/usr/bin/python3 -I /usr/local/lib/patchday/patchday-agent.pyz" in unit


@pytest.mark.parametrize("bad", ["/opt/my agent/a.pyz", "/opt/%n.pyz", "/opt/$HOME/a.pyz", "relative/a.pyz"])
def test_paths_systemd_would_expand_or_split_are_refused(bad: str) -> None:
    with pytest.raises(ConfigError, match="systemd unit"):
        systemd_unit("/usr/bin/python3", InstallPaths(pyz=Path(bad)))


def test_from_a_source_tree_there_is_no_running_archive() -> None:
    assert running_archive() is None  # install() then builds the zipapp instead of copying itself
