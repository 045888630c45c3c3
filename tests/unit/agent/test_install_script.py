"""The served install script: POSIX sh, every outside value quoted, the secret never embedded or put on argv."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from patchday.agent.build import install_script
from patchday.agent.errors import ConfigError

HOSTILE_URL = "https://evil.example/$(touch${IFS}PWNED)`touch${IFS}PWNED`'\";touch${IFS}PWNED;|&<>\\x"
CA_PEM = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUabc+/=\nZZZZ\n-----END CERTIFICATE-----\n"


def fake_tools(bin_dir: Path, log: Path) -> None:
    """curl, wget, python3 and id stand-ins that record their argv (one per line) and environment."""
    bin_dir.mkdir()
    recorder = (
        "#!/bin/sh\n"
        f'{{ echo "== $(basename "$0")"; for a in "$@"; do printf \'%s\\n\' "$a"; done;'
        f' echo "secret=${{PATCHDAY_AGENT_ENROLL_SECRET:-}}"; }} >>{log}\n'
    )
    (bin_dir / "curl").write_text(recorder + 'while [ $# -gt 0 ]; do [ "$1" = --output ] && : >"$2"; shift; done\n')
    (bin_dir / "python3").write_text(recorder + "cat >/dev/null 2>&1 || true\n")
    (bin_dir / "id").write_text("#!/bin/sh\necho 0\n")
    for tool in ("curl", "python3", "id"):
        os.chmod(bin_dir / tool, 0o755)  # noqa: S103 - programs


def run_script(script: str, tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    log = tmp_path / "calls.log"
    fake_tools(tmp_path / "bin", log)
    path = tmp_path / "install.sh"
    path.write_text(script)
    env = {"PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin", "TMPDIR": str(tmp_path)}
    done = subprocess.run(
        ["/bin/sh", str(path), *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30, check=False
    )
    return done, log.read_text().splitlines() if log.exists() else []


def test_a_hostile_server_url_stays_one_literal_argument(tmp_path: Path) -> None:
    script = install_script(HOSTILE_URL)
    done, calls = run_script(script, tmp_path, "pde_s3cret")
    assert done.returncode == 0, done.stderr
    assert not list(tmp_path.rglob("PWNED")), "the URL was executed"
    assert f"{HOSTILE_URL}/agent/patchday-agent.pyz" in calls
    install_call = calls[calls.index("== python3", calls.index("== curl")) :]
    assert "install" in install_call
    assert HOSTILE_URL in install_call
    assert install_call[install_call.index("--server") + 1] == HOSTILE_URL


def test_the_secret_reaches_the_agent_in_its_environment_not_its_argv(tmp_path: Path) -> None:
    script = install_script("https://patchday.example")
    assert "pde_s3cret" not in script
    done, calls = run_script(script, tmp_path, "pde_s3cret")
    assert done.returncode == 0, done.stderr
    install_call = calls[calls.index("install") - 2 :]
    assert "secret=pde_s3cret" in install_call
    assert not any(line == "pde_s3cret" for line in calls)
    curl_call = calls[calls.index("== curl") : calls.index("== curl") + 20]
    assert "--proto" in curl_call
    assert "=https" in curl_call


def test_without_a_secret_the_script_stops_with_usage(tmp_path: Path) -> None:
    done, calls = run_script(install_script("https://patchday.example"), tmp_path)
    assert done.returncode == 2
    assert "usage" in done.stderr
    assert calls == []


def test_a_ca_is_embedded_literally_and_used_for_the_download_and_the_agent(tmp_path: Path) -> None:
    done, calls = run_script(install_script("https://patchday.example", CA_PEM), tmp_path, "pde_s3cret")
    assert done.returncode == 0, done.stderr
    assert "--cacert" in calls
    assert "--ca-file" in calls


def test_a_wrong_digest_stops_the_install(tmp_path: Path) -> None:
    script = install_script("https://patchday.example", pyz_sha256="0" * 64)
    log = tmp_path / "calls.log"
    fake_tools(tmp_path / "bin", log)
    (tmp_path / "bin" / "python3").unlink()  # the real one computes the digest of the (empty) download
    (tmp_path / "bin" / "python3").symlink_to(shutil.which("python3") or "/usr/bin/python3")
    (tmp_path / "install.sh").write_text(script)
    env = {"PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin", "TMPDIR": str(tmp_path)}
    done = subprocess.run(
        ["/bin/sh", str(tmp_path / "install.sh"), "pde_s3cret"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 1
    assert "expected 0000" in done.stderr


def test_the_script_is_posix_sh() -> None:
    script = install_script("https://patchday.example", CA_PEM, pyz_sha256="a" * 64)
    for shell in ("/bin/sh", "/bin/dash", "/bin/bash"):
        if Path(shell).exists():
            done = subprocess.run([shell, "-n"], input=script, capture_output=True, text=True, check=False)
            assert done.returncode == 0, f"{shell}: {done.stderr}"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"server_url": "http://patchday.example"}, "refusing plain http"),
        ({"server_url": "https://patchday.example", "ca_pem": "PATCHDAY_CA_PEM\n$(reboot)\n"}, "PEM"),
        ({"server_url": "https://patchday.example", "ca_pem": CA_PEM + "PATCHDAY_CA_PEM\n"}, "PEM"),
        ({"server_url": "https://patchday.example", "pyz_sha256": "$(id)"}, "pyz_sha256"),
    ],
)
def test_bad_inputs_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        install_script(**kwargs)


def test_plain_http_to_another_host_needs_the_flag_and_passes_it_on() -> None:
    script = install_script("http://10.0.0.5:8080", insecure_http=True)
    assert "--insecure-http" in script
