"""Pending updates on Debian and Ubuntu, from apt's own view: simulated dist-upgrade, policy and candidates.

Commands (all read-only, none needs root): `apt-get -s -o Debug::NoLocking=1 dist-upgrade`,
`apt-cache policy`, `apt-cache show --no-all-versions NAME=VERSION...`. Package names and versions
come from apt's output and go back to apt only as argv items after `--`, never through a shell.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from patchday.collectors import CollectorError
from patchday.collectors.dpkg import iter_stanzas
from patchday.collectors.host import Host
from patchday.collectors.updates import PendingUpdate

# Debian policy 5.6.1 (name), an optional multiarch qualifier; version characters per deb-version(7)
PACKAGE_NAME = re.compile(r"[a-z0-9][a-z0-9+.-]*(?::[a-z0-9-]+)?")
VERSION = re.compile(r"[0-9][0-9A-Za-z.+~:-]*")
_INST = re.compile(
    r"^Inst (?P<name>\S+)(?: \[(?P<installed>[^\]]*)\])? "
    r"\((?P<candidate>\S+)(?: (?P<releases>[^\[]*?))? \[(?P<arch>[^\]]+)\]\)(?: \[[^\]]*\])*\s*$"
)
_UPGRADABLE = re.compile(
    r"^(?P<name>[^/\s]+)/(?P<suites>\S+) (?P<candidate>\S+) (?P<arch>\S+)"
    r" \[upgradable from: (?P<installed>[^\]]+)\]\s*$"
)
_SOURCE = re.compile(r"^(?P<name>\S+)(?:\s+\((?P<version>[^)]+)\))?\s*$")
_SECURITY_LABELS = ("Debian-Security", "UbuntuESM", "UbuntuESMApps")


@dataclass(frozen=True)
class Release:
    """Where a candidate version comes from: a release file's Label, Version and Archive (suite)."""

    label: str
    version: str
    archive: str


@dataclass(frozen=True)
class Candidate:
    """What `apt-cache show` says about a candidate version: its source package and .deb size in bytes."""

    source: str
    source_version: str
    size: int


@dataclass(frozen=True)
class ReleaseInfo:
    """A release file as `apt-cache policy` describes it (o=, a=, n=, l=)."""

    origin: str
    archive: str
    codename: str
    label: str


def is_security_release(label: str, archive: str, codename: str = "") -> bool:
    """True for Debian's and Ubuntu's security archives (bookworm-security, jammy-security, ESM)."""
    if label.startswith(_SECURITY_LABELS):
        return True
    return "-security" in archive or "-security" in codename or archive.endswith("/updates")


def parse_releases(text: str) -> list[Release]:
    """The `Label:Version/Archive, ...` list apt prints after a simulated install's candidate version."""
    releases = []
    for item in text.split(", "):
        item = item.strip()
        if not item:
            continue
        label, colon, rest = item.partition(":")
        if not colon:
            label, rest = "", item
        version, slash, archive = rest.partition("/")
        if not slash:
            version, archive = "", rest
        releases.append(Release(label, version, archive))
    return releases


def parse_simulation(text: str, origin: str = "apt-get -s dist-upgrade") -> list[PendingUpdate]:
    """Upgrades and new installs from `apt-get -s dist-upgrade` output (its `Inst` lines).

    `origin` and `suite` of each update are the Label and Archive of its security release when it
    has one, else of its first release. Raises CollectorError naming `origin` for an unreadable
    `Inst` line or output that is not apt's.
    """
    updates: list[PendingUpdate] = []
    saw_apt = False
    for line_no, line in enumerate(text.splitlines(), start=1):
        if line.startswith(("Reading package lists", "Building dependency tree", "NOTE: This is only a simulation")):
            saw_apt = True
        if not line.startswith("Inst "):
            continue
        found = _INST.match(line)
        if found is None:
            raise CollectorError(f"{origin} line {line_no}: unreadable Inst line {line[:80]!r}")
        releases = parse_releases(found.group("releases") or "")
        chosen = next((r for r in releases if is_security_release(r.label, r.archive)), None)
        if chosen is None and releases:
            chosen = releases[0]
        name, _, qualifier = found.group("name").partition(":")
        updates.append(
            PendingUpdate(
                manager="apt",
                name=name,
                arch=qualifier or found.group("arch"),
                installed=found.group("installed") or "",
                candidate=found.group("candidate"),
                origin=chosen.label if chosen else "",
                suite=chosen.archive if chosen else "",
                security=chosen is not None and is_security_release(chosen.label, chosen.archive),
            )
        )
    if not updates and not saw_apt:
        raise CollectorError(f"{origin} is not apt-get output: no 'Reading package lists' and no Inst lines")
    return updates


def parse_list_upgradable(text: str, origin: str = "apt list --upgradable") -> list[PendingUpdate]:
    """Upgrades from `apt list --upgradable` (`name/suite1,suite2 candidate arch [upgradable from: v]`).

    This listing names suites but not release labels, so `origin` is "" and `security` comes from
    the suite names alone.
    """
    updates: list[PendingUpdate] = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith(("Listing...", "WARNING:", "N: ")):
            continue
        found = _UPGRADABLE.match(line)
        if found is None:
            raise CollectorError(f"{origin} line {line_no}: expected 'name/suite version arch [upgradable from: v]'")
        suites = found.group("suites").split(",")
        chosen = next((s for s in suites if is_security_release("", s)), suites[0])
        updates.append(
            PendingUpdate(
                manager="apt",
                name=found.group("name"),
                arch=found.group("arch"),
                installed=found.group("installed"),
                candidate=found.group("candidate"),
                suite=chosen,
                security=is_security_release("", chosen),
            )
        )
    return updates


def parse_policy(text: str, origin: str = "apt-cache policy") -> list[ReleaseInfo]:
    """The release files of `apt-cache policy` (its `release o=...,a=...,n=...,l=...` lines)."""
    releases = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("release "):
            continue
        fields = {}
        for item in line[len("release ") :].split(","):
            key, sep, value = item.partition("=")
            if sep:
                fields[key.strip()] = value.strip()
        if fields.get("a") == "now":
            continue
        releases.append(ReleaseInfo(fields.get("o", ""), fields.get("a", ""), fields.get("n", ""), fields.get("l", "")))
    if not releases and "Package files:" not in text:
        raise CollectorError(f"{origin} is not apt-cache policy output: no 'Package files:' section")
    return releases


def parse_show(text: str, origin: str = "apt-cache show") -> dict[tuple[str, str], Candidate]:
    """(package, version) -> its source package, source version and size, from `apt-cache show` stanzas."""
    sources: dict[tuple[str, str], Candidate] = {}
    try:
        for line_no, fields in iter_stanzas(text):
            name, version = fields.get("Package"), fields.get("Version")
            if not name or not version:
                raise CollectorError(f"line {line_no}: stanza without Package: or Version:")
            source, source_version = name, version
            if "Source" in fields:
                found = _SOURCE.match(fields["Source"])
                if found is None:
                    raise CollectorError(f"line {line_no}: malformed Source: {fields['Source'][:60]!r}")
                source, source_version = found.group("name"), found.group("version") or version
            size = fields.get("Size", "0")
            sources[(name, version)] = Candidate(source, source_version, int(size) if size.isdigit() else 0)
    except CollectorError as exc:
        raise CollectorError(f"{origin} output is not package stanzas: {exc}") from None
    return sources


def with_codenames(updates: list[PendingUpdate], releases: list[ReleaseInfo]) -> list[PendingUpdate]:
    """Updates whose suite (an archive such as oldstable-security) is replaced by its codename (bookworm-security)."""
    codenames = {r.archive: r.codename for r in releases if r.archive and r.codename}
    return [replace(u, suite=codenames.get(u.suite, u.suite)) for u in updates]


def with_sources(updates: list[PendingUpdate], candidates: dict[tuple[str, str], Candidate]) -> list[PendingUpdate]:
    """Updates with their candidate's source package and version filled in where `candidates` knows them."""
    result = []
    for update in updates:
        found = candidates.get((update.name, update.candidate))
        result.append(replace(update, source=found.source, source_version=found.source_version) if found else update)
    return result


def is_safe_argument(name: str, version: str) -> bool:
    """True when `name=version` can go to apt as data: a valid package name and version, no option look-alike."""
    return PACKAGE_NAME.fullmatch(name) is not None and VERSION.fullmatch(version) is not None


def apt_options(host: Host) -> list[str]:
    """Options that point apt at the host's root (none for the live system)."""
    # apt resolves its state, lists and status file below Dir, which is how it inspects a chroot.
    return [] if host.is_live else ["-o", f"Dir={host.root}"]


def collect_pending(host: Host, problems: list[str]) -> tuple[list[PendingUpdate], dict[tuple[str, str], Candidate]]:
    """Pending apt updates with suites, security flags and candidate sources, and what apt-cache said of each.

    Raises CollectorError when apt-get cannot simulate; lesser failures (policy, sources) are
    appended to `problems` and leave those fields as apt-get alone gives them.
    """
    candidates: dict[tuple[str, str], Candidate] = {}
    options = apt_options(host)
    simulation = host.run_ok(["apt-get", "-s", "-o", "Debug::NoLocking=1", *options, "dist-upgrade"], 300)
    updates = parse_simulation(simulation)
    try:
        updates = with_codenames(updates, parse_policy(host.run_ok(["apt-cache", *options, "policy"], 120)))
    except CollectorError as exc:
        problems.append(f"suite codenames unknown: {exc}")
    wanted = sorted({f"{u.name}={u.candidate}" for u in updates if is_safe_argument(u.name, u.candidate)})
    refused = sorted({u.name for u in updates if not is_safe_argument(u.name, u.candidate)})
    if refused:
        problems.append(f"not asked about packages with unexpected names or versions: {', '.join(refused)[:300]}")
    if wanted:
        try:
            done = host.run(["apt-cache", *options, "show", "--no-all-versions", "--", *wanted], 300, None)
            candidates = parse_show(done.stdout)
            updates = with_sources(updates, candidates)
        except CollectorError as exc:
            problems.append(f"candidate source packages unknown: {exc}")
        missing = sorted(u.name for u in updates if not u.source)
        if missing:
            problems.append(f"apt-cache show did not name the source of: {', '.join(missing)[:300]}")
    return updates, candidates
