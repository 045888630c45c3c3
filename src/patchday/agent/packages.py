"""Package-manager drivers for jobs: strict name/version checks, argv lists, and parsers of what the tools print.

Everything here is pure: functions build argv lists (never shell strings) from names and versions
that passed `validate_name`/`validate_version`, and parse text the tools printed. Nothing runs a
command. The job runner (`patchday.agent.jobs`) runs the argv lists.

Decisions:
- apt installs exact versions with `apt-get install --only-upgrade name=version`: a job upgrades
  what is installed and never installs a target that is missing (apt skips it; the runner's after
  check then fails the job). Dependencies apt pulls in are allowed and are recorded by the
  simulation first.
- dnf uses `dnf -y upgrade name-version`, not `upgrade-minimal`: a job names exact versions and
  `upgrade-minimal` may pick another (the lowest security-relevant) one.
- apt rollback is one apt transaction, `apt-get install --allow-downgrades /abs/kept.deb ... name-`
  (a trailing `-` removes a package the job newly installed): apt orders the downgrades and the
  removals itself, and a removal never cascades silently because the runner simulates the same
  command first and refuses any change outside the restore list. `dpkg -i` was not used: it neither
  resolves the order between kept files nor refuses to leave dependencies broken.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from patchday.collectors.debversion import compare_versions

MANAGERS = ("apt", "dnf", "zypper", "apk")
MAX_NAME = 128
MAX_VERSION = 128

# Debian policy 5.6.1 (at least two characters), with an optional multiarch qualifier as apt prints it.
_DEB_NAME = re.compile(r"[a-z0-9][a-z0-9+.-]+(?::[a-z0-9][a-z0-9-]*)?")
# deb-version(7): [epoch:]upstream[-revision]; colons in the upstream part only with an epoch.
_DEB_VERSION = re.compile(r"(?:[0-9]{1,9}:[0-9][A-Za-z0-9.+~:-]*|[0-9][A-Za-z0-9.+~-]*)")
# rpm: names of letters, digits and -._+; EVR as [epoch:]version[-release].
_RPM_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*")
_RPM_VERSION = re.compile(r"(?:[0-9]{1,9}:)?[A-Za-z0-9._+~^]+(?:-[A-Za-z0-9._+~^]+)?")
# apk: lowercase names; versions as apk-version(8) spells them, e.g. 1.2.4_git20230717-r2.
_APK_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*")
_APK_VERSION = re.compile(r"[0-9]+(?:\.[0-9]+)*[a-z]?(?:_(?:alpha|beta|pre|rc|cvs|svn|git|hg|p)[0-9]*)*(?:-r[0-9]+)?")
_ARCH = re.compile(r"[a-z0-9_][a-z0-9_-]{0,31}")
_NAMES = {"apt": _DEB_NAME, "dnf": _RPM_NAME, "zypper": _RPM_NAME, "apk": _APK_NAME}
_VERSIONS = {"apt": _DEB_VERSION, "dnf": _RPM_VERSION, "zypper": _RPM_VERSION, "apk": _APK_VERSION}

# Options every apt-get that changes the system gets: keep local config files, wait for the dpkg lock.
APT_DPKG_OPTIONS = (
    "-o",
    "Dpkg::Options::=--force-confdef",
    "-o",
    "Dpkg::Options::=--force-confold",
    "-o",
    "DPkg::Lock::Timeout=300",
)
DPKG_QUERY_FORMAT = "${Package}\\t${Version}\\t${Architecture}\\t${Status}\\n"
RPM_QUERY_FORMAT = "%{NAME}\\t%{EPOCHNUM}:%{VERSION}-%{RELEASE}\\t%{ARCH}\\tinstalled\\n"
ACTIONS = ("upgrade", "install", "remove", "downgrade")

_INST = re.compile(
    r"^Inst (?P<name>\S+)(?: \[(?P<old>[^\]]*)\])?"
    r" \((?P<new>\S+)(?: [^\[]*?)? \[(?P<arch>[^\]]+)\]\)(?: \[[^\]]*\])*\s*$"
)
_REMV = re.compile(r"^Remv (?P<name>\S+)(?: \[(?P<old>[^\]]*)\])?(?: \[[^\]]*\])*\s*$")
_DNF_SECTIONS = {
    "Upgrading:": "upgrade",
    "Installing:": "install",
    "Installing dependencies:": "install",
    "Installing weak dependencies:": "install",
    "Removing:": "remove",
    "Removing dependent packages:": "remove",
    "Removing unused dependencies:": "remove",
    "Downgrading:": "downgrade",
}


class JobSpecError(ValueError):
    """A job spec, or a name or version in it, is not acceptable; the message names the bad value."""


@dataclass(frozen=True)
class Change:
    """One package a transaction touches: `old`/`new` are None when it is not installed before/after."""

    name: str
    arch: str
    old: str | None
    new: str | None
    action: str


@dataclass(frozen=True)
class Installed:
    """One row of the package database: `status` is dpkg's last status word ("installed", "half-configured", ...)."""

    name: str
    version: str
    arch: str
    status: str

    @property
    def is_installed(self) -> bool:
        return self.status == "installed"


def _check_manager(manager: str) -> None:
    if manager not in MANAGERS:
        raise JobSpecError(f"unknown package manager {manager!r}; expected one of {', '.join(MANAGERS)}")


def validate_name(manager: str, name: str) -> str:
    """`name` unchanged when it is a valid package name for `manager`; else JobSpecError naming it."""
    _check_manager(manager)
    if not isinstance(name, str) or not name:
        raise JobSpecError(f"package name {name!r} must be a non-empty string")
    if len(name) > MAX_NAME:
        raise JobSpecError(f"package name {name[:40]!r}... is longer than {MAX_NAME} characters")
    if not name.isascii() or _NAMES[manager].fullmatch(name) is None or name.endswith("-"):
        raise JobSpecError(f"package name {name!r} is not a valid {manager} package name")
    return name


def validate_version(manager: str, version: str) -> str:
    """`version` unchanged when it is a valid exact version for `manager`; else JobSpecError naming it."""
    _check_manager(manager)
    if not isinstance(version, str) or not version:
        raise JobSpecError(f"version {version!r} must be a non-empty string")
    if len(version) > MAX_VERSION:
        raise JobSpecError(f"version {version[:40]!r}... is longer than {MAX_VERSION} characters")
    if not version.isascii() or _VERSIONS[manager].fullmatch(version) is None:
        raise JobSpecError(f"version {version!r} is not a valid {manager} version")
    return version


def validate_arch(arch: str) -> str:
    """`arch` unchanged when it looks like an architecture (amd64, all, x86_64, noarch); else JobSpecError."""
    if not isinstance(arch, str) or _ARCH.fullmatch(arch) is None:
        raise JobSpecError(f"architecture {arch!r} is not valid")
    return arch


def _pinned(manager: str, targets: Sequence[tuple[str, str]]) -> list[str]:
    if not targets:
        raise JobSpecError("no target packages")
    words = []
    for name, version in targets:
        validate_name(manager, name)
        validate_version(manager, version)
        # dnf and rpm spell an exact version name-version; apt, zypper and apk name=version.
        words.append(f"{name}-{version}" if manager == "dnf" else f"{name}={version}")
    return words


def install_argv(manager: str, targets: Sequence[tuple[str, str]]) -> list[str]:
    """argv that upgrades each (name, version) of `targets` to exactly that version, without prompting.

    apt needs DEBIAN_FRONTEND=noninteractive in the environment (the runner sets it). Raises
    JobSpecError for an unknown manager, no targets, or a bad name or version.
    """
    _check_manager(manager)
    pinned = _pinned(manager, targets)
    if manager == "apt":
        return [
            "apt-get",
            "install",
            "-y",
            "-q",
            "--only-upgrade",
            "--no-install-recommends",
            *APT_DPKG_OPTIONS,
            "--",
            *pinned,
        ]
    if manager == "dnf":
        return ["dnf", "-y", "upgrade", "--", *pinned]
    if manager == "zypper":
        return ["zypper", "--non-interactive", "install", "--oldpackage", "--", *pinned]
    return ["apk", "add", "--", *pinned]


def simulate_argv(manager: str, targets: Sequence[tuple[str, str]]) -> list[str]:
    """argv that shows what `install_argv(manager, targets)` would change, changing nothing."""
    _check_manager(manager)
    pinned = _pinned(manager, targets)
    if manager == "apt":
        # No lock: a simulation only reads, and must not wait behind (or block) a running dpkg.
        return [
            "apt-get",
            "-s",
            "-q",
            "-o",
            "Debug::NoLocking=1",
            "install",
            "--only-upgrade",
            "--no-install-recommends",
            "--",
            *pinned,
        ]
    if manager == "dnf":
        return ["dnf", "--assumeno", "upgrade", "--", *pinned]
    if manager == "zypper":
        return ["zypper", "--non-interactive", "install", "--dry-run", "--oldpackage", "--", *pinned]
    return ["apk", "add", "--simulate", "--", *pinned]


def download_argv(manager: str, name: str, version: str) -> list[str]:
    """argv that downloads the package file of exactly `name` `version` into the working directory (apt only)."""
    if manager != "apt":
        raise JobSpecError(f"keeping package files is not supported for {manager} yet")
    return ["apt-get", "download", "-q", "--", f"{validate_name(manager, name)}={validate_version(manager, version)}"]


def deb_file_name(name: str, version: str, arch: str) -> str:
    """The file name apt gives a .deb: name_version_arch.deb with the epoch colon written as %3a."""
    bare = name.partition(":")[0]
    return f"{bare}_{version.replace(':', '%3a')}_{arch}.deb"


def deb_fields_argv(path: str) -> list[str]:
    """argv that prints a .deb's Package, Version and Architecture fields, one per line."""
    if not path.startswith("/"):
        raise JobSpecError(f"package file {path!r} must be an absolute path")
    return ["dpkg-deb", "--field", path, "Package", "Version", "Architecture"]


def parse_deb_fields(text: str) -> dict[str, str]:
    """{field: value} from `dpkg-deb --field FILE F1 F2 ...` output (`Field: value` lines)."""
    fields = {}
    for line in text.splitlines():
        key, colon, value = line.partition(":")
        if colon and key and not key.startswith(" "):
            fields[key.strip()] = value.strip()
    return fields


def rollback_argv(manager: str, files: Sequence[str], remove: Sequence[str], simulate: bool = False) -> list[str]:
    """argv that installs the kept package `files` (absolute paths, downgrades allowed) and removes `remove`.

    One apt transaction; `simulate` gives the `apt-get -s` form of the same command. Raises
    JobSpecError for another manager, a relative path, a bad name, or nothing to do.
    """
    if manager != "apt":
        raise JobSpecError(f"rollback is not supported for {manager} yet")
    if not files and not remove:
        raise JobSpecError("a rollback with nothing to install and nothing to remove")
    for path in files:
        # apt-get takes an argument as a file only when it contains a slash; absolute paths also rule out options.
        if not path.startswith("/") or not path.endswith(".deb") or any(c.isspace() for c in path):
            raise JobSpecError(f"package file {path!r} must be an absolute path to a .deb without spaces")
    removals = [f"{validate_name(manager, name)}-" for name in remove]
    head = ["apt-get", "-s", "-q", "-o", "Debug::NoLocking=1"] if simulate else ["apt-get", "-y", "-q"]
    options = [] if simulate else list(APT_DPKG_OPTIONS)
    return [*head, "install", "--allow-downgrades", "--no-install-recommends", *options, "--", *files, *removals]


def installed_versions_argv(manager: str, names: Sequence[str]) -> list[str]:
    """argv that prints the installed version, architecture and status of each of `names`."""
    _check_manager(manager)
    checked = [validate_name(manager, name) for name in names]
    if not checked:
        raise JobSpecError("no package names to look up")
    if manager == "apt":
        return ["dpkg-query", "-W", "-f", DPKG_QUERY_FORMAT, "--", *checked]
    if manager in ("dnf", "zypper"):
        return ["rpm", "-q", "--qf", RPM_QUERY_FORMAT, "--", *checked]
    return ["apk", "list", "--installed", "--", *checked]


def parse_installed(manager: str, text: str) -> list[Installed]:
    """Rows of `installed_versions_argv(manager, ...)` output.

    dpkg-query also prints rows for packages it knows but that are not installed (status
    "not-installed" or "config-files"); lines it prints about unknown names go to stderr. rpm
    prints "package X is not installed" lines, which are skipped.
    """
    _check_manager(manager)
    rows: list[Installed] = []
    for line in text.splitlines():
        if manager == "apk":
            found = re.match(r"^(?P<nv>\S+) (?P<arch>\S+) .*\[installed\]", line)
            if found:
                name, _, version = found.group("nv").rpartition("-r")
                name, _, upstream = name.rpartition("-")
                rows.append(Installed(name, f"{upstream}-r{version}", found.group("arch"), "installed"))
            continue
        parts = line.split("\t")
        if len(parts) != 4:
            continue
        name, version, arch, status = parts
        rows.append(Installed(name, version, arch, (status.split() or [""])[-1]))
    return rows


def find_installed(rows: Sequence[Installed], name: str, arch: str = "") -> Installed | None:
    """The installed row for `name` (apt's spelling, possibly `name:arch`), preferring `arch` when several match."""
    bare, _, qualifier = name.partition(":")
    wanted = qualifier or arch
    matching = [r for r in rows if r.name == bare and r.is_installed]
    for row in matching:
        if not wanted or row.arch == wanted:
            return row
    return matching[0] if len(matching) == 1 and not qualifier else None


def parse_apt_simulation(text: str) -> list[Change]:
    """The packages an `apt-get -s` transaction touches, from its `Inst` and `Remv` lines.

    `Inst pkg [old] (new release [arch])` is an upgrade or, when new sorts before old, a downgrade;
    `Inst pkg (new release [arch])` an install; `Remv pkg [old]` a removal. `Conf` lines repeat
    `Inst` ones and are ignored. Raises JobSpecError for an unreadable `Inst`/`Remv` line or output
    that is not apt-get's at all.
    """
    changes: list[Change] = []
    saw_apt = False
    for line_no, line in enumerate(text.splitlines(), start=1):
        if line.startswith(("Reading package lists", "Building dependency tree", "NOTE: This is only a simulation")):
            saw_apt = True
        if line.startswith("Inst "):
            found = _INST.match(line)
            if found is None:
                raise JobSpecError(f"apt-get -s line {line_no}: unreadable Inst line {line[:100]!r}")
            old, new = found.group("old"), found.group("new")
            action = "install" if old is None else "downgrade" if compare_versions(new, old) < 0 else "upgrade"
            changes.append(Change(found.group("name"), found.group("arch"), old, new, action))
        elif line.startswith("Remv "):
            found = _REMV.match(line)
            if found is None:
                raise JobSpecError(f"apt-get -s line {line_no}: unreadable Remv line {line[:100]!r}")
            name = found.group("name")
            changes.append(Change(name, name.partition(":")[2], found.group("old"), None, "remove"))
    if not changes and not saw_apt:
        raise JobSpecError("not apt-get output: no 'Reading package lists' and no Inst or Remv lines")
    return changes


def parse_dnf_assumeno(text: str) -> list[Change]:
    """The packages a `dnf --assumeno ...` transaction would touch, from its transaction table.

    Best effort: dnf prints the new version only, so `old` is None (the runner reads installed
    versions separately), and for removals the version shown is the installed one. A long name
    that dnf wraps onto its own line is joined with the next line.
    """
    changes: list[Change] = []
    action = ""
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped in _DNF_SECTIONS:
            action, pending = _DNF_SECTIONS[stripped], ""
            continue
        if not line.startswith(" ") or not stripped or stripped.startswith("="):
            action = "" if stripped.startswith(("Transaction Summary", "Skipping")) else action
            continue
        if not action:
            continue
        words = (pending + " " + stripped).split() if pending else stripped.split()
        if len(words) == 1:
            pending = words[0]
            continue
        pending = ""
        if len(words) < 4:
            continue
        name, arch, version = words[0], words[1], words[2]
        if action == "remove":
            changes.append(Change(name, arch, version, None, action))
        else:
            changes.append(Change(name, arch, None, version, action))
    return changes
