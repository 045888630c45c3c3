"""SemVer 2.0.0: the spec's own examples, then generated versions against a reference that reads the spec literally.

No SemVer tool (npm's semver, Go's x/mod/semver) is installed on this machine, so `spec_valid` and `spec_compare`
below restate semver.org's grammar (the BNF) and precedence rules (item 11) in the plainest Python, independent
of the sort-key encoding they check.
"""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patchday.core.errors import InvalidVersion
from patchday.core.versions import VersionScheme
from patchday.core.versions.semver import SCHEME as SEMVER


def test_the_scheme_is_a_version_scheme_named_semver() -> None:
    scheme: VersionScheme = SEMVER
    assert scheme.name == "semver"


@pytest.mark.parametrize(
    "ascending",
    [
        # spec item 11, examples 2, 3 and 4
        ["1.0.0", "2.0.0", "2.1.0", "2.1.1"],
        ["1.0.0-alpha", "1.0.0"],
        [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
        ],
        # item 2: numbers compare numerically
        ["1.9.0", "1.10.0", "1.11.0"],
        # numeric identifiers below alphanumeric ones, which compare in ASCII order ("-" < digits < upper < lower)
        ["1.0.0-1", "1.0.0-9", "1.0.0-10", "1.0.0--", "1.0.0-0a", "1.0.0-Z", "1.0.0-a", "1.0.0-a-b", "1.0.0-ab"],
        # Go: a pseudo-version sorts by its timestamp, before the release it is based on
        [
            "v0.0.0-20191109021931-daa7c04131f5",
            "v0.0.0-20200101000000-0123456789ab",
            "v1.2.3",
            "v1.2.4-0.20191109021931-daa7c04131f5",
            "v1.2.4-pre.0.20200101000000-0123456789ab",
            "v1.2.4",
        ],
    ],
)
def test_spec_examples_ascend(ascending: list[str]) -> None:
    keys = [SEMVER.sort_key(v) for v in ascending]
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)
    assert all(SEMVER.compare(a, b) < 0 for a, b in pairwise(ascending))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("1.0.0-alpha+001", "1.0.0-alpha"),
        ("1.0.0+20130313144700", "1.0.0"),
        ("1.0.0-beta+exp.sha.5114f85", "1.0.0-beta+other"),
        ("1.0.0+21AF26D3----117B344092BD", "1.0.0+0"),
        ("v1.2.3", "1.2.3"),
        ("v2.0.0+incompatible", "2.0.0"),
    ],
)
def test_build_metadata_and_a_leading_v_do_not_change_precedence(a: str, b: str) -> None:
    assert SEMVER.compare(a, b) == 0
    assert SEMVER.sort_key(a) == SEMVER.sort_key(b)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1",
        "1.2",
        "v1",
        "v1.2",
        "1.2.3.4",
        "01.2.3",
        "1.02.3",
        "1.2.03",
        "1.2.3-01",
        "1.2.3-alpha.01",
        "1.2.3-",
        "1.2.3+",
        "1.2.3-a..b",
        "1.2.3+a..b",
        "1.2.3-a_b",
        "1.2.3-ü",
        "V1.2.3",
        "vv1.2.3",
        " 1.2.3",
        "1.2.3 ",
        "1.2.3\n",
        "=1.2.3",
        "-1.2.3",
        "1.2.-3",
        "1.2.3-+",
        "1.2.3+a+b",
        "\u0661.\u0662.\u0663",
    ],
)
def test_invalid_versions_raise_invalid_version(text: str) -> None:
    assert not spec_valid(text)  # the premise
    with pytest.raises(InvalidVersion) as caught:
        SEMVER.validate(text)
    assert (caught.value.scheme, caught.value.version) == ("semver", text)


def test_numbers_beyond_one_length_byte_keep_their_order() -> None:
    big, bigger = "9" * 300, "1" + "0" * 300
    assert SEMVER.compare(f"{big}.0.0", f"{bigger}.0.0") < 0
    assert SEMVER.compare(f"1.0.0-{big}", f"1.0.0-{bigger}") < 0


# --- the spec, read literally ------------------------------------------------------------------------------------

DIGITS = "0123456789"
IDENTIFIER_CHARACTERS = DIGITS + "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-"


def is_numeric_identifier(text: str) -> bool:
    return text == "0" or (text != "" and text[0] in "123456789" and all(c in DIGITS for c in text))


def is_identifier_characters(text: str) -> bool:
    return text != "" and all(c in IDENTIFIER_CHARACTERS for c in text)


def is_alphanumeric_identifier(text: str) -> bool:
    return is_identifier_characters(text) and any(c not in DIGITS for c in text)


def spec_valid(text: str) -> bool:
    """semver.org's BNF, after dropping one leading "v" (patchday's single extension)."""
    text = text.removeprefix("v")
    rest, has_build, build = text.partition("+")
    if has_build and not all(is_identifier_characters(i) for i in build.split(".")):
        return False
    core, has_prerelease, prerelease = rest.partition("-")
    if has_prerelease and not all(
        is_numeric_identifier(i) or is_alphanumeric_identifier(i) for i in prerelease.split(".")
    ):
        return False
    numbers = core.split(".")
    return len(numbers) == 3 and all(is_numeric_identifier(n) for n in numbers)


def spec_compare(a: str, b: str) -> int:
    """Precedence as spec item 11 states it, step by step."""
    core_a, _, pre_a = a.removeprefix("v").partition("+")[0].partition("-")
    core_b, _, pre_b = b.removeprefix("v").partition("+")[0].partition("-")
    for x, y in zip(core_a.split("."), core_b.split("."), strict=True):  # 11.2: major, minor, patch numerically
        if int(x) != int(y):
            return -1 if int(x) < int(y) else 1
    if pre_a == pre_b:
        return 0
    if not pre_a or not pre_b:  # 11.3: a pre-release has lower precedence than the normal version
        return -1 if pre_a else 1
    ids_a, ids_b = pre_a.split("."), pre_b.split(".")
    for x, y in zip(ids_a, ids_b, strict=False):  # 11.4: identifier by identifier, left to right
        if x == y:
            continue
        if x.isdigit() and y.isdigit():  # 11.4.1
            return -1 if int(x) < int(y) else 1
        if x.isdigit() != y.isdigit():  # 11.4.3: numeric identifiers have lower precedence
            return -1 if x.isdigit() else 1
        return -1 if x < y else 1  # 11.4.2: ASCII sort order
    return (len(ids_a) > len(ids_b)) - (len(ids_a) < len(ids_b))  # 11.4.4: the larger set wins


def test_the_reference_agrees_with_the_spec_examples() -> None:
    chain = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11"]
    chain += ["1.0.0-rc.1", "1.0.0", "2.0.0", "2.1.0", "2.1.1"]
    assert all(spec_compare(a, b) == -1 for a, b in pairwise(chain))


NUMBERS = st.sampled_from(["0", "1", "2", "9", "10", "11", "20191109021931", "123456789012345678901234567890"])
IDENTIFIERS = st.one_of(
    NUMBERS,
    st.sampled_from(["alpha", "beta", "rc", "a", "A", "Z", "-", "--", "0a", "a-b", "x7", "daa7c04131f5"]),
    st.text(alphabet="019aZ-", min_size=1, max_size=4).filter(lambda i: is_numeric_identifier(i) or not i.isdigit()),
)


@st.composite
def semvers(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(["", "", "v"])) + ".".join(draw(st.lists(NUMBERS, min_size=3, max_size=3)))
    if draw(st.booleans()):
        text += "-" + ".".join(draw(st.lists(IDENTIFIERS, min_size=1, max_size=4)))
    if draw(st.integers(0, 3)) == 0:
        text += "+" + ".".join(draw(st.lists(st.sampled_from(["001", "exp", "sha", "5114f85", "-"]), min_size=1)))
    return text


@settings(max_examples=500, deadline=None)
@given(semvers(), semvers())
def test_compare_and_keys_follow_the_spec(a: str, b: str) -> None:
    key_a, key_b = SEMVER.sort_key(a), SEMVER.sort_key(b)
    assert ((key_a > key_b) - (key_a < key_b)) == SEMVER.compare(a, b) == spec_compare(a, b)


@settings(max_examples=200, deadline=None)
@given(semvers(), semvers())
def test_compare_is_antisymmetric(a: str, b: str) -> None:
    assert SEMVER.compare(a, b) == -SEMVER.compare(b, a)


@settings(max_examples=200, deadline=None)
@given(semvers(), semvers(), semvers())
def test_compare_is_transitive(a: str, b: str, c: str) -> None:
    low, middle, high = sorted([a, b, c], key=SEMVER.sort_key)
    assert SEMVER.compare(low, middle) <= 0
    assert SEMVER.compare(middle, high) <= 0
    assert SEMVER.compare(low, high) <= 0
    assert max(spec_compare(low, middle), spec_compare(middle, high), spec_compare(low, high)) <= 0


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="0123.-+avZ_", max_size=14))
def test_arbitrary_text_is_valid_exactly_when_the_grammar_allows_it(text: str) -> None:
    try:
        SEMVER.validate(text)
    except InvalidVersion:
        assert not spec_valid(text)
    else:
        assert spec_valid(text)
