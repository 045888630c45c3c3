"""Semantic Versioning 2.0.0 versions (npm, Go modules, crates.io): validated, compared and turned into sort keys.

A version is ``MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]`` exactly as semver.org's grammar defines it: numbers without
leading zeros, dot-separated identifiers of ``[0-9A-Za-z-]``, and numeric pre-release identifiers without leading
zeros. One leading "v" is accepted and ignored, because Go writes its module versions that way (``v1.2.3``); Go's
shorthands ``v1`` and ``v1.2`` are not versions here.

Precedence (spec item 11): major, minor and patch numerically; a pre-release sorts before its release; pre-release
identifiers compare left to right, numeric ones numerically, alphanumeric ones in ASCII order, a numeric one below
an alphanumeric one, and a longer list above its own prefix. Build metadata is ignored, so ``1.0.0+a`` and
``1.0.0+b`` are equal and get equal keys. Go pseudo-versions (``v0.0.0-20191109021931-daa7c04131f5``) are
ordinary pre-releases and sort by their timestamp.

Sort key layout (bytes, compared with memcmp): major, minor and patch as numbers, then 0x01 for a release, or 0x00,
the pre-release identifiers and 0x00; a numeric identifier is 0x01 and a number, an alphanumeric one 0x02, its
ASCII text and 0x00. A number is its length plus one (one byte, or 0xFF and 4 bytes past 252 digits) followed by
its digits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from patchday.core.errors import InvalidVersion
from patchday.core.versions import KeyOrdered

_SCHEME: Final = "semver"
_NUMBER: Final = r"(?:0|[1-9][0-9]*)"
_IDENTIFIER: Final = rf"(?:{_NUMBER}|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
_PATTERN: Final = re.compile(
    rf"""
    v?
    (?P<major>{_NUMBER})\.(?P<minor>{_NUMBER})\.(?P<patch>{_NUMBER})
    (?:-(?P<prerelease>{_IDENTIFIER}(?:\.{_IDENTIFIER})*))?
    (?:\+(?P<build>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?
    """,
    re.VERBOSE,
)
_REASON: Final = "expected [v]MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD], numbers without leading zeros (SemVer 2.0.0)"

_PRERELEASE: Final = "\x00"  # 1.0.0-rc.1 < 1.0.0
_RELEASE: Final = "\x01"
_END: Final = "\x00"  # closes the identifier list and each alphanumeric identifier
_NUMERIC: Final = "\x01"  # numeric identifiers sort below alphanumeric ones
_ALPHANUMERIC: Final = "\x02"


def _number(digits: str) -> str:
    """ASCII digits (no leading zeros) as an order-preserving, prefix-free code: their count, then the digits."""
    size = len(digits)
    if size < 0xFD:
        return chr(size + 1) + digits
    return "\xff" + size.to_bytes(4, "big").decode("latin-1") + digits


def _identifier(identifier: str) -> str:
    if identifier.isdigit():
        return _NUMERIC + _number(identifier)
    return _ALPHANUMERIC + identifier + _END


@dataclass(frozen=True, slots=True)
class SemverScheme(KeyOrdered):
    """SemVer 2.0.0 precedence, with an optional leading "v"."""

    @property
    def name(self) -> str:
        return _SCHEME

    def sort_key(self, version: str) -> bytes:
        match = _PATTERN.fullmatch(version)
        if match is None:
            raise InvalidVersion(_SCHEME, version, _REASON)
        major, minor, patch, prerelease, _build = match.groups()
        key = _number(major) + _number(minor) + _number(patch)
        if prerelease is None:
            key += _RELEASE
        else:
            key += _PRERELEASE + "".join(map(_identifier, prerelease.split("."))) + _END
        return key.encode("latin-1")


SCHEME: Final = SemverScheme()
