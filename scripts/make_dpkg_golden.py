#!/usr/bin/env python3
"""Build tests/fixtures/versions/dpkg-pairs.tsv.gz: real Debian version pairs labelled by this machine's dpkg.

Pairs come from the curated data in shared/data (see its README): versions of one package across
bookworm, bookworm-updates and bookworm-security, binary versions against their source version
(binNMUs), installed versions (a real /var/lib/dpkg/status) against the archive, Debian security
fixed versions against installed and archive versions of the same source package, neighbours in
plain string order (long shared prefixes), and the hand-checked pairs of deb-version-pairs.json.gz.
Each pair is labelled with `dpkg --compare-versions A lt B` and `A eq B`: -1, 0 or 1.
Versions that `dpkg --validate-version` refuses are left out (tests check those separately).

    python3 scripts/make_dpkg_golden.py [--data /work/shared/data] [--out tests/fixtures/versions/dpkg-pairs.tsv.gz]
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import io
import itertools
import json
import lzma
import random
import shutil
import subprocess
from collections import defaultdict
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATUS = "host-fixture/dpkg-status-2026-11-28.gz"
PACKAGES = "host-fixture/bookworm-amd64-packages-2026-11-28.tsv.xz"
PAIRS = "versions/deb-version-pairs.json.gz"
OSV = "debian/debian-bookworm-osv-2026-08-21.json.gz"
SEED = 20261128
DPKG = shutil.which("dpkg") or "/usr/bin/dpkg"
PER_PACKAGE = 6  # most pairs taken from one package's versions


def installed(data: Path) -> list[tuple[str, str, str]]:
    """(package, version, source package) of each installed package in the status file."""
    rows = []
    with gzip.open(data / STATUS, "rt", encoding="utf-8") as stream:
        for stanza in stream.read().split("\n\n"):
            fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line and line[0] != " ")
            if "Package" in fields and "Version" in fields:
                source = fields.get("Source", fields["Package"]).split(" ")[0]
                rows.append((fields["Package"], fields["Version"], source))
    return rows


def archive(data: Path) -> list[dict[str, str]]:
    with lzma.open(data / PACKAGES, "rt", encoding="utf-8") as stream:
        header = stream.readline().rstrip("\n").split("\t")
        return [dict(zip(header, line.rstrip("\n").split("\t"), strict=True)) for line in stream]


def fixed_versions(data: Path) -> dict[str, set[str]]:
    """Source package -> fixed versions named by the bookworm DSA/DLA records."""
    fixed: dict[str, set[str]] = defaultdict(set)
    with gzip.open(data / OSV, "rt", encoding="utf-8") as stream:
        for record in json.load(stream):
            for affected in record.get("affected", []):
                for range_ in affected.get("ranges", []):
                    for event in range_.get("events", []):
                        if "fixed" in event:
                            fixed[affected["package"]["name"]].add(event["fixed"])
    return fixed


def some_pairs(versions: Iterable[str], rng: random.Random, limit: int) -> Iterator[tuple[str, str]]:
    distinct = sorted(set(versions))
    pairs = [(a, b) for i, a in enumerate(distinct) for b in distinct[i + 1 :]]
    for a, b in rng.sample(pairs, min(limit, len(pairs))):
        yield (a, b) if rng.random() < 0.5 else (b, a)


def candidate_pairs(data: Path, rng: random.Random) -> list[tuple[str, str]]:
    rows = archive(data)
    by_package: dict[str, set[str]] = defaultdict(set)
    by_source: dict[str, set[str]] = defaultdict(set)
    pairs: list[tuple[str, str]] = []
    for row in rows:
        by_package[row["package"]].add(row["version"])
        by_source[row["source"]].add(row["source_version"])
        if row["source_version"] != row["version"]:
            pairs.append((row["version"], row["source_version"]))
    binnmus = rng.sample(pairs, min(1500, len(pairs)))
    pairs = binnmus
    multi = sorted(name for name, versions in by_package.items() if len(versions) > 1)
    for name in multi:
        pairs.extend(some_pairs(by_package[name], rng, PER_PACKAGE))
    host = installed(data)
    for package, version, source in host:
        pairs.extend((version, other) for other in sorted(by_package.get(package, ())) if other != version)
        pairs.extend(some_pairs({version} | by_source.get(source, set()), rng, 2))
    fixed = fixed_versions(data)
    host_by_source: dict[str, set[str]] = defaultdict(set)
    for _, version, source in host:
        host_by_source[source].add(version)
    for source, versions in sorted(fixed.items()):
        ordered = sorted(versions)
        pairs.extend(itertools.pairwise(ordered))
        for version in ordered:
            pairs.extend((other, version) for other in sorted(host_by_source.get(source, ())))
            archived = sorted(by_source.get(source, ()))
            pairs.extend((other, version) for other in rng.sample(archived, min(2, len(archived))))
    everything = sorted({row["version"] for row in rows} | {v for vs in fixed.values() for v in vs})
    neighbours = list(itertools.pairwise(everything))
    pairs.extend(rng.sample(neighbours, 1500))
    with gzip.open(data / PAIRS, "rt", encoding="utf-8") as stream:
        pairs.extend((pair["a"], pair["b"]) for pair in json.load(stream)["pairs"])
    seen: set[tuple[str, str]] = set()
    unique = []
    for pair in pairs:
        if pair not in seen:
            seen.add(pair)
            unique.append(pair)
    return unique


def dpkg(*args: str) -> subprocess.CompletedProcess[str]:
    # The arguments are argv items, never a shell string; versions come from the curated data.
    return subprocess.run([DPKG, *args], capture_output=True, text=True, check=False)  # noqa: S603


def is_valid(version: str) -> bool:
    return dpkg("--validate-version", "--", version).returncode == 0


def label(pair: tuple[str, str]) -> int:
    a, b = pair
    if dpkg("--compare-versions", "--", a, "lt", b).returncode == 0:
        return -1
    if dpkg("--compare-versions", "--", a, "eq", b).returncode == 0:
        return 0
    return 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "fixtures" / "versions" / "dpkg-pairs.tsv.gz")
    args = parser.parse_args()
    rng = random.Random(SEED)  # noqa: S311 - a reproducible sample, not a secret
    pairs = candidate_pairs(args.data, rng)
    with ThreadPoolExecutor(max_workers=4) as pool:
        versions = sorted({v for pair in pairs for v in pair})
        valid = {v for v, ok in zip(versions, pool.map(is_valid, versions), strict=True) if ok}
        pairs = [pair for pair in pairs if pair[0] in valid and pair[1] in valid]
        results = list(pool.map(label, pairs))
    version = dpkg("--version").stdout.splitlines()[0]
    text = io.StringIO()
    text.write(f"# {len(pairs)} Debian version pairs labelled by `dpkg --compare-versions` (-1 a<b, 0 a=b, 1 a>b)\n")
    text.write(f"# labelled {dt.date.today().isoformat()} with {version}\n")
    text.write(f"# built by scripts/make_dpkg_golden.py (seed {SEED}) from shared/data: {STATUS}, {PACKAGES},\n")
    text.write(f"#   {OSV} (fixed versions), {PAIRS}\n")
    text.write("a\tb\tresult\n")
    for (a, b), result in zip(pairs, results, strict=True):
        text.write(f"{a}\t{b}\t{result}\n")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with gzip.GzipFile(args.out, "wb", compresslevel=9, mtime=0) as stream:
        stream.write(text.getvalue().encode("utf-8"))
    counts = {r: results.count(r) for r in (-1, 0, 1)}
    print(f"{args.out}: {len(pairs)} pairs from {len(valid)} versions; results {counts}")


if __name__ == "__main__":
    main()
