"""OSV records as patchday's advisories: parsing the schema, ecosystems, and affected-range evaluation.

Follows the OSV schema 1.x (https://ossf.github.io/osv-schema/). Input is a decoded JSON
mapping (feeds do the I/O); output is frozen core values. A record that does not fit raises
InvalidAdvisory naming the record and the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Final

from patchday.core.errors import InvalidInput, InvalidVersion
from patchday.core.versions import VersionScheme

CVE_ID: Final = re.compile(r"^CVE-\d{4}-\d{4,}$")


class InvalidAdvisory(InvalidInput):
    """An OSV record does not fit the schema; the message names the record id and the field."""

    code = "invalid_advisory"


class RangeType(StrEnum):
    ECOSYSTEM = "ECOSYSTEM"
    SEMVER = "SEMVER"
    GIT = "GIT"


@dataclass(frozen=True, slots=True)
class AffectedRange:
    """One affected interval: introduced <= v, and v < fixed or v <= last_affected (or unbounded).

    introduced None means "0" (every version from the first); fixed None and last_affected None
    together mean no fix has shipped. `limit` further bounds the interval (v < limit).
    """

    introduced: str | None
    fixed: str | None = None
    last_affected: str | None = None
    limit: str | None = None

    @property
    def has_fix(self) -> bool:
        return self.fixed is not None

    def contains(self, version: str, scheme: VersionScheme) -> bool:
        """True when `version` is inside this interval under `scheme`; raises InvalidVersion."""
        if self.introduced is not None and scheme.compare(version, self.introduced) < 0:
            return False
        if self.limit is not None and scheme.compare(version, self.limit) >= 0:
            return False
        if self.fixed is not None:
            return scheme.compare(version, self.fixed) < 0
        if self.last_affected is not None:
            return scheme.compare(version, self.last_affected) <= 0
        return True


@dataclass(frozen=True, slots=True)
class AffectedPackage:
    """A package an advisory names in one ecosystem, with its affected ranges and explicit versions."""

    ecosystem: str
    name: str
    ranges: tuple[AffectedRange, ...]
    versions: frozenset[str] = frozenset()
    purl: str | None = None

    @property
    def versions_to_match(self) -> frozenset[str]:
        """The explicit versions that count on their own: only when no comparable range exists.

        osv.dev derives `versions` from the ECOSYSTEM/SEMVER ranges when there are any (PyPI
        records list hundreds), so matching the ranges is exact and the list adds nothing but
        cost; with GIT-only ranges the list is all there is.
        """
        return frozenset() if self.ranges else self.versions


@dataclass(frozen=True, slots=True)
class Severity:
    """A severity statement as the record gives it: type (CVSS_V3, CVSS_V4, Ubuntu, ...) and score text."""

    type: str
    score: str


@dataclass(frozen=True, slots=True)
class Advisory:
    """One OSV record: its identifiers, texts, severity statements and affected packages."""

    id: str
    modified: datetime | None
    published: datetime | None
    withdrawn: datetime | None
    aliases: tuple[str, ...]
    upstream: tuple[str, ...]
    related: tuple[str, ...]
    summary: str
    details: str
    severity: tuple[Severity, ...]
    affected: tuple[AffectedPackage, ...]
    database_specific: Mapping[str, object] = field(default_factory=dict)

    @property
    def is_withdrawn(self) -> bool:
        return self.withdrawn is not None

    @property
    def cve_ids(self) -> tuple[str, ...]:
        """CVE ids this record is about: its id, aliases, upstream and related ids, in order, once each."""
        seen: dict[str, None] = {}
        for ident in (self.id, *self.aliases, *self.upstream, *self.related):
            if CVE_ID.match(ident):
                seen.setdefault(ident, None)
        return tuple(seen)


# -- parsing -------------------------------------------------------------------------------------------


def _text(record: Mapping[str, object], key: str, ident: str, *, required: bool = False) -> str:
    value = record.get(key)
    if value is None:
        if required:
            raise InvalidAdvisory(f"OSV record {ident}: missing {key!r}", field=key)
        return ""
    if not isinstance(value, str):
        raise InvalidAdvisory(f"OSV record {ident}: {key!r} must be a string", field=key)
    return value


def _strings(record: Mapping[str, object], key: str, ident: str) -> tuple[str, ...]:
    value = record.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidAdvisory(f"OSV record {ident}: {key!r} must be a list of strings", field=key)
    return tuple(value)


def _time(record: Mapping[str, object], key: str, ident: str) -> datetime | None:
    value = record.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidAdvisory(f"OSV record {ident}: {key!r} must be an RFC 3339 time", field=key)
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidAdvisory(f"OSV record {ident}: {key!r} is not an RFC 3339 time: {value!r}", field=key) from None


def _ranges(raw: object, ident: str, where: str, scheme: VersionScheme | None) -> tuple[AffectedRange, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise InvalidAdvisory(f"OSV record {ident}: {where}.ranges must be a list", field="ranges")
    ranges: list[AffectedRange] = []
    for index, item in enumerate(raw):
        if not isinstance(item, Mapping):
            raise InvalidAdvisory(f"OSV record {ident}: {where}.ranges[{index}] must be an object", field="ranges")
        kind = item.get("type")
        if kind not in {t.value for t in RangeType}:
            raise InvalidAdvisory(f"OSV record {ident}: {where}.ranges[{index}].type {kind!r} is unknown", field="type")
        if kind == RangeType.GIT:
            continue  # commit ranges cannot be compared with installed package versions
        ranges.extend(ranges_from_events(item.get("events"), ident, f"{where}.ranges[{index}]", scheme))
    return tuple(ranges)


def _in_version_order(events: list[object], scheme: VersionScheme) -> list[object]:
    """Events sorted by version, as the OSV spec evaluates them ("0" first; listed order among equals).

    When a version does not parse, the listed order is kept (matching will refuse that range anyway).
    """

    def key(event: object) -> tuple[bytes, int]:
        if not isinstance(event, Mapping):
            raise ValueError("not an event")
        ((kind, version),) = event.items()  # ValueError unless exactly one key
        # At one version a closing event goes first: "fixed in X, introduced again in X" is one run.
        return (b"" if version == "0" else scheme.sort_key(str(version))), (1 if kind == "introduced" else 0)

    try:
        return sorted(events, key=key)
    except (InvalidVersion, ValueError):
        return events


def ranges_from_events(
    events: object, ident: str, where: str, scheme: VersionScheme | None = None
) -> list[AffectedRange]:
    """Turn one OSV range's events into intervals.

    Events are put in version order first when the ecosystem's scheme is known (OSV's rule); each
    introduced opens an interval that the next fixed/last_affected closes; limit bounds them all.
    """
    if not isinstance(events, list) or not events:
        raise InvalidAdvisory(f"OSV record {ident}: {where}.events must be a non-empty list", field="events")
    if scheme is not None:
        events = _in_version_order(events, scheme)
    intervals: list[AffectedRange] = []
    limit: str | None = None
    opened: str | None = None
    is_open = saw_introduced = False
    for index, event in enumerate(events):
        if not isinstance(event, Mapping) or len(event) != 1:
            raise InvalidAdvisory(
                f"OSV record {ident}: {where}.events[{index}] must have exactly one key", field="events"
            )
        ((kind, version),) = event.items()
        if not isinstance(version, str) or not version:
            raise InvalidAdvisory(
                f"OSV record {ident}: {where}.events[{index}].{kind} must be a version", field="events"
            )
        if kind == "introduced":
            saw_introduced = True
            if not is_open:  # introduced while already affected changes nothing (OSV's evaluation)
                opened, is_open = (None if version == "0" else version), True
        elif kind in {"fixed", "last_affected"}:
            if not is_open:
                continue  # closing what is not open changes nothing
            intervals.append(
                AffectedRange(opened, fixed=version if kind == "fixed" else None,
                              last_affected=version if kind == "last_affected" else None)
            )  # fmt: skip
            is_open = False
        elif kind == "limit":
            limit = version
        else:
            raise InvalidAdvisory(
                f"OSV record {ident}: {where}.events[{index}] has unknown event {kind!r}", field="events"
            )
    if not saw_introduced:
        raise InvalidAdvisory(f"OSV record {ident}: {where}.events has no introduced event", field="events")
    if is_open:
        intervals.append(AffectedRange(opened))
    if limit is not None:
        intervals = [AffectedRange(r.introduced, r.fixed, r.last_affected, limit) for r in intervals]
    return intervals


def _affected(raw: object, ident: str) -> tuple[AffectedPackage, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise InvalidAdvisory(f"OSV record {ident}: 'affected' must be a list", field="affected")
    packages: list[AffectedPackage] = []
    for index, item in enumerate(raw):
        where = f"affected[{index}]"
        if not isinstance(item, Mapping):
            raise InvalidAdvisory(f"OSV record {ident}: {where} must be an object", field="affected")
        package = item.get("package")
        if not isinstance(package, Mapping):
            continue  # OSV allows affected entries without a package (commit-only); nothing to match
        ecosystem, name = package.get("ecosystem"), package.get("name")
        if not isinstance(ecosystem, str) or not isinstance(name, str) or not ecosystem or not name:
            raise InvalidAdvisory(f"OSV record {ident}: {where}.package needs ecosystem and name", field="package")
        versions = item.get("versions") or []
        if not isinstance(versions, list) or not all(isinstance(v, str) for v in versions):
            raise InvalidAdvisory(f"OSV record {ident}: {where}.versions must be a list of strings", field="versions")
        purl = package.get("purl")
        packages.append(
            AffectedPackage(
                ecosystem=ecosystem,
                name=name,
                ranges=_ranges(item.get("ranges"), ident, where, scheme_for(ecosystem)),
                versions=frozenset(versions),
                purl=purl if isinstance(purl, str) else None,
            )
        )
    return tuple(packages)


def _severity(raw: object, ident: str) -> tuple[Severity, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise InvalidAdvisory(f"OSV record {ident}: 'severity' must be a list", field="severity")
    found: list[Severity] = []
    for item in raw:
        if isinstance(item, Mapping) and isinstance(item.get("type"), str) and isinstance(item.get("score"), str):
            found.append(Severity(str(item["type"]), str(item["score"])))
    return tuple(found)


def parse_advisory(record: Mapping[str, object]) -> Advisory:
    """An Advisory from one decoded OSV record; raises InvalidAdvisory naming the record and field."""
    if not isinstance(record, Mapping):
        raise InvalidAdvisory("an OSV record must be a JSON object")
    ident = _text(record, "id", "<no id>", required=True)
    specific = record.get("database_specific")
    return Advisory(
        id=ident,
        modified=_time(record, "modified", ident),
        published=_time(record, "published", ident),
        withdrawn=_time(record, "withdrawn", ident),
        aliases=_strings(record, "aliases", ident),
        upstream=_strings(record, "upstream", ident),
        related=_strings(record, "related", ident),
        summary=_text(record, "summary", ident),
        details=_text(record, "details", ident),
        severity=_severity(record.get("severity"), ident),
        affected=_affected(record.get("affected"), ident),
        database_specific=specific if isinstance(specific, Mapping) else {},
    )


# -- ecosystems ----------------------------------------------------------------------------------------

DPKG_ECOSYSTEMS: Final = frozenset({"Debian", "Ubuntu"})
RPM_ECOSYSTEMS: Final = frozenset(
    {"Red Hat", "Rocky Linux", "AlmaLinux", "SUSE", "openSUSE", "Fedora", "Mageia", "openEuler", "Azure Linux"}
)
SEMVER_ECOSYSTEMS: Final = frozenset({"npm", "Go", "crates.io", "Hex", "Pub", "SwiftURL"})


def ecosystem_family(ecosystem: str) -> str:
    """The ecosystem's name without its release: "Debian:12" -> "Debian", "Ubuntu:Pro:22.04:LTS" -> "Ubuntu"."""
    return ecosystem.split(":", 1)[0]


def scheme_name_for(ecosystem: str) -> str | None:
    """The version scheme an ecosystem uses ('dpkg', 'rpm', 'apk', 'pep440', 'semver'), None when unknown."""
    family = ecosystem_family(ecosystem)
    if family in DPKG_ECOSYSTEMS:
        return "dpkg"
    if family in RPM_ECOSYSTEMS:
        return "rpm"
    if family == "Alpine":
        return "apk"
    if family == "PyPI":
        return "pep440"
    if family in SEMVER_ECOSYSTEMS:
        return "semver"
    return None


def scheme_for(ecosystem: str) -> VersionScheme | None:
    """The VersionScheme for an ecosystem, None when patchday does not know how it orders versions."""
    name = scheme_name_for(ecosystem)
    if name is None:
        return None
    from importlib import import_module

    module = import_module(f"patchday.core.versions.{name}")
    scheme: VersionScheme = module.SCHEME
    return scheme


def ecosystems_of_os(os_id: str, version_id: str, id_like: Sequence[str] = ()) -> tuple[str, ...]:
    """OSV ecosystem names that describe an operating system given its os-release ID and VERSION_ID.

    Debian 12 -> ("Debian:12",); Ubuntu 22.04 -> ("Ubuntu:22.04:LTS", "Ubuntu:Pro:22.04:LTS");
    Alpine 3.20.3 -> ("Alpine:v3.20",); Rocky 9.4 -> ("Rocky Linux:9",); AlmaLinux 9.2 -> ("AlmaLinux:9",).
    Unknown systems give ().
    """
    major = version_id.split(".")[0]
    match os_id:
        case "debian":
            return (f"Debian:{major}",) if major.isdigit() else ()
        case "ubuntu":
            lts = version_id.endswith(".04") and int(major or 0) % 2 == 0
            suffix = ":LTS" if lts else ""
            return (f"Ubuntu:{version_id}{suffix}", f"Ubuntu:Pro:{version_id}{suffix}")
        case "alpine":
            parts = version_id.split(".")
            return (f"Alpine:v{parts[0]}.{parts[1]}",) if len(parts) >= 2 else ()
        case "rocky":
            return (f"Rocky Linux:{major}",)
        case "almalinux":
            return (f"AlmaLinux:{major}",)
        case _:
            return ()


def affected_range_for(package: AffectedPackage, version: str, scheme: VersionScheme) -> AffectedRange | None:
    """The range of `package` that contains `version` (an explicit listed version counts as a range
    without a known fix), or None when `version` is not affected. Raises InvalidVersion."""
    scheme.validate(version)
    for affected in package.ranges:
        if affected.contains(version, scheme):
            return affected
    for listed in package.versions_to_match:
        try:
            if scheme.compare(version, listed) == 0:
                return AffectedRange(listed, last_affected=listed)
        except InvalidVersion:
            continue  # a malformed listed version in the feed cannot equal a valid installed one
    return None
