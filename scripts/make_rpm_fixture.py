#!/usr/bin/env python3
"""Build tests/fixtures/versions/rpm-pairs.tsv.gz: RPM version pairs labelled by rpm itself.

Two sources, both from shared/data (see its README):
- versions/rpm-version-pairs.json.gz: rpm's own vercmp test vectors (tests/rpmvercmp.at, kind
  "rpm-testsuite", bare versions: `how` = vercmp) and real RHEL EVR pairs (`how` = evr), labelled
  there by rpm.labelCompare (rpm 4.18); kept as labelled, and re-checked here when rpm is installed.
- AlmaLinux OSV fixed versions ("2:23.11-2.el9_5") of one package across advisories, and the
  versions of a real AlmaLinux 9.2 `rpm -qa` against the AlmaLinux:9 fixed versions of the same
  package, labelled with rpm's Lua API: rpm.vercmp for bare versions, rpm.ver(a) < / == rpm.ver(b)
  for EVRs (rpm 4.18 compares those like labelCompare: no epoch = 0, no release sorts first).

    apt-get install -y rpm && python3 scripts/make_rpm_fixture.py [--data /work/shared/data]
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import io
import json
import random
import re
import shutil
import subprocess
import tarfile
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAIRS = "versions/rpm-version-pairs.json.gz"
ALMA = "rhel/almalinux-osv-8-9-10-2026-08-21.tar.xz"
RPM_QA = "rhel/almalinux-9.2-rpm-qa-2023-09-08.txt.gz"
SEED = 20261128
RPM = shutil.which("rpm") or "/usr/bin/rpm"
PER_PACKAGE = 1
EVR = re.compile(r"(?:[0-9]+:)?[0-9A-Za-z._+%{}~^-]+?(?:-[0-9A-Za-z._+%{}~^]+)?")

# Reads "how<TAB>a<TAB>b" lines on stdin, writes -1, 0 or 1 per line.
LABEL_LUA = """%{lua:
for line in io.lines() do
  local how, a, b = line:match("^(%a+)\t([^\t]*)\t(.*)$")
  local result
  if how == "vercmp" then
    result = rpm.vercmp(a, b)
  else
    local va, vb = rpm.ver(a), rpm.ver(b)
    result = (va < vb) and -1 or ((va == vb) and 0 or 1)
  end
  io.write(result, "\\n")
end
}"""


def label(rows: list[tuple[str, str, str]]) -> list[int]:
    """rpm's verdict for each (how, a, b)."""
    stdin = "".join(f"{how}\t{a}\t{b}\n" for how, a, b in rows)
    out = subprocess.run([RPM, "--eval", LABEL_LUA], input=stdin, capture_output=True, text=True, check=True)  # noqa: S603
    results = [int(line) for line in out.stdout.splitlines()[: len(rows)]]
    assert len(results) == len(rows), out.stderr
    return results


def alma_fixed(data: Path) -> dict[tuple[str, str], set[str]]:
    """(ecosystem, package) -> fixed versions in the AlmaLinux OSV advisories."""
    fixed: dict[tuple[str, str], set[str]] = defaultdict(set)
    with tarfile.open(data / ALMA, "r:xz") as tar:
        for member in tar:
            if not member.name.endswith(".json"):
                continue
            stream = tar.extractfile(member)
            assert stream is not None
            for affected in json.load(stream).get("affected", []):
                key = (affected["package"]["ecosystem"], affected["package"]["name"])
                for range_ in affected.get("ranges", []):
                    fixed[key].update(e["fixed"] for e in range_.get("events", []) if "fixed" in e)
    return fixed


def installed(data: Path) -> dict[str, str]:
    """name -> version-release from `rpm -qa` lines (name-version-release.arch)."""
    packages = {}
    with gzip.open(data / RPM_QA, "rt", encoding="utf-8") as stream:
        for line in stream:
            nevr = line.strip().rsplit(".", 1)[0]
            name, version, release = nevr.rsplit("-", 2)
            packages[name] = f"{version}-{release}"
    return packages


def alma_pairs(data: Path, rng: random.Random) -> Iterator[tuple[str, str, str]]:
    fixed = alma_fixed(data)
    for (_, _), versions in sorted(fixed.items()):
        distinct = sorted(v for v in versions if EVR.fullmatch(v))
        pairs = [(a, b) for i, a in enumerate(distinct) for b in distinct[i + 1 :]]
        for a, b in rng.sample(pairs, min(PER_PACKAGE, len(pairs))):
            yield ("alma-fixed", *((a, b) if rng.random() < 0.5 else (b, a)))
    for name, version in sorted(installed(data).items()):
        for other in sorted(fixed.get(("AlmaLinux:9", name), ())):
            if EVR.fullmatch(other):
                yield ("alma9-installed-vs-fixed", version, other)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "fixtures" / "versions" / "rpm-pairs.tsv.gz")
    args = parser.parse_args()
    rng = random.Random(SEED)  # noqa: S311 - a reproducible sample, not a secret
    with gzip.open(args.data / PAIRS, "rt", encoding="utf-8") as stream:
        vectors = json.load(stream)["pairs"]
    rows = [("vercmp" if not p["evr"] else "evr", p["kind"], p["a"], p["b"], p["expected"]) for p in vectors]
    rechecked = label([(how, a, b) for how, _, a, b, _ in rows])
    disagree = [row for row, result in zip(rows, rechecked, strict=True) if row[4] != result]
    assert not disagree, f"rpm on this machine disagrees with the labelCompare vectors: {disagree[:5]}"
    seen = {(a, b) for _, _, a, b, _ in rows}
    new = []
    for kind, a, b in alma_pairs(args.data, rng):
        if (a, b) not in seen:
            seen.add((a, b))
            new.append((kind, a, b))
    results = label([("evr", a, b) for _, a, b in new])
    rows.extend(("evr", kind, a, b, result) for (kind, a, b), result in zip(new, results, strict=True))
    version = subprocess.run([RPM, "--version"], capture_output=True, text=True, check=True).stdout.strip()  # noqa: S603
    text = io.StringIO()
    text.write(f"# {len(rows)} RPM version pairs: result -1 a<b, 0 a=b, 1 a>b; how: vercmp (bare rpmvercmp) or evr\n")
    text.write(f"# {len(vectors)} from shared/data {PAIRS} (rpm tests/rpmvercmp.at vectors and RHEL EVRs,\n")
    text.write("#   labelled by rpm.labelCompare, rpm 4.18.0), re-checked with rpm's Lua API\n")
    text.write(f"# {len(new)} from {ALMA} (fixed versions; AlmaLinux/osv-database, MIT) and {RPM_QA},\n")
    text.write(f"#   labelled {dt.date.today().isoformat()} with {version} (rpm.ver); scripts/make_rpm_fixture.py\n")
    text.write("how\tkind\ta\tb\tresult\n")
    for how, kind, a, b, result in rows:
        text.write(f"{how}\t{kind}\t{a}\t{b}\t{result}\n")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with gzip.GzipFile(args.out, "wb", compresslevel=9, mtime=0) as stream:
        stream.write(text.getvalue().encode("utf-8"))
    print(f"{args.out}: {len(rows)} pairs ({len(vectors)} shared vectors, {len(new)} AlmaLinux)")


if __name__ == "__main__":
    main()
