"""dpkg versions against dpkg itself: a golden file of real pairs, then generated versions checked live.

tests/fixtures/versions/dpkg-pairs.tsv.gz holds ~7,000 pairs from real Debian data, labelled by
`dpkg --compare-versions` (scripts/make_dpkg_golden.py, provenance at its top). The live tests run
this machine's dpkg on hypothesis-generated versions, one shell per example, so they stay fast.
"""

from __future__ import annotations

import gzip
import itertools
import shlex
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from patchday.core.errors import InvalidVersion
from patchday.core.versions import VersionScheme
from patchday.core.versions.dpkg import SCHEME as DPKG

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "versions"
needs_dpkg = pytest.mark.skipif(shutil.which("dpkg") is None, reason="dpkg is not installed on this machine")


def read_golden() -> list[tuple[str, str, int]]:
    rows = []
    with gzip.open(FIXTURES / "dpkg-pairs.tsv.gz", "rt", encoding="utf-8") as stream:
        for line in stream:
            if line.startswith("#") or line == "a\tb\tresult\n":
                continue
            a, b, result = line.rstrip("\n").split("\t")
            rows.append((a, b, int(result)))
    return rows


GOLDEN = read_golden()


def sign(number: int) -> int:
    return (number > 0) - (number < 0)


def key_order(a: str, b: str) -> int:
    key_a, key_b = DPKG.sort_key(a), DPKG.sort_key(b)
    return (key_a > key_b) - (key_a < key_b)


def dpkg_says(checks: Sequence[tuple[str, str, str]]) -> list[bool]:
    """Whether `dpkg --compare-versions a op b` holds, for each (a, op, b); one shell for all."""
    script = "".join(
        f"dpkg --compare-versions -- {shlex.quote(a)} {op} {shlex.quote(b)}; echo $?\n" for a, op, b in checks
    )
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True).stdout.split()
    assert len(out) == len(checks)
    return [code == "0" for code in out]


def dpkg_validates(versions: Sequence[str]) -> list[tuple[bool, str]]:
    """(accepted, message) of `dpkg --validate-version` for each version; one process each (it stops at the first)."""
    results = []
    for version in versions:
        done = subprocess.run(
            ["dpkg", "--validate-version", "--", version], capture_output=True, text=True, check=False
        )
        results.append((done.returncode == 0, done.stderr))
    return results


def our_reason(version: str) -> str | None:
    """Why DPKG refuses `version`, None when it accepts it."""
    try:
        DPKG.validate(version)
    except InvalidVersion as error:
        return error.reason
    return None


def test_the_scheme_is_a_version_scheme_named_dpkg() -> None:
    scheme: VersionScheme = DPKG
    assert scheme.name == "dpkg"


def test_the_golden_file_holds_enough_real_pairs_of_every_outcome() -> None:
    assert len(GOLDEN) >= 5000
    assert {result for _, _, result in GOLDEN} == {-1, 0, 1}


def test_compare_agrees_with_dpkg_on_every_golden_pair() -> None:
    wrong = [(a, b, want, DPKG.compare(a, b)) for a, b, want in GOLDEN if sign(DPKG.compare(a, b)) != want]
    assert wrong == []


def test_sort_keys_order_every_golden_pair_as_dpkg_does() -> None:
    wrong = [(a, b, want) for a, b, want in GOLDEN if key_order(a, b) != want]
    assert wrong == []


@pytest.mark.parametrize(
    "ascending",
    [
        ["1.0~~", "1.0~", "1.0~a", "1.0", "1.0-1", "1.0a", "1.0+", "1.0.", "1.0.1"],
        ["1.0-1~bpo12+1", "1.0-1", "1.0-1+b1", "1.0-1+deb12u1", "1.0-1+deb12u10", "1.0-1.1"],
        ["9", "10", "99999999999999999999", "100000000000000000000", "1" + "0" * 300, "1" + "0" * 301],
        ["9:1", "10:0.1", "2147483647:0"],
    ],
)
def test_documented_orderings_ascend(ascending: list[str]) -> None:
    keys = [DPKG.sort_key(v) for v in ascending]
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)
    assert all(DPKG.compare(a, b) < 0 for a, b in itertools.pairwise(ascending))


@pytest.mark.parametrize(
    "same",
    [
        ["1.0", "0:1.0", "00:1.0", "1.0-0", "1.0-00", "01.0", "1.00-0", "+0:1.0-0", " 1.0\t"],
        ["1.0-1.0", "1.0-1.00", "1.0-01.0"],
        ["1.0.", "1.0.0", "1.0.00"],
        ["1.0a", "1.0a0", "1.0a00"],  # a trailing separator is a separator followed by the number 0
        ["2:1.0~rc1-1", "02:1.0~rc01-01", "0002:1.0~rc1-1"],
    ],
)
def test_equal_versions_share_one_key(same: list[str]) -> None:
    assert len({DPKG.sort_key(v) for v in same}) == 1
    assert all(DPKG.compare(same[0], v) == 0 for v in same)


# What `dpkg --validate-version` refuses, with its reason (a warning, exit 1, counts as a refusal too).
BAD = [
    ("", "version string is empty"),
    (" \t", "version string is empty"),
    ("1.0 1", "version string has embedded spaces"),
    ("1.0\t-1", "version string has embedded spaces"),
    (":1.0", "epoch in version is empty"),
    ("+:1.0", "epoch in version is empty"),
    ("a:1.0", "epoch in version is empty"),
    ("1a:1.0", "epoch in version is not number"),
    ("0x1:1.0", "epoch in version is not number"),
    ("1.0-1:2", "epoch in version is not number"),
    ("-1:1.0", "epoch in version is negative"),
    ("2147483648:1.0", "epoch in version is too big"),
    ("99999999999999999999:1.0", "epoch in version is too big"),
    ("1:", "nothing after colon in version number"),
    ("1: ", "version number is empty"),
    ("1.0-", "revision number is empty"),
    ("1.0-1-", "revision number is empty"),
    ("1:-1", "version number is empty"),
    ("-1", "version number is empty"),
    ("a", "version number does not start with digit"),
    ("~1", "version number does not start with digit"),
    ("1:+1", "version number does not start with digit"),
    ("1.0_1", "invalid character in version number"),
    ("1.0é", "invalid character in version number"),
    ("1:1.0\n", "invalid character in version number"),
    ("1.0@", "invalid character in version number"),
    ("1.0-a_b", "invalid character in revision number"),
    ("1:1.0-1:2", "invalid character in revision number"),
    ("1.0-1-a:b", "epoch in version is not number"),  # the first colon ends an epoch
]
# Odd but accepted by dpkg: surrounding blanks, signs and C whitespace before the epoch, colons and hyphens inside.
ODD_BUT_VALID = [
    " 1.0 ",
    "1.0\t",
    "+1:1.0",
    "-0:1.0",
    "\n1:1.0",
    " \v1:1.0",
    "0002147483647:1",
    "1:2:3",
    "1.0--1",
    "1-0-0",
]


@pytest.mark.parametrize(("version", "reason"), BAD)
def test_invalid_versions_raise_with_dpkgs_reason(version: str, reason: str) -> None:
    with pytest.raises(InvalidVersion) as raised:
        DPKG.validate(version)
    assert raised.value.reason == reason
    assert raised.value.scheme == "dpkg"
    assert raised.value.version == version
    with pytest.raises(InvalidVersion):
        DPKG.sort_key(version)
    with pytest.raises(InvalidVersion):
        DPKG.compare("1.0", version)


@needs_dpkg
def test_the_invalid_table_is_what_dpkg_refuses_and_says() -> None:
    verdicts = dpkg_validates([version for version, _ in BAD] + ODD_BUT_VALID)
    for (version, reason), (accepted, message) in zip(BAD, verdicts, strict=False):
        assert not accepted, version
        assert f"bad syntax: {reason}" in message, (version, message)
    assert all(accepted for accepted, _ in verdicts[len(BAD) :]), verdicts[len(BAD) :]


@pytest.mark.parametrize("version", ODD_BUT_VALID)
def test_odd_versions_dpkg_accepts_are_valid(version: str) -> None:
    DPKG.validate(version)


@needs_dpkg
def test_odd_versions_compare_as_dpkg_reads_them() -> None:
    checks = [
        (v, "eq", w) for v, w in zip(ODD_BUT_VALID, ["1.0", "1.0", "1:1.0", "1.0", "1:1.0", "1:1.0"], strict=False)
    ]
    assert dpkg_says(checks) == [True] * len(checks)
    assert all(DPKG.compare(v, w) == 0 for v, _, w in checks)


# Generated versions: few symbols so that they collide, share prefixes and hit every rule.
digits = st.one_of(
    st.sampled_from(["0", "00", "1", "01", "9", "10", "010"]),
    st.integers(0, 10**30).map(str),
    st.integers(1, 3).map(lambda n: "0" * n + "7"),
)
upstream_symbols = st.one_of(digits, st.sampled_from(["a", "b", "z", "A", "Z", "~", "~~", ".", "+", "-", ":", "rc"]))
revision_symbols = st.one_of(digits, st.sampled_from(["a", "Z", "~", ".", "+", "deb", "u", "b"]))


def dpkg_version(epoch: str, upstream: str, revision: str) -> str:
    if not epoch:
        upstream = upstream.replace(":", ".")  # a colon is only allowed after an epoch
    if revision:
        return f"{epoch}{upstream}-{revision}"
    return epoch + upstream.replace("-", "+")  # a hyphen is only allowed before a revision


@st.composite
def dpkg_families(draw: st.DrawFn) -> list[str]:
    """2 to 6 versions sharing a prefix, so that they differ where the rules bite (one symbol apart)."""
    epochs = st.sampled_from(["", "", "", "0:", "1:", "01:", "2:", "2147483647:"])
    prefix = draw(digits) + "".join(draw(st.lists(upstream_symbols, max_size=4)))
    revision_prefix = "".join(draw(st.lists(revision_symbols, max_size=2)))
    family = []
    for _ in range(draw(st.integers(2, 6))):
        upstream = prefix + "".join(draw(st.lists(upstream_symbols, max_size=3)))
        revision = revision_prefix + "".join(draw(st.lists(revision_symbols, max_size=2)))
        family.append(dpkg_version(draw(epochs), upstream, revision))
    return family


@given(dpkg_families())
def test_keys_and_compare_agree_and_order_totally(versions: list[str]) -> None:
    for a in versions:
        for b in versions:
            assert DPKG.compare(a, b) == -DPKG.compare(b, a)
            assert sign(DPKG.compare(a, b)) == key_order(a, b)
    ordered = sorted(versions, key=DPKG.sort_key)
    assert all(DPKG.compare(a, b) <= 0 for i, a in enumerate(ordered) for b in ordered[i + 1 :])


@needs_dpkg
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dpkg_families())
def test_generated_versions_sort_as_dpkg_sorts_them(versions: list[str]) -> None:
    # Sorted by key, each neighbour pair must be what dpkg says: equal keys "eq", rising keys "lt".
    ordered = sorted(versions, key=DPKG.sort_key)
    pairs = list(itertools.pairwise(ordered))
    checks = [(a, "eq" if DPKG.sort_key(a) == DPKG.sort_key(b) else "lt", b) for a, b in pairs]
    assert dpkg_says(checks) == [True] * len(checks), checks
    assert [sign(DPKG.compare(a, b)) for a, b in pairs] == [0 if op == "eq" else -1 for _, op, _ in checks]


@needs_dpkg
@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet="0123456789aZ.+-~:_ \t", max_size=8), min_size=1, max_size=8))
def test_generated_strings_are_valid_exactly_when_dpkg_accepts_them(texts: list[str]) -> None:
    verdicts = dpkg_validates(texts)
    for text, (accepted, message) in zip(texts, verdicts, strict=True):
        reason = our_reason(text)
        if reason is None:
            assert accepted, (text, message)
        else:
            assert not accepted, text
            assert f"bad syntax: {reason}" in message, (text, message)
