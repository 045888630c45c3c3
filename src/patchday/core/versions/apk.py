"""Alpine apk versions: validated, compared and turned into sort keys exactly as apk-tools 3 orders them.

Grammar (apk-tools `src/version.c`): ``digits{.digits}[letter]{_suffix[digits]}[~hash][-rN]``, for example
``1.2.3b_rc1_p2~1a2b-r4``. The suffixes ``_alpha _beta _pre _rc`` sort before the release, ``_cvs _svn _git _hg _p``
after it; ``~hash`` is a lowercase hex commit id compared as text; ``-rN`` is the package release.

apk compares the two strings token by token. When the tokens at a position are of the same kind their values
decide: numbers numerically, except that a dotted number with a leading zero on either side makes apk compare
the two as plain text (so ``1.0 < 1.00 < 1.001 < 1.01 < 1.1`` and ``8.2.0015 < 8.2.002``). When the kinds differ,
a pre-release suffix sorts lowest, and otherwise the version whose token comes *later* in the grammar sorts
lower: ``1.0_alpha < 1.0 < 1.0-r0 < 1.0~ab < 1.0_p1 < 1.0a < 1.0.1``. Note ``1.0 < 1.0-r0``: apk does not treat a
missing ``-r0`` as ``-r0``.

Quirks of apk-tools not reproduced: apk keeps numbers in 64 bits and wraps beyond 2**64 - 1, where this module
compares the true values; apk also accepts bytes >= 0x80 inside a ``~hash``, which this module rejects. apk-tools 2
(Alpine 3.22 and older) read a dotted number starting with "0" differently (``1.00 < 1.0``, ``8.2.002 < 8.2.0015``),
had no ``~hash`` and accepted a few forms apk-tools 3 refuses (``1.0a1``); versions without those order the same.

Sort key layout (bytes, compared with memcmp): the first number, then one rank byte and a value per later token,
then the end rank 0x02. Ranks: pre-release suffix 0x01, end 0x02, ``-r`` 0x03, ``~hash`` 0x04, suffix number 0x05,
post-release suffix 0x06, letter 0x07, dotted number 0x08; so where two versions first differ in kind, the ranks
decide as apk does. Numbers are their length without leading zeros plus one (one byte, or 0xFF and 4 bytes past 252
digits) followed by the digits; a dotted number starting with "0" is instead 0x00, its digits and 0x00 (text order,
below every number that does not start with "0"); a hash is its text and 0x00; a suffix is its apk rank byte.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from patchday.core.errors import InvalidVersion
from patchday.core.versions import KeyOrdered

_SCHEME: Final = "apk"
_PATTERN: Final = re.compile(
    r"""
    (?P<numbers>[0-9]+(?:\.[0-9]+)*)
    (?P<letter>[a-z])?
    (?P<suffixes>(?:_(?:alpha|beta|pre|rc|cvs|svn|git|hg|p)[0-9]*)*)
    (?:~(?P<commit>[0-9a-f]+))?
    (?:-r(?P<revision>[0-9]+))?
    """,
    re.VERBOSE,
)
_SUFFIX: Final = re.compile(r"_([a-z]+)([0-9]*)")
_REASON: Final = (
    "expected digits{.digits}[letter]{_suffix[N]}[~hash][-rN] with suffixes alpha, beta, pre, rc, cvs, svn, git, hg, p"
)

# Each token is a rank byte then its value. Ranks follow apk's rule for tokens of different kinds: a pre-release
# suffix lowest, then the kinds from last in the grammar to first. END closes every key, so keys are prefix-free.
_PRE_SUFFIX: Final = "\x01"
_END: Final = "\x02"
_REVISION: Final = "\x03"
_COMMIT: Final = "\x04"
_SUFFIX_NUMBER: Final = "\x05"
_POST_SUFFIX: Final = "\x06"
_LETTER: Final = "\x07"
_DOTTED: Final = "\x08"
_SUFFIXES: Final = {
    "alpha": _PRE_SUFFIX + "\x01",
    "beta": _PRE_SUFFIX + "\x02",
    "pre": _PRE_SUFFIX + "\x03",
    "rc": _PRE_SUFFIX + "\x04",
    "cvs": _POST_SUFFIX + "\x06",
    "svn": _POST_SUFFIX + "\x07",
    "git": _POST_SUFFIX + "\x08",
    "hg": _POST_SUFFIX + "\x09",
    "p": _POST_SUFFIX + "\x0a",
}


def _number(digits: str) -> str:
    """ASCII digits as an order-preserving, prefix-free code: their count without leading zeros, then the digits."""
    significant = digits.lstrip("0")
    size = len(significant)
    if size < 0xFD:
        return chr(size + 1) + significant
    return "\xff" + size.to_bytes(4, "big").decode("latin-1") + significant


def _dotted(digits: str) -> str:
    # apk compares a dotted number as text when either side starts with "0" (as Gentoo does), numerically otherwise.
    # Text starting with "0" sorts below every number that does not, so the two codes only need a leading marker.
    if digits[0] == "0":
        return _DOTTED + "\x00" + digits + "\x00"
    return _DOTTED + "\x01" + _number(digits)


@dataclass(frozen=True, slots=True)
class ApkScheme(KeyOrdered):
    """Alpine's apk version order (apk-tools 3 `apk version -t`)."""

    @property
    def name(self) -> str:
        return _SCHEME

    def sort_key(self, version: str) -> bytes:
        match = _PATTERN.fullmatch(version)
        if match is None:
            raise InvalidVersion(_SCHEME, version, _REASON)
        numbers, letter, suffixes, commit, revision = match.groups()
        first, *rest = numbers.split(".")
        parts = [_number(first)]
        parts.extend(_dotted(digits) for digits in rest)
        if letter:
            parts.append(_LETTER + letter)
        for suffix, digits in _SUFFIX.findall(suffixes):
            parts.append(_SUFFIXES[suffix])
            if digits:
                parts.append(_SUFFIX_NUMBER + _number(digits))
        if commit:
            parts.append(_COMMIT + commit + "\x00")
        if revision is not None:
            parts.append(_REVISION + _number(revision))
        parts.append(_END)
        return "".join(parts).encode("latin-1")


SCHEME: Final = ApkScheme()
