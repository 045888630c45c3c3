"""PEP 440 versions against `packaging.version.Version`: real PyPI versions, PEP 440's own examples, generated ones."""

from __future__ import annotations

import gzip
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.version import InvalidVersion as PackagingInvalidVersion
from packaging.version import Version

from patchday.core.errors import InvalidVersion
from patchday.core.versions import VersionScheme
from patchday.core.versions.pep440 import SCHEME as PEP440

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "versions"


def packaging_version(text: str) -> Version | None:
    try:
        return Version(text)
    except PackagingInvalidVersion:
        return None


def our_key(text: str) -> bytes | None:
    try:
        return PEP440.sort_key(text)
    except InvalidVersion:
        return None


def sign(a: Version, b: Version) -> int:
    return (a > b) - (a < b)


def test_the_scheme_is_a_version_scheme_named_pep440() -> None:
    scheme: VersionScheme = PEP440
    assert scheme.name == "pep440"


def test_real_pypi_versions_order_as_packaging_orders_them() -> None:
    with gzip.open(FIXTURES / "pypi-osv-versions.txt.gz", "rt", encoding="utf-8") as fixture:
        texts = [line.rstrip("\n") for line in fixture if not line.startswith("#")]
    assert len(texts) > 10_000
    rows = [(text, packaging_version(text), our_key(text)) for text in texts]
    assert [text for text, version, key in rows if (version is None) != (key is None)] == []
    assert sum(version is None for _, version, _ in rows) > 50  # real junk ("0.9-eevee", "2019-09-12") is refused too
    ordered = sorted((key, version, text) for text, version, key in rows if key is not None and version is not None)
    # Sorted by our keys, neighbours must never step down in packaging's order, and tie exactly when packaging ties.
    steps = [
        (low_text, high_text)
        for (low_key, low, low_text), (high_key, high, high_text) in pairwise(ordered)
        if sign(low, high) != ((low_key > high_key) - (low_key < high_key))
    ]
    assert steps == []


# PEP 440's "Summary of permitted suffixes and relative ordering" example, then local labels and post-releases.
PEP440_ORDER = [
    "1.0.dev456",
    "1.0a1",
    "1.0a2.dev456",
    "1.0a12.dev456",
    "1.0a12",
    "1.0b1.dev456",
    "1.0b2",
    "1.0b2.post345.dev456",
    "1.0b2.post345",
    "1.0rc1.dev456",
    "1.0rc1",
    "1.0",
    "1.0+abc.5",
    "1.0+abc.7",
    "1.0+5",
    "1.0.post456.dev34",
    "1.0.post456",
    "1.0.15",
    "1.1.dev1",
    "1!0.1",
]


def test_pep440_examples_ascend() -> None:
    keys = [PEP440.sort_key(v) for v in PEP440_ORDER]
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)
    assert [Version(v) for v in PEP440_ORDER] == sorted(Version(v) for v in PEP440_ORDER)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("1.0-RC1", "1.0rc1"),
        ("1.0", "1.0.0"),
        ("1", "1.0.0.0"),
        ("v1.0", "1.0"),
        (" 1.0\n", "1.0"),
        ("1.0alpha", "1.0a0"),
        ("1.0.c.2", "1.0rc2"),
        ("1.0-preview_3", "1.0rc3"),
        ("1.0-1", "1.0.post1"),
        ("1.0.r", "1.0.post0"),
        ("1.0REV2", "1.0.post2"),
        ("1.0-dev", "1.0.dev0"),
        ("0!1.0", "1.0"),
        ("01.002", "1.2"),
        ("1.0+Ubuntu-1", "1.0+ubuntu.1"),
        ("1.0+01", "1.0+1"),
        ("1.0a-", "1.0a0"),
    ],
)
def test_spellings_of_one_version_have_equal_keys(a: str, b: str) -> None:
    assert Version(a) == Version(b)  # the premise, as packaging reads it
    assert PEP440.sort_key(a) == PEP440.sort_key(b)
    assert PEP440.compare(a, b) == 0


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1.0+",
        "1.0-",
        "1..0",
        ".1",
        "1.",
        "a3",
        "1.0 1",
        "v 1.0",
        "1.0+ab_",
        "1.0+ü",
        "\u0661.\u0660",
        "1.0+\u212a",
        "1!",
    ],
)
def test_invalid_versions_raise_invalid_version(text: str) -> None:
    assert packaging_version(text) is None  # the premise
    with pytest.raises(InvalidVersion) as caught:
        PEP440.validate(text)
    assert (caught.value.scheme, caught.value.version) == ("pep440", text)


def test_numbers_beyond_one_length_byte_keep_their_order() -> None:
    big, bigger = "9" * 300, "1" + "0" * 300
    assert PEP440.compare(f"1.{big}", f"1.{bigger}") < 0
    assert PEP440.compare(f"1.0+{big}", f"1.0+{bigger}") < 0


def separator() -> st.SearchStrategy[str]:
    return st.sampled_from(["", "", ".", "-", "_"])


def number() -> st.SearchStrategy[str]:
    return st.sampled_from(["0", "00", "1", "01", "2", "10", "456"])


def spelling(words: list[str]) -> st.SearchStrategy[str]:
    return st.sampled_from(words).flatmap(lambda word: st.sampled_from([word, word.upper(), word.capitalize()]))


@st.composite
def pep440_texts(draw: st.DrawFn) -> str:
    """Versions in every spelling PEP 440 allows, plus near misses (stray separators, empty parts)."""
    text = draw(st.sampled_from(["", "", "v", "V", " ", "\t"]))
    text += draw(st.sampled_from(["", "", "", "1!", "0!", "2!"]))
    text += ".".join(draw(st.lists(number(), min_size=1, max_size=4)))
    if draw(st.booleans()):
        text += draw(separator()) + draw(spelling(["a", "alpha", "b", "beta", "c", "rc", "pre", "preview"]))
        text += draw(separator()) + draw(st.sampled_from(["", "0", "1", "2", "11"]))
    if draw(st.booleans()):
        if draw(st.booleans()):
            text += "-" + draw(number())
        else:
            text += draw(separator()) + draw(spelling(["post", "rev", "r"])) + draw(separator())
            text += draw(st.sampled_from(["", "0", "1", "345"]))
    if draw(st.booleans()):
        text += draw(separator()) + draw(spelling(["dev"])) + draw(separator()) + draw(st.sampled_from(["", "0", "3"]))
    if draw(st.booleans()):
        segments = draw(st.lists(st.sampled_from(["abc", "ABC", "5", "05", "7", "z", "ubuntu1", ""]), min_size=1))
        text += "+" + draw(separator()).join(segments)
    return text + draw(st.sampled_from(["", "", " ", "\u3000"]))


@settings(max_examples=300, deadline=None)
@given(pep440_texts(), pep440_texts())
def test_generated_versions_order_as_packaging_orders_them(a: str, b: str) -> None:
    version_a, version_b = packaging_version(a), packaging_version(b)
    key_a, key_b = our_key(a), our_key(b)
    assert (version_a is None) == (key_a is None)
    assert (version_b is None) == (key_b is None)
    if version_a is not None and version_b is not None and key_a is not None and key_b is not None:
        assert ((key_a > key_b) - (key_a < key_b)) == sign(version_a, version_b) == PEP440.compare(a, b)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789.!+-_ vabcdeprost", max_size=14))
def test_arbitrary_text_is_valid_exactly_when_packaging_accepts_it(text: str) -> None:
    assert (our_key(text) is None) == (packaging_version(text) is None)
