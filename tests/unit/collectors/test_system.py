"""Host identity facts: recorded `ip`, /proc and machine-id text, and DMI/kernels read below a fake root."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from patchday.collectors import CollectorError
from patchday.collectors.host import Host
from patchday.collectors.system import (
    kernel_release_from_rpm,
    kernel_releases_from_packages,
    kernel_releases_on_disk,
    parse_boot_time,
    parse_fib_trie,
    parse_ip_addr,
    parse_machine_id,
    parse_uptime,
    read_dmi,
    read_fqdn,
    read_hostname,
    read_machine_id,
    sort_kernel_releases,
)
from tests.unit.collectors.host_fakes import FakeRunner, fixture_text, ok


def test_ip_addr_gives_global_addresses_without_loopback_or_link_local() -> None:
    assert parse_ip_addr(fixture_text("ip-o-addr-2026-11-28.txt")) == ["192.0.2.2", "fd00::2"]


def test_fib_trie_gives_local_ipv4_addresses_once() -> None:
    assert parse_fib_trie(fixture_text("proc-net-fib_trie-2026-11-28.txt")) == ["192.0.2.2"]


@pytest.mark.parametrize("text", ["garbage\n", "2: eth0 inet not-an-address/24 scope global\n"])
def test_unreadable_ip_output_is_refused_by_name(text: str) -> None:
    with pytest.raises(CollectorError, match="ip -o addr"):
        parse_ip_addr(text)


def test_uptime_and_boot_time() -> None:
    assert parse_uptime("9854.22 8181.33\n") == pytest.approx(9854.22)
    assert parse_boot_time("cpu 1 2 3\nbtime 1795848551\nprocesses 9\n") == datetime(
        2026, 11, 28, 6, 49, 11, tzinfo=UTC
    )
    with pytest.raises(CollectorError, match="/proc/uptime"):
        parse_uptime("")
    with pytest.raises(CollectorError, match="btime"):
        parse_boot_time("btime soon\n")


def test_machine_id() -> None:
    assert parse_machine_id("3d1219c7c4c5404aaa1f6d2a48adfda4\n") == "3d1219c7c4c5404aaa1f6d2a48adfda4"
    with pytest.raises(CollectorError, match="32 hex digits"):
        parse_machine_id("uninitialized\n", "/etc/machine-id")


def test_machine_id_falls_back_to_dbus_copy(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/machine-id").write_text("\n")
    (tmp_path / "var/lib/dbus").mkdir(parents=True)
    (tmp_path / "var/lib/dbus/machine-id").write_text("4c4c4544004e3510804fc2c04f4b4d32\n")
    assert read_machine_id(Host(str(tmp_path))) == "4c4c4544004e3510804fc2c04f4b4d32"


def test_hostname_below_a_root_and_fqdn_without_dns(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/hostname").write_text("h1\n")
    host = Host(str(tmp_path), FakeRunner())
    assert read_hostname(host) == "h1"
    assert read_fqdn(host, "h1") == "h1"  # not the live system: no command, no DNS


def test_fqdn_falls_back_to_hostname_when_hostname_f_fails() -> None:
    failing = Host("/", FakeRunner())  # `hostname` "not installed"
    assert read_fqdn(failing, "h1") == "h1"
    answering = Host("/", FakeRunner({("hostname", "-f"): ok("h1.lab.example\n")}))
    assert read_fqdn(answering, "h1") == "h1.lab.example"


def test_dmi_keeps_what_it_can_read(tmp_path: Path) -> None:
    dmi = tmp_path / "sys/class/dmi/id"
    dmi.mkdir(parents=True)
    (dmi / "sys_vendor").write_text("Dell Inc.\n")
    (dmi / "product_name").write_text("PowerEdge R640\n")
    (dmi / "product_serial").mkdir()  # unreadable, as the root-only file is for other users
    values, problems = read_dmi(Host(str(tmp_path)))
    assert values["system_vendor"] == "Dell Inc."
    assert values["product_name"] == "PowerEdge R640"
    assert values["product_serial"] == ""
    assert any("product_serial" in p for p in problems)
    assert any("bios_vendor" in p for p in problems)


def test_installed_kernels_from_packages_rpm_and_disk(tmp_path: Path) -> None:
    assert kernel_releases_from_packages(["linux-image-amd64", "linux-image-6.1.0-27-amd64", "linux-base"]) == [
        "6.1.0-27-amd64"
    ]
    assert kernel_release_from_rpm("kernel-core", "5.14.0", "427.13.1.el9_4", "x86_64") == (
        "5.14.0-427.13.1.el9_4.x86_64"
    )
    assert kernel_release_from_rpm("kernel-headers", "5.14.0", "427.13.1.el9_4", "x86_64") is None
    (tmp_path / "boot").mkdir()
    for name in ("vmlinuz-6.1.0-26-amd64", "vmlinuz-6.1.0-27-amd64", "config-6.1.0-27-amd64", "vmlinuz-0-rescue-ab"):
        (tmp_path / "boot" / name).write_text("")
    (tmp_path / "lib/modules/6.1.0-9-amd64").mkdir(parents=True)
    (tmp_path / "lib/modules/6.1.0-9-amd64/modules.dep").write_text("")
    found = kernel_releases_on_disk(Host(str(tmp_path)))
    assert sort_kernel_releases(found) == ["6.1.0-9-amd64", "6.1.0-26-amd64", "6.1.0-27-amd64"]
