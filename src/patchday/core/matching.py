"""In-memory matching: which installed packages fall inside which advisories' affected ranges.

Used by the one-shot `patchday scan`; the server's database matcher must give the same answer
(a test runs both on the same data). Each distinct (package name, version) is evaluated once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from patchday.core.errors import InvalidVersion
from patchday.core.osv import Advisory, AffectedPackage, affected_range_for, scheme_for
from patchday.core.versions import VersionScheme


@dataclass(frozen=True, slots=True)
class InstalledPackage:
    """A package on a host. Distribution advisories name source packages: `source_name` and
    `source_version` are dpkg's Source: (or rpm's source RPM, apk's origin); None means "same as binary"."""

    name: str
    version: str
    ecosystem: str
    source_name: str | None = None
    source_version: str | None = None
    arch: str | None = None

    @property
    def matched_name(self) -> str:
        return self.source_name or self.name

    @property
    def matched_version(self) -> str:
        return self.source_version or self.version


@dataclass(frozen=True, slots=True)
class Match:
    """An installed package inside one advisory's affected range; `fixed_version` None: no fix yet."""

    package: InstalledPackage
    advisory: Advisory
    fixed_version: str | None


@dataclass(frozen=True, slots=True)
class Skipped:
    """A package that could not be evaluated, and why (a version that does not parse, ...)."""

    package: InstalledPackage
    reason: str


@dataclass(frozen=True, slots=True)
class MatchReport:
    matches: tuple[Match, ...]
    skipped: tuple[Skipped, ...]
    unknown_ecosystems: tuple[str, ...]
    evaluated_versions: int  # distinct (name, version) pairs compared against ranges


def index_advisories(
    advisories: Iterable[Advisory], ecosystems: Mapping[str, str]
) -> dict[tuple[str, str], list[tuple[Advisory, AffectedPackage]]]:
    """(host ecosystem, package name) -> the advisories naming it, withdrawn records left out.

    `ecosystems` maps each advisory ecosystem that applies to the host ecosystem it applies to
    (for an Ubuntu 22.04 host both "Ubuntu:22.04:LTS" and "Ubuntu:Pro:22.04:LTS" map to the first).
    """
    index: dict[tuple[str, str], list[tuple[Advisory, AffectedPackage]]] = {}
    for advisory in advisories:
        if advisory.is_withdrawn:
            continue
        for affected in advisory.affected:
            host_ecosystem = ecosystems.get(affected.ecosystem)
            if host_ecosystem is not None:
                index.setdefault((host_ecosystem, affected.name), []).append((advisory, affected))
    return index


def _evaluate(
    candidates: Sequence[tuple[Advisory, AffectedPackage]], version: str, scheme: VersionScheme
) -> list[tuple[Advisory, str | None]]:
    hits: list[tuple[Advisory, str | None]] = []
    for advisory, affected in candidates:
        found = affected_range_for(affected, version, scheme)
        if found is not None:
            hits.append((advisory, found.fixed))
    return hits


def match_inventory(
    packages: Iterable[InstalledPackage],
    index: Mapping[tuple[str, str], Sequence[tuple[Advisory, AffectedPackage]]],
) -> MatchReport:
    """Every (package, advisory) whose affected range contains the installed (source) version."""
    matches: list[Match] = []
    skipped: list[Skipped] = []
    unknown: dict[str, None] = {}
    cache: dict[tuple[str, str, str], list[tuple[Advisory, str | None]] | str] = {}
    for package in packages:
        scheme = scheme_for(package.ecosystem)
        if scheme is None:
            unknown.setdefault(package.ecosystem, None)
            continue
        candidates = index.get((package.ecosystem, package.matched_name))
        if not candidates:
            continue
        key = (package.ecosystem, package.matched_name, package.matched_version)
        if key not in cache:
            try:
                cache[key] = _evaluate(candidates, package.matched_version, scheme)
            except InvalidVersion as exc:
                cache[key] = str(exc)
        outcome = cache[key]
        if isinstance(outcome, str):
            skipped.append(Skipped(package, outcome))
            continue
        matches.extend(Match(package, advisory, fixed) for advisory, fixed in outcome)
    return MatchReport(tuple(matches), tuple(skipped), tuple(unknown), len(cache))
