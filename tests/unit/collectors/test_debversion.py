"""The collectors' own dpkg version order against dpkg's answers, and the kernel release order."""

from __future__ import annotations

import gzip
import json

import pytest

from patchday.collectors.debversion import compare_versions, kernel_release_key
from tests.unit.collectors.host_fakes import FIXTURES

PAIRS = json.loads(gzip.decompress((FIXTURES / "deb-version-pairs-subset.json.gz").read_bytes()))["pairs"]


@pytest.mark.parametrize("pair", PAIRS, ids=[f"{p['a']} ? {p['b']}" for p in PAIRS])
def test_compare_versions_answers_as_dpkg_does(pair: dict[str, str | int]) -> None:
    a, b = str(pair["a"]), str(pair["b"])
    assert compare_versions(a, b) == pair["expected"]
    assert compare_versions(b, a) == -int(pair["expected"])


@pytest.mark.parametrize(
    ("lower", "higher"),
    [
        ("1.0~rc1", "1.0"),
        ("1.0", "1.0+b1"),
        ("2:1.0", "10:0.1"),
        ("1.0-1", "1.0-1.1"),
        ("20250419~deb12u2", "20250419"),
        ("3.0.19-1~deb12u2", "3.0.22-1~deb12u2"),
    ],
)
def test_known_orderings(lower: str, higher: str) -> None:
    assert compare_versions(lower, higher) < 0 < compare_versions(higher, lower)


def test_absent_epoch_and_revision_are_zero() -> None:
    assert compare_versions("0:1.0", "1.0") == 0
    assert compare_versions("1.0-0", "1.0") == 0


@pytest.mark.parametrize(
    ("older", "newer"),
    [
        ("6.1.0-26-amd64", "6.1.0-27-amd64"),
        ("6.1.0-9-amd64", "6.1.0-10-amd64"),
        ("5.14.0-284.11.1.el9_2.x86_64", "5.14.0-284.30.1.el9_2.x86_64"),
        ("5.14.0-362.24.1.el9_3.x86_64", "5.14.0-427.13.1.el9_4.x86_64"),
        ("5.15.0-91-generic", "6.8.0-40-generic"),
    ],
)
def test_kernel_releases_sort_numerically(older: str, newer: str) -> None:
    assert kernel_release_key(older) < kernel_release_key(newer)
