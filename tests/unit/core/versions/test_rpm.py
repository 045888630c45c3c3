"""rpm versions against rpm itself: rpm's own vercmp vectors and real EVR pairs, then generated versions live.

tests/fixtures/versions/rpm-pairs.tsv.gz (scripts/make_rpm_fixture.py, provenance at its top) holds
the vectors of rpm's tests/rpmvercmp.at, RHEL EVR pairs labelled by rpm.labelCompare, and AlmaLinux
fixed and installed versions labelled by rpm's Lua API. The live tests need the rpm binary
(`apt-get install rpm`, rpm 4.18 on Debian 12) and skip without it; the fixture tests always run.
"""

from __future__ import annotations

import gzip
import itertools
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from patchday.core.errors import InvalidVersion
from patchday.core.versions import VersionScheme
from patchday.core.versions.rpm import SCHEME as RPM
from patchday.core.versions.rpm import Evr, parse_evr, vercmp

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "versions"
needs_rpm = pytest.mark.skipif(
    shutil.which("rpm") is None,
    reason="the rpm binary is not installed (apt-get install rpm); the fixture tests still check rpm's order",
)

# Reads "how<TAB>a<TAB>b" lines, writes rpm's -1, 0 or 1 for each: rpm.vercmp for bare versions,
# rpm.ver comparison (labelCompare's order in rpm 4.18) for epoch:version-release strings.
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


def read_fixture() -> list[tuple[str, str, str, str, int]]:
    """(how, kind, a, b, result) rows; how is "vercmp" (bare rpmvercmp) or "evr" (labelCompare)."""
    rows = []
    with gzip.open(FIXTURES / "rpm-pairs.tsv.gz", "rt", encoding="utf-8") as stream:
        for line in stream:
            if line.startswith("#") or line.startswith("how\t"):
                continue
            how, kind, a, b, result = line.rstrip("\n").split("\t")
            rows.append((how, kind, a, b, int(result)))
    return rows


FIXTURE = read_fixture()
RPMVERCMP_AT = [(a, b, result) for _, kind, a, b, result in FIXTURE if kind == "rpm-testsuite"]


def sign(number: int) -> int:
    return (number > 0) - (number < 0)


def key_order(a: str, b: str) -> int:
    key_a, key_b = RPM.sort_key(a), RPM.sort_key(b)
    return (key_a > key_b) - (key_a < key_b)


def rpm_says(checks: Sequence[tuple[str, str, str]]) -> list[int]:
    """rpm's verdict for each (how, a, b), from one rpm process."""
    stdin = "".join(f"{how}\t{a}\t{b}\n" for how, a, b in checks)
    done = subprocess.run(["rpm", "--eval", LABEL_LUA], input=stdin, capture_output=True, text=True, check=True)
    results = [int(line) for line in done.stdout.splitlines()[: len(checks)]]
    assert len(results) == len(checks), done.stderr
    return results


def test_the_scheme_is_a_version_scheme_named_rpm() -> None:
    scheme: VersionScheme = RPM
    assert scheme.name == "rpm"


def test_the_fixture_holds_rpms_own_vectors_and_thousands_of_real_pairs() -> None:
    assert len(RPMVERCMP_AT) == 91
    assert len(FIXTURE) >= 5000
    assert {result for *_, result in FIXTURE} == {-1, 0, 1}


@pytest.mark.parametrize(("a", "b", "expected"), RPMVERCMP_AT)
def test_rpms_own_vercmp_vectors(a: str, b: str, expected: int) -> None:
    assert vercmp(a, b) == expected
    assert sign(RPM.compare(a, b)) == expected
    assert key_order(a, b) == expected


def test_compare_agrees_with_rpm_on_every_fixture_pair() -> None:
    wrong = [(a, b, want) for _, _, a, b, want in FIXTURE if sign(RPM.compare(a, b)) != want]
    assert wrong == []
    bare = [(a, b, want) for how, _, a, b, want in FIXTURE if how == "vercmp" and vercmp(a, b) != want]
    assert bare == []


def test_sort_keys_order_every_fixture_pair_as_rpm_does() -> None:
    wrong = [(a, b, want) for _, _, a, b, want in FIXTURE if key_order(a, b) != want]
    assert wrong == []


@pytest.mark.parametrize(
    "ascending",
    [
        # '~' before the end, the end before '^', '^' before letters, letters before digits
        ["1.0~~", "1.0~", "1.0~rc1", "1.0", "1.0^", "1.0^git1", "1.0a", "1.0.1", "1.0.1a"],
        ["9", "10", "99999999999999999999", "100000000000000000000", "1" + "0" * 300, "1" + "0" * 301],
        # no release sorts before any release, even a "~" one; then epochs win over everything
        ["1.0", "1.0-~", "1.0-0", "1.0-1.el9", "1.0-1.el9_2", "1.0-1.el9_10", "1.0-1.fc40", "1:0.1", "2:0"],
        ["4.18.0-553.el8_10", "4.18.0-553.5.1.el8_10", "5.14.0-427.13.1.el9_4", "5.14.0-427.16.1.el9_4"],
    ],
)
def test_documented_orderings_ascend(ascending: list[str]) -> None:
    keys = [RPM.sort_key(v) for v in ascending]
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)
    assert all(RPM.compare(a, b) < 0 for a, b in itertools.pairwise(ascending))


@pytest.mark.parametrize(
    "same",
    [
        ["1.0", "0:1.0", "00:1.0", "1_0", "1.0.", "1..0", "01.00", "+1.0"],
        ["2:23.11-2.el9_5", "02:23.11-02.el9_05", "2:23.11-2.el9.5"],
        ["1.0a-1", "1.0.a-1", "1.0_a-1"],
        ["+", "_", "%{}"],
    ],
)
def test_equal_versions_share_one_key(same: list[str]) -> None:
    assert len({RPM.sort_key(v) for v in same}) == 1
    assert all(RPM.compare(same[0], v) == 0 for v in same)


@pytest.mark.parametrize(
    ("text", "evr"),
    [
        ("2:23.11-2.el9_5", Evr(2, "23.11", "2.el9_5")),
        ("1.0", Evr(0, "1.0", None)),
        ("0:1.0-1", Evr(0, "1.0", "1")),
        ("5.14.0-427.13.1.el9_4", Evr(0, "5.14.0", "427.13.1.el9_4")),
        ("3.2.11.Final-redhat-00001", Evr(0, "3.2.11.Final-redhat", "00001")),
        ("1:1.0^git1~pre-1.module+el8.4.0+1+abc", Evr(1, "1.0^git1~pre", "1.module+el8.4.0+1+abc")),
        ("4294967295:1", Evr(4294967295, "1", None)),
    ],
)
def test_parse_evr_splits_at_the_first_colon_and_the_last_hyphen(text: str, evr: Evr) -> None:
    assert parse_evr(text) == evr


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "version string is empty"),
        (":1.0", "epoch is not a number"),
        ("a:1.0", "epoch is not a number"),
        (" 1:1.0", "epoch is not a number"),
        ("4294967296:1.0", "epoch is larger than 4294967295"),
        ("1" * 5000 + ":1.0", "epoch is larger than 4294967295"),
        ("1:", "version is empty"),
        ("-1", "version is empty"),
        ("1:-1", "version is empty"),
        ("1.0-", "release is empty after '-'"),
        ("1.0-1-", "release is empty after '-'"),
        ("1:2:3", "invalid character in version: it may hold only ASCII letters, digits and ._+%{}~^ and '-'"),
        ("1.0 ", "invalid character in version: it may hold only ASCII letters, digits and ._+%{}~^ and '-'"),
        ("1.0/2", "invalid character in version: it may hold only ASCII letters, digits and ._+%{}~^ and '-'"),
        ("1.0é", "invalid character in version: it may hold only ASCII letters, digits and ._+%{}~^ and '-'"),
        ("1.0-1 ", "invalid character in release: it may hold only ASCII letters, digits and ._+%{}~^"),
        ("1.0-el9/2", "invalid character in release: it may hold only ASCII letters, digits and ._+%{}~^"),
        ("1.0-el9:2", "epoch is not a number"),  # the first colon ends an epoch
    ],
)
def test_invalid_versions_raise_naming_the_reason(text: str, reason: str) -> None:
    with pytest.raises(InvalidVersion) as raised:
        RPM.validate(text)
    assert (raised.value.scheme, raised.value.version, raised.value.reason) == ("rpm", text, reason)
    with pytest.raises(InvalidVersion):
        RPM.sort_key(text)
    with pytest.raises(InvalidVersion):
        RPM.compare("1.0", text)


# Generated versions: few symbols so that they collide, share prefixes and hit every rule.
digits = st.one_of(
    st.sampled_from(["0", "00", "1", "01", "9", "10", "010"]),
    st.integers(0, 10**30).map(str),
)
symbols = st.one_of(digits, st.sampled_from(["a", "b", "Z", "rc", "git", "el", "~", "~~", "^", ".", "_", "+", "%{}"]))


def spelled(draw: st.DrawFn, prefix: str, most: int) -> str:
    return prefix + "".join(draw(st.lists(symbols, max_size=most)))


@st.composite
def bare_families(draw: st.DrawFn) -> list[str]:
    """2 to 6 bare versions sharing a prefix, so that they differ where the rules bite."""
    prefix = spelled(draw, "", 4)
    family = [spelled(draw, prefix, 3) for _ in range(draw(st.integers(2, 6)))]
    return [version or "0" for version in family]


@st.composite
def evr_families(draw: st.DrawFn) -> list[str]:
    """2 to 6 epoch:version-release strings sharing prefixes; some without epoch or release."""
    epochs = st.sampled_from(["", "", "0:", "1:", "01:", "2:"])
    version_prefix = draw(digits) + spelled(draw, "", 3)
    release_prefix = spelled(draw, "", 2)
    family = []
    for _ in range(draw(st.integers(2, 6))):
        version = spelled(draw, version_prefix, 2)
        if draw(st.booleans()):
            release = spelled(draw, release_prefix, 2) or "1"
            version = version + draw(st.sampled_from(["", "", "-redhat"]))  # a hyphen inside the version
            family.append(f"{draw(epochs)}{version}-{release}")
        else:
            family.append(draw(epochs) + version)
    return family


@given(st.one_of(bare_families(), evr_families()))
def test_keys_and_compare_agree_and_order_totally(versions: list[str]) -> None:
    for a in versions:
        for b in versions:
            assert RPM.compare(a, b) == -RPM.compare(b, a)
            assert sign(RPM.compare(a, b)) == key_order(a, b)
    ordered = sorted(versions, key=RPM.sort_key)
    assert all(RPM.compare(a, b) <= 0 for i, a in enumerate(ordered) for b in ordered[i + 1 :])


def check_neighbours_with_rpm(versions: list[str], how: str) -> None:
    # Sorted by key, each neighbour pair must be what rpm says: equal keys 0, rising keys -1.
    ordered = sorted(versions, key=RPM.sort_key)
    pairs = list(itertools.pairwise(ordered))
    claimed = [0 if RPM.sort_key(a) == RPM.sort_key(b) else -1 for a, b in pairs]
    assert rpm_says([(how, a, b) for a, b in pairs]) == claimed, pairs
    assert [sign(RPM.compare(a, b)) for a, b in pairs] == claimed
    if how == "vercmp":
        assert [vercmp(a, b) for a, b in pairs] == claimed


@needs_rpm
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bare_families())
def test_generated_bare_versions_sort_as_rpmvercmp_sorts_them(versions: list[str]) -> None:
    check_neighbours_with_rpm(versions, "vercmp")


@needs_rpm
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(evr_families())
def test_generated_evrs_sort_as_rpm_sorts_them(versions: list[str]) -> None:
    check_neighbours_with_rpm(versions, "evr")
