"""The accuracy gate (#6): patchday's open findings on a real Debian 12 host equal an independent evaluation.

The evaluation here shares no code with patchday's matcher: it reads the dpkg status file and the advisories'
raw text itself (OSV JSON, the security tracker's DSA/DLA lists) and decides each (installed source version,
affected entry) pair with the real `dpkg --compare-versions`, under OSV's range semantics. Any false positive or
miss fails, with a summary. The classes of advisory entries left out on purpose are listed in
docs/prioritization.md and counted in `Evaluation.excluded`.
"""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from patchday.advisories import feed_imports
from patchday.advisories.models import FeedRun
from patchday.inventory.ingest import store_document
from patchday.inventory.models import ManagementMode
from tests.conftest import SYSTEM_ACTOR
from tests.support.documents import document
from tests.support.fleet import FIXTURES, host_at, real_host

Finding = tuple[str, str, str]  # (advisory id, source package, installed source version)


def open_findings_of(host_name: str) -> set[Finding]:
    """patchday's open findings on a host, as (advisory id, source package, installed source version):
    the findings ledger's open, advisory-backed findings, each expanded into the advisories behind it."""
    from patchday.findings.models import Finding as LedgerFinding

    rows = LedgerFinding.objects.filter(host__name=host_name, status="open", confidence="advisory")
    return {
        (advisory, package, version)
        for advisories, package, version in rows.values_list("advisory_ids", "package", "installed_version")
        for advisory in advisories
    }


pytestmark = pytest.mark.django_db
ECOSYSTEM = "Debian:12"
CODENAME = "bookworm"
OSV_FEED = FIXTURES / "feeds" / "debian-bookworm-osv-2026-08-21.json.gz"
TRACKER_LISTS = (
    FIXTURES / "feeds" / "debian" / "security-tracker-DSA-list-2025-02-13-excerpt.txt",
    FIXTURES / "feeds" / "debian" / "security-tracker-DLA-list-2025-02-13-excerpt.txt",
)
STATUS_FILE = FIXTURES / "host" / "dpkg-status-debian12-2026-11-28.gz"
ARCHIVE_CUT = FIXTURES / "host" / "bookworm-packages-for-host.tsv.gz"
PATCH_LEVELS = ("bookworm", "bookworm-updates", "bookworm-security")

# -- what the host has: (source package, source version) of every binary whose files are on disk ------------------

PRESENT = {"installed", "half-configured", "unpacked", "half-installed", "triggers-awaited", "triggers-pending"}
Binary = tuple[str, str, str, str]  # (package, version, source package, source version)


def binaries_of_status(text: str) -> list[Binary]:
    """The binaries a dpkg status file lists as present, each with its source (the `Source:` field, else itself)."""
    found: list[Binary] = []
    for stanza in text.split("\n\n"):
        lines = [line.partition(":") for line in stanza.splitlines() if not line[:1].isspace()]  # not continuations
        fields = {key: value.strip() for key, _, value in lines}
        status = fields.get("Status", "").split()
        if "Package" not in fields or not status or status[-1] not in PRESENT:
            continue
        name, version = fields["Package"], fields["Version"]
        source, _, source_version = fields.get("Source", name).partition(" (")
        found.append((name, version, source, source_version.rstrip(")") or version))
    return found


def binaries_of_dpkg_query(text: str) -> list[Binary]:
    """The present binaries in `dpkg-query -W -f '${Package}\\t${Version}\\t${source:Package}\\t${source:Version}\\t${Status}\\n'`."""  # noqa: E501
    rows = [line.split("\t") for line in text.splitlines()]
    return [(n, v, s, sv) for n, v, s, sv, status in rows if status.split()[-1] in PRESENT]


def moved_to(binaries: Sequence[Binary], suite: str) -> list[Binary]:
    """The binaries with every one the archive cut has in `suite` replaced by that suite's version."""
    archive: dict[str, Binary] = {}
    for line in gzip.decompress(ARCHIVE_CUT.read_bytes()).decode().splitlines():
        if not line.startswith("#"):
            row_suite, name, version, _arch, source, source_version = line.split("\t")
            if row_suite == suite:
                archive[name] = (name, version, source, source_version)
    return [archive.get(b[0], b) for b in binaries]


# -- what the advisories say: affected entries of the host's ecosystem ----------------------------------------------

Event = tuple[str, str]  # ("introduced" | "fixed" | "last_affected" | "limit", version)


@dataclass(frozen=True, slots=True)
class Entry:
    """One advisory's affected package in the host's ecosystem: ECOSYSTEM ranges' events and listed versions."""

    advisory: str
    package: str
    ranges: tuple[tuple[Event, ...], ...]
    versions: tuple[str, ...] = ()


def osv_entries(records: Iterable[dict[str, Any]], excluded: Counter[str]) -> Iterator[Entry]:
    for record in records:
        for affected in record.get("affected", []):
            if affected["package"]["ecosystem"] != ECOSYSTEM:
                excluded["entries of another ecosystem"] += 1
            elif record.get("withdrawn"):
                excluded["entries of withdrawn advisories"] += 1
            else:
                kinds = Counter(r["type"] for r in affected.get("ranges", []))
                excluded["ranges of a type other than ECOSYSTEM"] += kinds.total() - kinds["ECOSYSTEM"]
                ranges = tuple(
                    tuple((kind, version) for event in r["events"] for kind, version in event.items())
                    for r in affected.get("ranges", [])
                    if r["type"] == "ECOSYSTEM"
                )
                yield Entry(record["id"], affected["package"]["name"], ranges, tuple(affected.get("versions", ())))


TRACKER_HEADER = re.compile(r"^\[\d\d \w{3} \d{4}\] ((?:DSA|DLA)-[0-9-]+)")
TRACKER_PACKAGE = re.compile(r"^\s+\[(?P<release>[a-z]+)\]\s+-\s+(?P<package>\S+)(?:\s+(?P<version>[^\s(]+))?")
NOT_AFFECTED = {"<not-affected>", "<removed>", "<itp>"}  # the release never had it: no entry


def tracker_entries(text: str, excluded: Counter[str]) -> Iterator[Entry]:
    """The tracker list's lines for the host's release: a version is the fix; no version or a marker: unfixed."""
    advisory = ""
    for line in text.splitlines():
        if header := TRACKER_HEADER.match(line):
            advisory = header.group(1)
        elif (package := TRACKER_PACKAGE.match(line)) and package["release"] == CODENAME:
            version = package["version"]
            if version in NOT_AFFECTED:
                excluded[f"tracker lines marked {version}"] += 1
                continue
            fix = (("fixed", version),) if version and not version.startswith("<") else ()
            yield Entry(advisory, package["package"], ((("introduced", "0"), *fix),))
        elif package:
            excluded["entries of another ecosystem"] += 1


def debian_entries(excluded: Counter[str]) -> set[Entry]:
    """Every affected entry of the OSV feed and the tracker lists (equal entries of one advisory counted once)."""
    entries = set(osv_entries(json.loads(gzip.decompress(OSV_FEED.read_bytes())), excluded))
    for path in TRACKER_LISTS:
        entries |= set(tracker_entries(path.read_text(), excluded))
    return entries


# -- dpkg as the judge --------------------------------------------------------------------------------------------

Comparison = tuple[str, str, str]  # (a, op, b) for `dpkg --compare-versions a op b`
# One process runs dpkg once per comparison (argv triples, nothing interpolated into the script) and prints
# 0 (true), 1 (false) or "bad" when dpkg complained about a version's syntax (it only warns for some and compares).
COMPARE_ALL = """
while [ "$#" -ge 3 ]; do
  complaint=$(dpkg --compare-versions "$1" "$2" "$3" 2>&1)
  status=$?
  if [ -n "$complaint" ]; then echo bad; else echo "$status"; fi
  shift 3
done
"""
BATCH = 1000


def run_here(argv: list[str]) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True, timeout=600).stdout


@dataclass
class Dpkg:
    """`dpkg --compare-versions` answers, asked in batches through `run` (argv -> stdout), cached per (a, op, b)."""

    run: Callable[[list[str]], str] = run_here
    answers: dict[Comparison, bool | None] = field(default_factory=dict)  # None: dpkg says a version is bad
    calls: int = 0
    seconds: float = 0.0

    def ask(self, comparisons: Iterable[Comparison]) -> None:
        todo = sorted(set(comparisons) - self.answers.keys())
        started = time.monotonic()
        for start in range(0, len(todo), BATCH):
            batch = todo[start : start + BATCH]
            lines = self.run(["sh", "-c", COMPARE_ALL, "sh", *(part for c in batch for part in c)]).split()
            assert len(lines) == len(batch), f"dpkg answered {len(lines)} of {len(batch)} comparisons"
            self.answers.update(zip(batch, (None if line == "bad" else line == "0" for line in lines), strict=True))
        self.calls += len(todo)
        self.seconds += time.monotonic() - started


# OSV's ranges (ossf.github.io/osv-schema, "Evaluation"): with the events in version order, `installed` is affected
# when the last event at or below it is an `introduced` ("0": from the first version). Put without sorting: some
# introduced <= installed with no fixed in [introduced, installed] and no last_affected in [introduced, installed).
OPS = {"introduced": "ge", "fixed": "ge", "last_affected": "gt", "limit": "lt"}


def comparisons_for(installed: str, entry: Entry) -> Iterator[Comparison]:
    """Every comparison `is_affected` needs, so that one batch asks them all."""
    for events in entry.ranges:
        starts = [v for kind, v in events if kind == "introduced" and v != "0"]
        for kind, version in events:
            if version != "0":
                yield (installed, OPS[kind], version)
            if kind in ("fixed", "last_affected"):
                yield from ((version, "ge", start) for start in starts)
    yield from ((installed, "eq", version) for version in entry.versions)


def is_affected(installed: str, entry: Entry, dpkg: Dpkg) -> bool | None:
    """Whether `installed` is inside the entry; None when dpkg says one of the versions involved is bad."""
    said: dict[Comparison, bool] = {}
    for comparison in comparisons_for(installed, entry):
        answer = dpkg.answers[comparison]
        if answer is None:
            return None
        said[comparison] = answer

    def ge(a: str, b: str) -> bool:
        return b == "0" or said[a, "ge", b]

    def inside(events: tuple[Event, ...]) -> bool:
        def closes(kind: str, version: str, start: str) -> bool:
            """A fixed or last_affected event at or after `start` that `installed` has passed."""
            if kind == "fixed":
                passed = ge(installed, version)
            elif kind == "last_affected":
                passed = said[installed, "gt", version]
            else:
                return False
            return passed and ge(version, start)

        starts = [v for kind, v in events if kind == "introduced" and ge(installed, v)]
        below_limits = all(said[installed, "lt", v] for kind, v in events if kind == "limit")
        return below_limits and any(not any(closes(kind, v, start) for kind, v in events) for start in starts)

    return any(inside(events) for events in entry.ranges) or any(said[installed, "eq", v] for v in entry.versions)


@dataclass
class Evaluation:
    """The independent answer for one host, with counts for the failure summary."""

    expected: set[Finding]
    counts: Counter[str]
    excluded: Counter[str]


def evaluate(binaries: Sequence[Binary], entries: Iterable[Entry], dpkg: Dpkg, excluded: Counter[str]) -> Evaluation:
    """(advisory, source, source version) for every installed source version inside an entry naming its source."""
    installed = {(source, version) for _, _, source, version in binaries}
    by_package: dict[str, list[Entry]] = {}
    for entry in entries:
        by_package.setdefault(entry.package, []).append(entry)
    pairs = [(source, version, entry) for source, version in installed for entry in by_package.get(source, [])]
    dpkg.ask(c for source, version, entry in pairs for c in comparisons_for(version, entry))
    expected: set[Finding] = set()
    left_out = Counter(excluded)
    for source, version, entry in pairs:
        verdict = is_affected(version, entry, dpkg)
        if verdict is None:
            left_out["(installed version, entry) pairs with a version dpkg calls bad syntax"] += 1
        elif verdict:
            expected.add((entry.advisory, source, version))
    counts = Counter(
        {
            "binaries": len(binaries),
            "installed source versions": len(installed),
            "advisory entries": sum(len(e) for e in by_package.values()),
            "pairs evaluated": len(pairs),
            "dpkg comparisons": len(dpkg.answers),
            "dpkg milliseconds": round(dpkg.seconds * 1000),
        }
    )
    return Evaluation(expected, counts, left_out)


def summary(host: str, found: set[Finding], evaluation: Evaluation) -> str:
    false_positives, misses = found - evaluation.expected, evaluation.expected - found
    return "\n".join(
        [
            f"accuracy gate on {host}: {len(false_positives)} false positives, {len(misses)} misses",
            f"  patchday: {len(found)} open findings; independent evaluation: {len(evaluation.expected)}",
            *(f"  {what}: {n}" for what, n in evaluation.counts.items()),
            *(f"  left out, {what}: {n}" for what, n in evaluation.excluded.items() if n),
        ]
    )


def disagreements(host: str, found: set[Finding], evaluation: Evaluation) -> str:
    """Empty when patchday and the evaluation agree; else the summary and the first 20 differences of each kind."""
    false_positives, misses = sorted(found - evaluation.expected), sorted(evaluation.expected - found)
    if not false_positives and not misses:
        return ""
    lines = [
        summary(host, found, evaluation),
        "  false positives (patchday only):",
        *(f"    {f}" for f in false_positives[:20]),
        "  misses (evaluation only):",
        *(f"    {f}" for f in misses[:20]),
    ]
    return "\n".join(lines)


def import_feed(source: str, path: Path) -> None:
    """As `patchday feeds import` does: read the file, store its advisories, rematch the packages they touch."""
    run = feed_imports.run_import(SYSTEM_ACTOR, source, path, feed_imports.loader_for(SYSTEM_ACTOR, source, path))
    assert run.outcome == FeedRun.SUCCEEDED, run.error


def import_osv_feed() -> None:
    import_feed("osv", OSV_FEED)


def import_tracker_lists() -> None:
    """The DSA and DLA lists: imported after a host is stored, their advisories reach it by rematching packages."""
    for path in TRACKER_LISTS:
        import_feed("debian-dsa" if "DSA" in path.name else "debian-dla", path)


# -- the gate ------------------------------------------------------------------------------------------------------


def status_binaries() -> list[Binary]:
    return binaries_of_status(gzip.decompress(STATUS_FILE.read_bytes()).decode())


@pytest.mark.parametrize("level", ["as-collected", *PATCH_LEVELS])
def test_open_findings_on_the_real_host_equal_dpkgs_own_evaluation(level: str) -> None:
    import_osv_feed()
    packages = real_host() if level == "as-collected" else host_at(level)
    store_document(SYSTEM_ACTOR, document(packages, hostname=level), mode=ManagementMode.IMPORT)
    import_tracker_lists()

    binaries = status_binaries() if level == "as-collected" else moved_to(status_binaries(), level)
    excluded: Counter[str] = Counter()
    evaluation = evaluate(binaries, debian_entries(excluded), Dpkg(), excluded)

    found = open_findings_of(level)
    print(summary(level, found, evaluation))  # shown with -s or -rP
    assert not disagreements(level, found, evaluation), disagreements(level, found, evaluation)
    assert len(binaries) == 736
    if level == "as-collected":
        assert len(evaluation.expected) >= 20  # behind on updates: a meaningful gate


@pytest.mark.parametrize(
    ("installed", "events", "affected"),
    [
        ("1.0-1", (("introduced", "0"), ("fixed", "1.0-2")), True),
        ("1.0-2", (("introduced", "0"), ("fixed", "1.0-2")), False),
        ("1:0.9", (("introduced", "0"), ("fixed", "1.0-2")), False),  # the epoch wins
        ("1.0-2~deb12u1", (("introduced", "0"), ("fixed", "1.0-2")), True),  # ~ sorts first
        ("2.0", (("introduced", "0"),), True),  # no fix: affected
        ("1.5", (("introduced", "1.0"), ("fixed", "2.0")), True),
        ("0.9", (("introduced", "1.0"), ("fixed", "2.0")), False),
        ("1.5", (("introduced", "0"), ("last_affected", "1.5")), True),
        ("1.5.1", (("introduced", "0"), ("last_affected", "1.5")), False),
        ("3.0", (("introduced", "0"), ("fixed", "2.0"), ("introduced", "2.5")), True),  # reintroduced
        ("2.2", (("introduced", "2.5"), ("introduced", "0"), ("fixed", "2.0")), False),  # order given is not used
        ("1.0", (("introduced", "0"), ("fixed", "not a version!")), None),  # dpkg: bad syntax
    ],
)
def test_the_independent_evaluation_follows_osv_range_semantics(
    installed: str, events: tuple[Event, ...], affected: bool | None
) -> None:
    entry = Entry("TEST-1", "pkg", (events,))
    dpkg = Dpkg()
    dpkg.ask(comparisons_for(installed, entry))
    assert is_affected(installed, entry, dpkg) is affected
