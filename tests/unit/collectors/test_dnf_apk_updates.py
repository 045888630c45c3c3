"""Pending updates on RHEL-family and Alpine hosts, over samples written in dnf's and apk's output formats."""

from __future__ import annotations

import pytest

from patchday.collectors import CollectorError
from patchday.collectors.apk import ApkPackage, parse_version_list
from patchday.collectors.apk import collect_pending as collect_apk_pending
from patchday.collectors.dnf import collect_pending as collect_dnf_pending
from patchday.collectors.dnf import parse_check_update, parse_updateinfo, split_nevra
from patchday.collectors.host import CommandResult, Host
from tests.unit.collectors.host_fakes import FakeRunner, fixture_text, ok

CHECK_UPDATE = "dnf-check-update-almalinux9-sample.txt"
UPDATEINFO = "dnf-updateinfo-list-security-almalinux9-sample.txt"
APK_VERSION = "apk-version-l-lt-alpine-sample.txt"


def test_check_update_reads_wrapped_lines_and_skips_obsoletes() -> None:
    upgrades = parse_check_update(fixture_text(CHECK_UPDATE))
    assert len(upgrades) == 10
    wrapped = next(u for u in upgrades if u.name == "NetworkManager-cloud-setup")
    assert (wrapped.arch, wrapped.candidate, wrapped.repository) == ("x86_64", "1:1.42.2-8.el9_2", "appstream")
    assert "grub2-tools" not in {u.name for u in upgrades}


def test_updateinfo_lines() -> None:
    notices = parse_updateinfo(fixture_text(UPDATEINFO))
    assert len(notices) == 8
    bind = next(n for n in notices if n.name == "bind-libs")
    assert (bind.advisory, bind.severity, bind.evr, bind.arch) == (
        "ALSA-2023:5689",
        "Important",
        "32:9.16.23-11.el9_2.2",
        "x86_64",
    )
    dnf5 = parse_updateinfo("Name Type Severity Package Issued\nRHSA-2024:1 security Low a-1-2.el9.noarch 2024-01-01\n")
    assert (dnf5[0].severity, dnf5[0].name) == ("Low", "a")


def test_split_nevra() -> None:
    assert split_nevra("openssl-libs-1:3.0.7-27.el9.x86_64") == ("openssl-libs", "1:3.0.7-27.el9", "x86_64")
    assert split_nevra("python3-unbound-0:1.16.2-3.el9.noarch") == ("python3-unbound", "1.16.2-3.el9", "noarch")
    with pytest.raises(CollectorError):
        split_nevra("garbage")


def test_dnf_pending_marks_security_updates() -> None:
    runner = FakeRunner(
        {
            ("dnf", "-q", "-C", "check-update"): CommandResult(100, fixture_text(CHECK_UPDATE), ""),
            ("dnf", "-q", "-C", "updateinfo"): ok(fixture_text(UPDATEINFO)),
        }
    )
    problems: list[str] = []
    pending = collect_dnf_pending(Host("/", runner), {"curl.x86_64": "7.76.1-23.el9"}, problems)
    by_name = {p.name: p for p in pending}
    assert (by_name["curl"].installed, by_name["curl"].candidate, by_name["curl"].security) == (
        "7.76.1-23.el9",
        "7.76.1-23.el9_2.4",
        True,
    )
    assert by_name["tzdata"].security is False
    assert by_name["kernel-core"].origin == "baseos"
    assert problems == []


def test_dnf_failure_is_an_error() -> None:
    runner = FakeRunner({("dnf",): CommandResult(1, "", "Error: Cache-only enabled but no cache for 'baseos'")})
    with pytest.raises(CollectorError, match="no cache"):
        collect_dnf_pending(Host("/", runner), {}, [])


@pytest.mark.parametrize("text", ["bash.x86_64\n", "bash.x86_64 five baseos\n", "<html>\n<body>oops</body>\n"])
def test_garbage_check_update_is_refused(text: str) -> None:
    with pytest.raises(CollectorError, match="dnf check-update"):
        parse_check_update(text)


def test_apk_version_list() -> None:
    upgrades = parse_version_list(fixture_text(APK_VERSION))
    assert [(u.name, u.installed, u.available) for u in upgrades][:2] == [
        ("busybox", "1.36.1-r5", "1.36.1-r7"),
        ("libcrypto3", "3.1.4-r1", "3.1.4-r5"),
    ]
    assert next(u for u in upgrades if u.name == "py3-setuptools").tag == "community"
    with pytest.raises(CollectorError, match="line 1"):
        parse_version_list("busybox 1.36\n")


def test_apk_pending_names_the_aport() -> None:
    runner = FakeRunner({("apk", "version"): ok(fixture_text(APK_VERSION))})
    installed = [ApkPackage("libcrypto3", "3.1.4-r1", "x86_64", "openssl")]
    pending = {p.name: p for p in collect_apk_pending(Host("/", runner), installed)}
    assert (pending["libcrypto3"].source, pending["libcrypto3"].arch) == ("openssl", "x86_64")
    assert runner.calls == [["apk", "version", "-l", "<"]]
