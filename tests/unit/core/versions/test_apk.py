"""apk versions: apk-tools' own test vectors, its token-by-token rule on generated versions, and sort keys.

apk-tools is not packaged for Debian, so `apk version -t` cannot make golden files here. The vectors come from
apk-tools' repository (tests/fixtures/versions/apk-version*.data, provenance inside), and `apk_reference` below
restates apk's comparison as its source describes it: walk both versions token by token; same kinds compare by
value, different kinds by apk's fixed rule.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patchday.core.errors import InvalidVersion
from patchday.core.versions import VersionScheme
from patchday.core.versions.apk import SCHEME as APK

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "versions"
SIGN = {"<": -1, "=": 0, ">": 1}


def read_apk_data(name: str) -> tuple[list[tuple[str, str, str]], list[str], list[str]]:
    """Comparisons ("a", "<", "b"), valid versions and invalid versions, as apk-tools' version.data lists them."""
    comparisons: list[tuple[str, str, str]] = []
    valid: list[str] = []
    invalid: list[str] = []
    for raw in (FIXTURES / name).read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        if len(fields) == 3:
            a, op, b = fields
            comparisons.append((a, op, b))
        elif line.startswith("!"):
            invalid.append(line[1:])
        else:
            valid.append(line)
    return comparisons, valid, invalid


COMPARISONS = [c for name in ("apk-version.data", "apk-version-v3.data") for c in read_apk_data(name)[0]]
LISTED_VALID = read_apk_data("apk-version-v3.data")[1]
LISTED_INVALID = read_apk_data("apk-version-v3.data")[2]


def is_valid(version: str) -> bool:
    try:
        APK.validate(version)
    except InvalidVersion:
        return False
    return True


# The upstream file also compares two invalid versions ("23_foo", "1.0bc") to pin apk's fallback; patchday refuses them.
VALID_COMPARISONS = [c for c in COMPARISONS if is_valid(c[0]) and is_valid(c[2])]
INVALID_IN_COMPARISONS = sorted({v for a, _, b in COMPARISONS for v in (a, b) if not is_valid(v)})


def test_the_scheme_is_a_version_scheme_named_apk() -> None:
    scheme: VersionScheme = APK
    assert scheme.name == "apk"


def test_the_fixture_is_read_whole() -> None:
    assert len(COMPARISONS) == 738
    assert INVALID_IN_COMPARISONS == ["1.0bc", "23_foo"]


@pytest.mark.parametrize(("a", "op", "b"), VALID_COMPARISONS)
def test_apk_scheme_orders_like_apk_tools(a: str, op: str, b: str) -> None:
    assert APK.compare(a, b) == SIGN[op]
    assert APK.compare(b, a) == -SIGN[op]
    key_a, key_b = APK.sort_key(a), APK.sort_key(b)
    assert ((key_a > key_b) - (key_a < key_b)) == SIGN[op]


@pytest.mark.parametrize("version", LISTED_VALID)
def test_versions_apk_tools_accepts_are_valid(version: str) -> None:
    APK.validate(version)


@pytest.mark.parametrize(
    "version", LISTED_INVALID + INVALID_IN_COMPARISONS + ["1.0-r1a", "1.0A", "1.0 ", "1.0~ABC", "\u0661.0"]
)
def test_versions_apk_tools_refuses_raise_invalid_version(version: str) -> None:
    with pytest.raises(InvalidVersion) as caught:
        APK.sort_key(version)
    assert (caught.value.scheme, caught.value.version) == ("apk", version)
    assert "apk" in str(caught.value)


@pytest.mark.parametrize(
    "ascending",
    [
        # a pre-release suffix lowest, then the later token kind in the grammar first
        ["1.0_alpha", "1.0_rc9", "1.0", "1.0-r0", "1.0-r1", "1.0~0ab", "1.0~ab", "1.0_cvs", "1.0_p1", "1.0a", "1.0.1"],
        # a dotted number with a leading zero on either side compares as text
        ["1.0", "1.00", "1.001", "1.01", "1.010", "1.1", "1.2", "1.10"],
        ["1.0_alpha_pre2", "1.0_alpha", "1.0_alpha0", "1.0_alpha1", "1.0_alpha1_p", "1.0_beta"],
        ["0.1_git20240101_pre1", "0.1_git20240101", "0.1_p1_pre2", "0.1_p1"],
        ["1.0_p9-r0", "1.0_p10-r0", "1.0_p10-r1"],
    ],
)
def test_sort_keys_follow_apk_order(ascending: list[str]) -> None:
    keys = [APK.sort_key(v) for v in ascending]
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)


@pytest.mark.parametrize(
    ("a", "b"),
    [("006", "6"), ("1.0_alpha01", "1.0_alpha1"), ("1.0-r01", "1.0-r1"), ("2.0_p007", "2.0_p7"), ("0", "000")],
)
def test_equal_versions_have_equal_keys(a: str, b: str) -> None:
    assert APK.compare(a, b) == 0
    assert APK.sort_key(a) == APK.sort_key(b)


def test_numbers_beyond_one_length_byte_keep_their_order() -> None:
    big, bigger = "9" * 300, "1" + "0" * 300
    assert APK.compare(f"1.{big}", f"1.{bigger}") < 0
    assert APK.compare(f"{big}_p{big}", f"{big}_p{bigger}") < 0


# --- apk's rule, restated token by token (independent of the key encoding) -------------------------------------

INITIAL, DIGIT, LETTER, SUFFIX, SUFFIX_NO, COMMIT, REVISION, END = range(8)
SUFFIX_ORDER = ["alpha", "beta", "pre", "rc", "", "cvs", "svn", "git", "hg", "p"]  # "" marks the release


def apk_tokens(version: str) -> list[tuple[int, str]] | None:
    """Tokens of a version as apk reads it, ending with END, or None where apk would stop at an invalid token."""
    tokens: list[tuple[int, str]] = []
    i, n = 0, len(version)

    def take(chars: str) -> str:
        nonlocal i
        start = i
        while i < n and version[i] in chars:
            i += 1
        return version[start:i]

    digits, lower, hexdigits = "0123456789", "abcdefghijklmnopqrstuvwxyz", "0123456789abcdef"
    first = take(digits)
    if not first:
        return None
    tokens.append((INITIAL, first))
    while i < n:
        kind, c = tokens[-1][0], version[i]
        if c in lower and kind <= DIGIT:
            tokens.append((LETTER, c))
            i += 1
        elif c == "." and kind <= DIGIT:
            i += 1
            value = take(digits)
            if not value:
                return None
            tokens.append((DIGIT, value))
        elif c in digits and kind == SUFFIX:
            tokens.append((SUFFIX_NO, take(digits)))
        elif c == "_" and kind <= SUFFIX_NO:
            i += 1
            name = take(lower)
            if not name or name not in SUFFIX_ORDER:
                return None
            tokens.append((SUFFIX, name))
        elif c == "~" and kind < COMMIT:
            i += 1
            value = take(hexdigits)
            if not value:
                return None
            tokens.append((COMMIT, value))
        elif version.startswith("-r", i) and kind < REVISION:
            i += 2
            value = take(digits)
            if not value:
                return None
            tokens.append((REVISION, value))
        else:
            return None
    tokens.append((END, ""))
    return tokens


def compare_values(kind: int, a: str, b: str) -> int:
    if (kind == DIGIT and "0" in (a[0], b[0])) or kind in (LETTER, COMMIT):
        return (a > b) - (a < b)  # as text
    if kind == SUFFIX:
        return (SUFFIX_ORDER.index(a) > SUFFIX_ORDER.index(b)) - (SUFFIX_ORDER.index(a) < SUFFIX_ORDER.index(b))
    return (int(a) > int(b)) - (int(a) < int(b))


def apk_reference(a: str, b: str) -> int:
    tokens_a, tokens_b = apk_tokens(a), apk_tokens(b)
    assert tokens_a is not None
    assert tokens_b is not None
    for (kind_a, value_a), (kind_b, value_b) in zip(tokens_a, tokens_b, strict=False):
        if kind_a != kind_b:
            if kind_a == SUFFIX and SUFFIX_ORDER.index(value_a) < SUFFIX_ORDER.index(""):
                return -1
            if kind_b == SUFFIX and SUFFIX_ORDER.index(value_b) < SUFFIX_ORDER.index(""):
                return 1
            return -1 if kind_a > kind_b else 1
        if kind_a == END:
            return 0
        result = compare_values(kind_a, value_a, value_b)
        if result:
            return result
    raise AssertionError("both token lists end with END")


def test_the_reference_agrees_with_apk_tools_vectors() -> None:
    assert all(apk_reference(a, b) == SIGN[op] for a, op, b in VALID_COMPARISONS)


NUMBERS = st.sampled_from(["0", "00", "01", "001", "1", "2", "10", "010", "9", "20240101"])
SUFFIX_NAMES = st.sampled_from([name for name in SUFFIX_ORDER if name])


@st.composite
def apk_versions(draw: st.DrawFn) -> str:
    version = ".".join(draw(st.lists(NUMBERS, min_size=1, max_size=3)))
    version += draw(st.sampled_from(["", "", "a", "b", "z"]))
    for name in draw(st.lists(SUFFIX_NAMES, max_size=2)):
        version += f"_{name}" + draw(st.sampled_from(["", "", "0", "1", "02", "10"]))
    version += draw(st.sampled_from(["", "", "", "~0", "~ab", "~ab1", "~b"]))
    version += draw(st.sampled_from(["", "", "-r0", "-r1", "-r01", "-r10"]))
    return version


@settings(max_examples=400, deadline=None)
@given(apk_versions(), apk_versions())
def test_keys_order_generated_versions_as_apk_does(a: str, b: str) -> None:
    key_a, key_b = APK.sort_key(a), APK.sort_key(b)
    assert ((key_a > key_b) - (key_a < key_b)) == apk_reference(a, b) == APK.compare(a, b)


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="0123456789._-~rapbetlhgz", max_size=12))
def test_apk_scheme_accepts_exactly_what_apk_reads_to_the_end(text: str) -> None:
    assert is_valid(text) == (apk_tokens(text) is not None)
