"""Host identity and hardware: hostname, FQDN, addresses, kernels, boot time, machine-id, DMI."""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from datetime import datetime, timezone

from patchday.collectors import CollectorError
from patchday.collectors.debversion import kernel_release_key
from patchday.collectors.host import Host

MACHINE_ID_PATHS = ("etc/machine-id", "var/lib/dbus/machine-id")
DMI_DIR = "sys/class/dmi/id"
# inventory key -> file in DMI_DIR
DMI_FIELDS = {
    "system_vendor": "sys_vendor",
    "product_name": "product_name",
    "product_serial": "product_serial",
    "bios_vendor": "bios_vendor",
    "bios_version": "bios_version",
    "bios_date": "bios_date",
}
_MACHINE_ID = re.compile(r"[0-9a-f]{32}")
_IP_ADDR_LINE = re.compile(
    r"^\d+:\s+(?P<ifname>\S+)\s+(?P<family>inet6?)\s+(?P<address>[0-9A-Fa-f.:]+)(?:/\d+)?(?P<rest>.*)$"
)
_FIB_ENTRY = re.compile(r"^\s*\|--\s+(?P<address>\d+\.\d+\.\d+\.\d+)\s*$")
_FIB_LOCAL = re.compile(r"^\s*/32 host LOCAL\s*$")
_KERNEL_IMAGE = re.compile(r"^(?:linux-image|linux-image-unsigned)-(?P<release>\d\S*)$")
_KERNEL_FILE = re.compile(r"^(?:vmlinuz|vmlinux|kernel)-(?P<release>\d\S*)$")
_RPM_KERNELS = frozenset({"kernel", "kernel-core", "kernel-uek", "kernel-uek-core", "kernel-rt-core", "kernel-default"})


def parse_machine_id(text: str, origin: str = "machine-id") -> str:
    """The 32 lowercase hex digits of a machine-id(5) file; raises CollectorError otherwise."""
    value = text.strip()
    if not _MACHINE_ID.fullmatch(value):
        raise CollectorError(f"{origin} does not hold a machine id (32 hex digits): {value[:40]!r}")
    return value


def parse_ip_addr(text: str, origin: str = "ip -o addr") -> list[str]:
    """Global unicast addresses (no loopback, no link-local) from `ip -o addr show`, in output order."""
    addresses: list[str] = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        found = _IP_ADDR_LINE.match(line)
        if found is None:
            raise CollectorError(f"{origin} line {line_no}: expected 'N: ifname inet ADDR/LEN ...', got {line[:60]!r}")
        try:
            address = ipaddress.ip_address(found.group("address"))
        except ValueError:
            raise CollectorError(f"{origin} line {line_no}: {found.group('address')!r} is not an address") from None
        if address.is_loopback or address.is_link_local or " scope host" in found.group("rest"):
            continue
        if str(address) not in addresses:
            addresses.append(str(address))
    return addresses


def parse_fib_trie(text: str, origin: str = "/proc/net/fib_trie") -> list[str]:
    """The host's own IPv4 addresses (`/32 host LOCAL` leaves, loopback left out) from /proc/net/fib_trie."""
    if text.strip() and not text.lstrip().startswith(("Main:", "Local:", "Id ")):
        raise CollectorError(f"{origin} is not a fib_trie listing")
    addresses: list[str] = []
    candidate: str | None = None
    for line in text.splitlines():
        entry = _FIB_ENTRY.match(line)
        if entry:
            candidate = entry.group("address")
            continue
        if candidate and _FIB_LOCAL.match(line):
            if not ipaddress.ip_address(candidate).is_loopback and candidate not in addresses:
                addresses.append(candidate)
        elif not line.strip().startswith("/"):
            candidate = None
    return addresses


def parse_uptime(text: str, origin: str = "/proc/uptime") -> float:
    """Seconds since boot from the first field of /proc/uptime."""
    fields = text.split()
    try:
        return float(fields[0])
    except (IndexError, ValueError):
        raise CollectorError(f"{origin} does not start with the seconds since boot: {text[:40]!r}") from None


def parse_boot_time(text: str, origin: str = "/proc/stat") -> datetime:
    """The boot time (aware UTC) from the `btime` line of /proc/stat."""
    for line in text.splitlines():
        if line.startswith("btime "):
            try:
                return datetime.fromtimestamp(int(line.split()[1]), tz=timezone.utc)  # noqa: UP017 - Python 3.9
            except (IndexError, ValueError, OverflowError, OSError):
                break
    raise CollectorError(f"{origin} has no valid 'btime' line")


def kernel_releases_from_packages(names: list[str]) -> list[str]:
    """Kernel releases named by installed Debian packages `linux-image-<release>` (metapackages left out)."""
    releases = []
    for name in names:
        found = _KERNEL_IMAGE.match(name)
        if found:
            releases.append(found.group("release"))
    return releases


def kernel_release_from_rpm(name: str, version: str, release: str, arch: str) -> str | None:
    """The `uname -r` of an installed kernel rpm (kernel-core-5.14.0-427.el9 x86_64 -> 5.14.0-427.el9.x86_64)."""
    if name not in _RPM_KERNELS:
        return None
    return f"{version}-{release}.{arch}" if arch and arch != "(none)" else f"{version}-{release}"


def sort_kernel_releases(releases: list[str]) -> list[str]:
    """Distinct releases, oldest first (see debversion.kernel_release_key for the order)."""
    return sorted(set(releases), key=kernel_release_key)


def kernel_releases_on_disk(host: Host) -> list[str]:
    """Releases with an image in /boot or a module tree in /lib/modules (/usr/lib/modules on merged-/usr)."""
    releases = []
    for name in host.listdir("boot"):
        found = _KERNEL_FILE.match(name)
        if found and "rescue" not in name and not name.endswith((".old", ".bak")):
            releases.append(found.group("release"))
    for directory in ("lib/modules", "usr/lib/modules"):
        for name in host.listdir(directory):
            # a module tree without a kernel image is what a removed kernel leaves behind (built modules)
            if name[:1].isdigit() and host.exists(f"{directory}/{name}/modules.dep"):
                releases.append(name)
    return releases


def read_hostname(host: Host) -> str:
    """The kernel's hostname (the running system's for a live root), else /etc/hostname."""
    if host.is_live:
        name = socket.gethostname()
        if name:
            return name
    for path in ("proc/sys/kernel/hostname", "etc/hostname"):
        if host.exists(path):
            name = host.read_text(path).strip()
            if name:
                return name
    raise CollectorError("no hostname: /proc/sys/kernel/hostname and /etc/hostname are missing or empty")


def read_fqdn(host: Host, hostname: str) -> str:
    """`hostname -f` with a short timeout on a live root; the plain hostname when it fails.

    Never a DNS query of our own: hosts without working DNS must not stall the inventory.
    """
    if not host.is_live:
        return hostname
    try:
        done = host.run(["hostname", "-f"], 3, None)
    except CollectorError:
        return hostname
    fqdn = done.stdout.strip()
    if done.returncode != 0 or not fqdn or any(c.isspace() for c in fqdn):
        return hostname
    return fqdn


def read_addresses(host: Host) -> list[str]:
    """The host's global addresses: `ip -o addr show`, else /proc/net/fib_trie (IPv4 only)."""
    ip_error: CollectorError | None = None
    if host.is_live:
        try:
            return parse_ip_addr(host.run_ok(["ip", "-o", "addr", "show"], 10), "ip -o addr show")
        except CollectorError as exc:
            ip_error = exc
    try:
        return parse_fib_trie(host.read_text("proc/net/fib_trie"), host.path("proc/net/fib_trie"))
    except CollectorError as exc:
        raise CollectorError(f"{ip_error}; {exc}" if ip_error else str(exc)) from None


def read_running_kernel(host: Host) -> str:
    """The running kernel's release (a chroot shares its host's kernel, so uname applies to any root)."""
    if host.exists("proc/sys/kernel/osrelease"):
        release = host.read_text("proc/sys/kernel/osrelease").strip()
        if release:
            return release
    return os.uname().release


def read_architecture() -> str:
    """The machine hardware name as `uname -m` prints it (x86_64, aarch64)."""
    return os.uname().machine


def read_machine_id(host: Host) -> str:
    """/etc/machine-id, else D-Bus's copy; raises CollectorError when neither holds an id."""
    problems = []
    for path in MACHINE_ID_PATHS:
        try:
            return parse_machine_id(host.read_text(path), host.path(path))
        except CollectorError as exc:
            problems.append(str(exc))
    raise CollectorError("; ".join(problems))


def read_dmi(host: Host) -> tuple[dict[str, str], list[str]]:
    """DMI strings (missing ones "") and a message for each one that could not be read.

    product_serial is readable by root only on most systems; that is reported, not fatal.
    """
    values = dict.fromkeys(DMI_FIELDS, "")
    problems: list[str] = []
    if not host.exists(DMI_DIR):
        return values, [f"no DMI data: {host.path(DMI_DIR)} does not exist (no SMBIOS, or a container)"]
    for key, name in DMI_FIELDS.items():
        try:
            values[key] = host.read_text(f"{DMI_DIR}/{name}").strip()
        except CollectorError as exc:
            problems.append(str(exc))
    return values, problems
