"""Debian version order (`dpkg --compare-versions`) and a natural order for kernel release strings.

The collectors may not import patchday.core, so this is a compact copy of the algorithm in
patchday.core.versions.dpkg without its validation and sort keys: epochs numerically, then upstream
version and revision as alternating non-digit runs (character by character: '~' before the end of
the run, the end before letters, letters before everything else) and digit runs (as numbers).
"""

from __future__ import annotations

import re

_RUNS = re.compile(r"([^0-9]*)([0-9]*)")


def _split(version: str) -> tuple[int, str, str]:
    version = version.strip()
    epoch = 0
    head, colon, rest = version.partition(":")
    if colon and head.isdigit():
        epoch, version = int(head), rest
    upstream, hyphen, revision = version.rpartition("-")
    if not hyphen:
        upstream, revision = version, ""
    return epoch, upstream, revision


def _order(char: str) -> int:
    if char == "~":
        return -1
    if char.isascii() and char.isalpha():
        return ord(char)
    return ord(char) + 256


def _compare_text(a: str, b: str) -> int:
    for k in range(max(len(a), len(b))):
        weight_a = _order(a[k]) if k < len(a) else 0
        weight_b = _order(b[k]) if k < len(b) else 0
        if weight_a != weight_b:
            return -1 if weight_a < weight_b else 1
    return 0


def _compare_part(a: str, b: str) -> int:
    runs_a = _RUNS.findall(a)
    runs_b = _RUNS.findall(b)
    for k in range(max(len(runs_a), len(runs_b))):
        text_a, digits_a = runs_a[k] if k < len(runs_a) else ("", "")
        text_b, digits_b = runs_b[k] if k < len(runs_b) else ("", "")
        diff = _compare_text(text_a, text_b)
        if diff:
            return diff
        number_a, number_b = int(digits_a or "0"), int(digits_b or "0")
        if number_a != number_b:
            return -1 if number_a < number_b else 1
    return 0


def compare_versions(a: str, b: str) -> int:
    """-1, 0 or 1 as `dpkg --compare-versions a lt|eq|gt b` would answer (inputs are not validated)."""
    epoch_a, upstream_a, revision_a = _split(a)
    epoch_b, upstream_b, revision_b = _split(b)
    if epoch_a != epoch_b:
        return -1 if epoch_a < epoch_b else 1
    return _compare_part(upstream_a, upstream_b) or _compare_part(revision_a, revision_b)


_KERNEL_RUNS = re.compile(r"[0-9]+|[A-Za-z]+")


def kernel_release_key(release: str) -> tuple[tuple[int, int, str], ...]:
    """A sort key for kernel release strings ("6.1.0-27-amd64", "5.14.0-427.13.1.el9_4.x86_64").

    Numbers compare as numbers, letter runs alphabetically, numbers after letters; separators
    are ignored. This orders the releases one distribution installs side by side (same flavour,
    growing ABI and build numbers) as its package manager does, which is all the reboot check needs.
    """
    return tuple((1, int(run), "") if run.isdigit() else (0, 0, run) for run in _KERNEL_RUNS.findall(release))
