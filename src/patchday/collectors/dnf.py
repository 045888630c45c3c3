"""Pending updates on the RHEL family: candidates from `dnf check-update`, security from `dnf updateinfo`.

Both commands are read-only; they use dnf's metadata cache (`-C`) so an inventory never waits for
(or fails on) a repository refresh. Exit status 100 of check-update means "updates available".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from patchday.collectors import CollectorError
from patchday.collectors.host import Host
from patchday.collectors.updates import PendingUpdate

_NEVRA = re.compile(r"^(?P<name>.+)-(?P<evr>(?:\d+:)?[^-:]+-[^-]+)\.(?P<arch>[^.]+)$")
_NAME_ARCH = re.compile(r"^(?P<name>.+)\.(?P<arch>[^.\s]+)$")
_ADVISORY = re.compile(r"^[A-Z][A-Za-z0-9]*-\d{4}[:-]\d+")
_NOISE = ("Last metadata expiration check", "Updating Subscription Management", "Security:", "Waiting for process")


@dataclass(frozen=True)
class Upgrade:
    """A line of `dnf check-update`: the newest available EVR of an installed name.arch and its repository."""

    name: str
    arch: str
    candidate: str
    repository: str


@dataclass(frozen=True)
class SecurityNotice:
    """A line of `dnf updateinfo list --security`: an advisory, its severity and a package NEVRA it ships."""

    advisory: str
    severity: str
    name: str
    evr: str
    arch: str


def split_nevra(nevra: str) -> tuple[str, str, str]:
    """(name, [epoch:]version-release, arch) of "openssl-libs-1:3.0.7-27.el9.x86_64"; raises CollectorError."""
    found = _NEVRA.match(nevra)
    if found is None:
        raise CollectorError(f"{nevra!r} is not a package NEVRA")
    evr = found.group("evr")
    if evr.startswith("0:"):
        evr = evr[2:]
    return found.group("name"), evr, found.group("arch")


def parse_check_update(text: str, origin: str = "dnf check-update") -> list[Upgrade]:
    """Upgrades from `dnf check-update` (name.arch  [epoch:]version-release  repository; long lines wrap).

    The "Obsoleting Packages" section is left out (those packages are reported as upgrades too).
    """
    upgrades: list[Upgrade] = []
    tokens: list[str] = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith(_NOISE):
            continue
        if stripped.startswith("Obsoleting Packages"):
            break
        tokens += stripped.split()
        while len(tokens) >= 3:
            name_arch, candidate, repository = tokens[:3]
            tokens = tokens[3:]
            found = _NAME_ARCH.match(name_arch)
            if found is None or not candidate[:1].isdigit():
                raise CollectorError(f"{origin} line {line_no}: expected 'name.arch version-release repo'")
            evr = candidate[2:] if candidate.startswith("0:") else candidate
            upgrades.append(Upgrade(found.group("name"), found.group("arch"), evr, repository))
    if tokens:
        raise CollectorError(f"{origin} ends in the middle of an entry: {' '.join(tokens)[:60]!r}")
    return upgrades


def parse_updateinfo(text: str, origin: str = "dnf updateinfo list") -> list[SecurityNotice]:
    """Advisory lines of `dnf updateinfo list`.

    dnf 4 prints "ID  Severity/Sec.  NEVRA"; dnf 5 prints "ID  type  severity  NEVRA  issued" under a header.
    """
    notices = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields or line.strip().startswith(_NOISE) or fields[0] == "Name":
            continue
        if not _ADVISORY.match(fields[0]) or len(fields) < 3:
            raise CollectorError(f"{origin} line {line_no}: expected 'ADVISORY severity NEVRA', got {line[:60]!r}")
        if fields[1].endswith("/Sec.") or "/" in fields[1]:
            severity, nevra = fields[1].split("/")[0], fields[2]
        elif len(fields) >= 4:
            severity, nevra = fields[2], fields[3]
        else:
            severity, nevra = "", fields[2]
        try:
            name, evr, arch = split_nevra(nevra)
        except CollectorError as exc:
            raise CollectorError(f"{origin} line {line_no}: {exc}") from None
        notices.append(SecurityNotice(fields[0], severity, name, evr, arch))
    return notices


def to_pending(
    upgrades: list[Upgrade], notices: list[SecurityNotice], installed: dict[str, str]
) -> list[PendingUpdate]:
    """Pending updates; security when a security advisory ships a newer build of the same name.arch.

    `installed` maps "name.arch" to the installed EVR (from the rpm database).
    """
    secured = {(n.name, n.arch) for n in notices}
    return [
        PendingUpdate(
            manager="dnf",
            name=u.name,
            arch=u.arch,
            installed=installed.get(f"{u.name}.{u.arch}", ""),
            candidate=u.candidate,
            origin=u.repository,
            security=(u.name, u.arch) in secured,
        )
        for u in upgrades
    ]


def collect_pending(host: Host, installed: dict[str, str], problems: list[str]) -> list[PendingUpdate]:
    """Pending dnf (or yum) updates of the host; raises CollectorError when neither tool answers."""
    root = [] if host.is_live else [f"--installroot={host.root}"]
    tool = "dnf"
    try:
        done = host.run([tool, "-q", "-C", *root, "check-update"], 600, None)
    except CollectorError:
        tool = "yum"
        done = host.run([tool, "-q", "-C", *root, "check-update"], 600, None)
    if done.returncode not in (0, 100):
        raise CollectorError(f"{tool} check-update exited with status {done.returncode}: {done.stderr.strip()[-300:]}")
    upgrades = parse_check_update(done.stdout, f"{tool} check-update")
    notices: list[SecurityNotice] = []
    try:
        listing = host.run_ok([tool, "-q", "-C", *root, "updateinfo", "list", "--security"], 600)
        notices = parse_updateinfo(listing, f"{tool} updateinfo list --security")
    except CollectorError as exc:
        problems.append(f"security advisories unknown: {exc}")
    return to_pending(upgrades, notices, installed)
