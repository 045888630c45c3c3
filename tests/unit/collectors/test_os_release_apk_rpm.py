"""os-release, apk and rpm-query parsing, with hostile input."""

from __future__ import annotations

from pathlib import Path

import pytest

from patchday.collectors import CollectorError
from patchday.collectors.apk import parse_installed
from patchday.collectors.os_release import parse_os_release
from patchday.collectors.rpm import parse_query

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "host"


def test_debian_os_release() -> None:
    values = parse_os_release((FIXTURES / "os-release-debian12").read_text())
    assert (values["ID"], values["VERSION_ID"], values["PRETTY_NAME"]) == (
        "debian",
        "12",
        "Debian GNU/Linux 12 (bookworm)",
    )


@pytest.mark.parametrize(("text", "says"), [("NAME=x\n", "no ID= line"), ("garbage line\n", "expected KEY=value")])
def test_bad_os_release(text: str, says: str) -> None:
    with pytest.raises(CollectorError, match=says):
        parse_os_release(text)


def test_apk_database_gives_name_version_and_origin() -> None:
    text = "C:Q1abc=\nP:libcrypto3\nV:3.3.2-r0\nA:x86_64\no:openssl\n\nP:busybox\nV:1.36.1-r29\nA:x86_64\n"
    packages = parse_installed(text)
    assert [(p.name, p.version, p.origin) for p in packages] == [
        ("libcrypto3", "3.3.2-r0", "openssl"),
        ("busybox", "1.36.1-r29", "busybox"),
    ]


@pytest.mark.parametrize("text", ["", "not an apk db\n", "P:x\n\n"])
def test_bad_apk_database(text: str) -> None:
    with pytest.raises(CollectorError):
        parse_installed(text)


def test_rpm_query_output_gives_evr_with_epoch_only_when_set() -> None:
    text = (
        "bash\t0\t5.1.8\t6.el9\tx86_64\tbash-5.1.8-6.el9.src.rpm\n"
        "gpg-pubkey\t0\tfd431d51\t4ae0493b\t(none)\t(none)\n"
        "qemu-img\t17\t8.2.0\t11.el9\tx86_64\tqemu-kvm-8.2.0-11.el9.src.rpm\n"
    )
    packages = parse_query(text)
    assert [(p.name, p.evr) for p in packages] == [("bash", "5.1.8-6.el9"), ("qemu-img", "17:8.2.0-11.el9")]


def test_bad_rpm_query_output() -> None:
    with pytest.raises(CollectorError, match="line 1"):
        parse_query("bash 5.1\n")
