"""The Debian security tracker's advisory lists (`data/DSA/list`, `data/DLA/list`, plain or gzipped) as Advisories.

The format, as the tracker's own parser (lib/python/sectracker/parsers.py) reads it: an advisory starts with a
header line `[12 Feb 2025] DSA-5865-1 webkit2gtk - security update`; the lines after it start with whitespace and
are annotations: `{CVE-2025-24143 CVE-2025-24150}` (cross-references), `[bookworm] - webkit2gtk 2.46.6-1~deb12u1`
(the release, the source package and the version that fixes it, optionally followed by `(urgency; bug #N)`),
`[woody] - vlc <not-affected> (free text)` (a pseudo-version instead of a version), and `NOTE:` / `TODO:` /
`NOT-FOR-US:` text. Blank lines are skipped.

Each advisory becomes one Advisory: id DSA-NNNN-N (old ones have no -N), published = the header date at 00:00 UTC,
modified None (the lists carry no edit time, and entries do get edited, so importers must not skip them as
unchanged), summary = the header text after the id ("webkit2gtk - security update"), upstream = the CVE ids in
braces (other cross-references go to `related`), and one AffectedPackage per package line: ecosystem
"Debian:<release number>" (bookworm -> Debian:12; see DEBIAN_RELEASES), the source package name, and a purl
`pkg:deb/debian/<source>?arch=source&distro=<codename>`.

How each package line maps (the tracker's meaning first):
  <version>        fixed in that version                          -> range introduced 0, fixed <version>
  <not-affected>   the release's version never had the flaw       -> no entry (the release is not affected)
  <removed>        the package is no longer in the release        -> no entry
  <itp>            the package is not in Debian yet               -> no entry
  <unfixed>, or no version at all: vulnerable, no fix yet         -> range introduced 0, no fix
  <no-dsa>         vulnerable; minor, so no advisory (maybe a point release later)   -> range introduced 0, no fix
  <postponed>      vulnerable; the fix waits for a later update                      -> range introduced 0, no fix
  <ignored>        vulnerable; the team decided not to fix it in this release        -> range introduced 0, no fix
  <end-of-life>    vulnerable; the release no longer gets security support for it    -> range introduced 0, no fix
  <undetermined>   not yet known whether the release is affected                     -> range introduced 0, no fix
Every "no fix" entry keeps its marker in `database_specific["markers"]` ("Debian:11/virtualbox": "end-of-life"),
so findings can say "end of life" or "won't be fixed" instead of "no fix yet". Caveat: a fix that ships later
in a point release is recorded only in the tracker's data/CVE/list, not here, so such entries stay unfixed.

Errors: a line that does not fit the grammar (an unknown header, an annotation before the first header, a
package line without a release, an unknown pseudo-version or release codename, empty braces, a package named
twice for one release) raises FeedUnreadable naming the file and the line number; nothing is returned. A package
line whose version is not a valid dpkg version (DSA-166-1 in the real list reads
`[woody] - kernel-image-2.4.17-ia64 kernel-image-2.4.17-ia64`) is left out and reported, to `problems` when the
caller passes a list, logged as a warning otherwise: matching could not use it, and refusing the whole list over
one 2002 line would leave every current advisory out.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from patchday.core.errors import FeedUnreadable, InvalidVersion
from patchday.core.osv import CVE_ID, Advisory, AffectedPackage, AffectedRange
from patchday.core.versions.dpkg import SCHEME as DPKG
from patchday.feeds.files import read_limited

SOURCE: Final = "Debian security tracker"
MAX_LIST_BYTES: Final = 64 * 1024 * 1024  # the DSA list is about 1 MB

# Release codenames -> the number in OSV's "Debian:<n>" ecosystem (patchday.core.osv.ecosystems_of_os gives a host's
# major version: Debian 12.11 -> "Debian:12"). Before etch the numbers were 3.0 and 3.1, which share a major.
DEBIAN_RELEASES: Final[Mapping[str, str]] = {
    "buzz": "1.1",
    "rex": "1.2",
    "bo": "1.3",
    "hamm": "2.0",
    "slink": "2.1",
    "potato": "2.2",
    "woody": "3.0",
    "sarge": "3.1",
    "etch": "4",
    "lenny": "5",
    "squeeze": "6",
    "wheezy": "7",
    "jessie": "8",
    "stretch": "9",
    "buster": "10",
    "bullseye": "11",
    "bookworm": "12",
    "trixie": "13",
    "forky": "14",
    "duke": "15",
}
_MONTHS: Final = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}  # not strptime("%b"): that follows the process locale
_NO_ENTRY: Final = frozenset({"not-affected", "removed", "itp"})
_NO_FIX: Final = frozenset({"unfixed", "no-dsa", "postponed", "ignored", "end-of-life", "undetermined"})

_HEADER: Final = re.compile(r"^\[(\d\d) ([A-Z][a-z]{2}) (\d{4})\] ((?:DSA|DLA)-\d+(?:-\d+)?)(?:\s+(.*?))?\s*$")
_PACKAGE: Final = re.compile(
    r"^(?:\[(?P<release>[a-z]+)\]\s+)?-\s+(?P<package>[A-Za-z0-9][A-Za-z0-9:.+-]*)"
    r"(?:\s+(?:<(?P<marker>[a-z-]+)>|(?P<version>[A-Za-z0-9:.+~-]+)))?"
    r"(?:\s+\((?P<note>.*)\))?$"
)
_XREF: Final = re.compile(r"^\{(.*)\}$")
_TEXT: Final = re.compile(r"^(NOTE|TODO|NOT-FOR-US):\s*(.*)$")
_FLAG: Final = re.compile(r"^(RESERVED|REJECTED)$")

_log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Draft:
    """One advisory while its annotation lines are read."""

    ident: str
    published: datetime
    summary: str
    line: int
    upstream: list[str] = field(default_factory=list)
    related: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    markers: dict[str, str] = field(default_factory=dict)
    affected: list[AffectedPackage] = field(default_factory=list)
    seen: set[tuple[str, str]] = field(default_factory=set)

    def build(self) -> Advisory:
        specific: dict[str, object] = {"source": SOURCE}
        if self.notes:
            specific["notes"] = list(self.notes)
        if self.markers:
            specific["markers"] = dict(self.markers)
        return Advisory(
            id=self.ident,
            modified=None,
            published=self.published,
            withdrawn=None,
            aliases=(),
            upstream=tuple(dict.fromkeys(self.upstream)),
            related=tuple(dict.fromkeys(self.related)),
            summary=self.summary,
            details="",
            severity=(),
            affected=tuple(self.affected),
            database_specific=specific,
        )


class _ListReader:
    """Reads one list line by line; `where` names the file in errors."""

    def __init__(self, where: str, releases: Mapping[str, str], problems: list[str] | None) -> None:
        self.where, self.releases, self.problems = where, releases, problems
        self.advisories: list[Advisory] = []
        self.draft: _Draft | None = None

    def fail(self, number: int, reason: str) -> FeedUnreadable:
        return FeedUnreadable(f"{SOURCE} {self.where}, line {number}: {reason}")

    def report(self, number: int, reason: str) -> None:
        message = f"{SOURCE} {self.where}, line {number}: {reason}"
        if self.problems is None:
            _log.warning("%s", message)
        else:
            self.problems.append(message)

    def finish(self) -> list[Advisory]:
        if self.draft is not None:
            self.advisories.append(self.draft.build())
            self.draft = None
        return self.advisories

    def line(self, number: int, text: str) -> None:
        text = text.rstrip("\r\n")
        if not text.strip():
            return
        if text[0] in " \t":
            if self.draft is None:
                raise self.fail(number, "an annotation before the first advisory header")
            self.annotation(number, text.strip(), self.draft)
        else:
            self.header(number, text)

    def header(self, number: int, text: str) -> None:
        match = _HEADER.match(text)
        if match is None:
            raise self.fail(number, f"not an advisory header ('[DD Mon YYYY] DSA-N-N text'): {text[:120]!r}")
        day, month, year, ident, summary = match.groups()
        try:
            published = datetime(int(year), _MONTHS[month], int(day), tzinfo=UTC)
        except (KeyError, ValueError):
            raise self.fail(number, f"{ident}: {day} {month} {year} is not a date") from None
        self.finish()
        self.draft = _Draft(ident, published, " ".join((summary or "").split()), number)

    def annotation(self, number: int, text: str, draft: _Draft) -> None:
        if match := _XREF.match(text):
            tokens = match.group(1).split()
            if not tokens:
                raise self.fail(number, f"{draft.ident}: empty cross-reference {{}}")
            for token in tokens:
                (draft.upstream if CVE_ID.match(token) else draft.related).append(token)
        elif match := _TEXT.match(text):
            draft.notes.append(f"{match.group(1)}: {match.group(2)}")
        elif _FLAG.match(text):
            draft.notes.append(text)
        elif match := _PACKAGE.match(text):
            self.package(number, match, draft)
        else:
            raise self.fail(number, f"{draft.ident}: not a package, cross-reference or note line: {text[:120]!r}")

    def package(self, number: int, match: re.Match[str], draft: _Draft) -> None:
        codename, name, marker, version = match.group("release", "package", "marker", "version")
        if codename is None:
            raise self.fail(number, f"{draft.ident}: package line for {name} names no [release]")
        release = self.releases.get(codename)
        if release is None:
            raise self.fail(number, f"{draft.ident}: unknown release {codename!r} (not in DEBIAN_RELEASES)")
        if (codename, name) in draft.seen:
            raise self.fail(number, f"{draft.ident}: {name} in {codename} is listed twice")
        draft.seen.add((codename, name))
        ecosystem = f"Debian:{release}"
        if marker is not None and marker not in _NO_ENTRY | _NO_FIX:
            raise self.fail(number, f"{draft.ident}: unknown pseudo-version <{marker}> for {name} in {codename}")
        if marker in _NO_ENTRY:
            return
        if version is not None:
            try:
                DPKG.validate(version)
            except InvalidVersion as exc:
                self.report(number, f"{draft.ident}: left out {name} in {codename}: {exc}")
                return
            ranges = (AffectedRange(None, fixed=version),)
        else:
            draft.markers[f"{ecosystem}/{name}"] = marker or "unfixed"
            ranges = (AffectedRange(None),)
        draft.affected.append(
            AffectedPackage(
                ecosystem=ecosystem,
                name=name,
                ranges=ranges,
                purl=f"pkg:deb/debian/{name}?arch=source&distro={codename}",
            )
        )


def parse_debian_list(
    lines: Iterable[str],
    where: str = "list",
    *,
    releases: Mapping[str, str] = DEBIAN_RELEASES,
    problems: list[str] | None = None,
) -> list[Advisory]:
    """Every advisory in the text of a DSA or DLA list, in list order (see the module docstring for the mapping).
    Raises FeedUnreadable naming `where` and the line number at the first malformed line."""
    reader = _ListReader(where, releases, problems)
    for number, text in enumerate(lines, 1):
        reader.line(number, text)
    return reader.finish()


def read_debian_list(
    path: Path, *, releases: Mapping[str, str] = DEBIAN_RELEASES, problems: list[str] | None = None
) -> list[Advisory]:
    """Every advisory in a DSA or DLA list file (plain text or .gz); all or nothing: raises FeedUnreadable naming
    the file and line. `releases` maps codenames to release numbers, for codenames newer than this module."""
    raw = read_limited(path, SOURCE, MAX_LIST_BYTES)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise FeedUnreadable(f"{SOURCE} file {path}, line {line}: not UTF-8 text") from None
    if text.lstrip()[:1] == "<":
        raise FeedUnreadable(f"{SOURCE} file {path} is an HTML page, not a DSA/DLA list (an error page saved instead?)")
    return parse_debian_list(text.split("\n"), f"file {path}", releases=releases, problems=problems)
