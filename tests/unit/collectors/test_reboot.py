"""Reboot state from flag files, needs-restarting and kernel releases, below a fake root."""

from __future__ import annotations

from pathlib import Path

import pytest

from patchday.collectors import CollectorError
from patchday.collectors.host import CommandResult, Host
from patchday.collectors.reboot import KERNEL_REASON, check_reboot, is_kernel_outdated, parse_reboot_required_pkgs
from tests.unit.collectors.host_fakes import FakeRunner


def test_reboot_required_file_and_its_packages(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run/reboot-required").write_text("*** System restart required ***\n")
    (tmp_path / "run/reboot-required.pkgs").write_text("linux-image-6.1.0-27-amd64\nlibc6\nlibc6\n")
    problems: list[str] = []
    state = check_reboot(Host(str(tmp_path)), "6.1.0-27-amd64", ["6.1.0-27-amd64"], False, problems)
    assert state.required is True
    assert state.reasons == ["/run/reboot-required"]
    assert state.packages == ["linux-image-6.1.0-27-amd64", "libc6"]
    assert problems == []


def test_running_kernel_older_than_installed(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    state = check_reboot(Host(str(tmp_path)), "6.1.0-26-amd64", ["6.1.0-26-amd64", "6.1.0-27-amd64"], False, [])
    assert (state.required, state.reasons) == (True, [KERNEL_REASON])


def test_nothing_pending_is_a_no(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    state = check_reboot(Host(str(tmp_path)), "6.1.0-27-amd64", ["6.1.0-26-amd64", "6.1.0-27-amd64"], False, [])
    assert (state.required, state.reasons, state.packages) == (False, [], [])


def test_needs_restarting_exit_status_one_means_reboot() -> None:
    runner = FakeRunner({("needs-restarting", "-r"): CommandResult(1, "Reboot is required\n", "")})
    state = check_reboot(Host("/", runner), "", [], True, [])
    assert state.required is True
    assert "needs-restarting -r" in state.reasons


def test_no_possible_check_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CollectorError):
        check_reboot(Host(str(tmp_path)), "", [], False, [])


@pytest.mark.parametrize(
    ("running", "installed", "outdated"),
    [
        ("6.1.0-26-amd64", ["6.1.0-27-amd64"], True),
        ("6.1.0-27-amd64", ["6.1.0-27-amd64", "6.1.0-26-amd64"], False),
        ("6.1.0-27-amd64", ["6.1.0-28-rt-amd64"], False),  # another flavour is not an upgrade of this one
        ("5.14.0-284.11.1.el9_2.x86_64", ["5.14.0-284.30.1.el9_2.x86_64"], True),
        ("6.18.44-fc-v669", [], False),
    ],
)
def test_kernel_outdated(running: str, installed: list[str], outdated: bool) -> None:
    assert is_kernel_outdated(running, installed) is outdated


def test_reboot_required_pkgs_lines() -> None:
    assert parse_reboot_required_pkgs("a\n\n b \na\n") == ["a", "b"]
