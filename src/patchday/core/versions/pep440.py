"""PyPI versions (PEP 440): validated, compared and turned into sort keys exactly as `packaging.version.Version` does.

A version is ``[N!]N(.N)*[{a|b|rc}N][.postN][.devN][+local]``, read with PEP 440's normalisation: case does not
matter, a leading "v" and surrounding whitespace are dropped, "alpha", "beta", "c", "pre" and "preview" spell
"a", "b", "rc", "rc", "rc", "-N", "rev" and "r" spell a post-release, separators (".", "-", "_") are optional
and missing numbers are 0. So ``1.0-RC1 == 1.0rc1``, ``1.0 == 1.0.0 == v1`` and ``1.0+Ubuntu-1 == 1.0+ubuntu.1``.

Order: epoch, then release (trailing zeros ignored), then ``.devN`` of a plain release < ``aN`` < ``bN`` < ``rcN``
< the release < ``.postN``, each ``.devN`` just before what it is attached to, then the local label: none sorts
first, labels compare segment by segment, a text segment below a numeric one, a shorter label first.
``1.0+`` is not a version (a local label needs a segment).

Sort key layout (bytes, compared with memcmp): epoch, release components (trailing zeros dropped) and 0x00; then
pre-release (0x00 for a dev release of a plain release, 0x01/0x02/0x03 and a number for a/b/rc, 0x04 for none),
post-release (0x00 none, 0x01 and a number), dev release (0x00 and a number, 0x01 none), and local label (0x00 none,
0x01, its segments and 0x00; a text segment is 0x01, its lowercase text and 0x00, a numeric one 0x02 and a number).
A number is its length without leading zeros plus one (one byte, or 0xFF and 4 bytes past 252 digits) followed by
the digits, so it never starts with the 0x00 that ends a list.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from patchday.core.errors import InvalidVersion
from patchday.core.versions import KeyOrdered

_SCHEME: Final = "pep440"
# PEP 440 Appendix B's pattern, restricted to ASCII as packaging restricts it.
_PATTERN: Final = re.compile(
    r"""
    v?
    (?:(?P<epoch>[0-9]+)!)?
    (?P<release>[0-9]+(?:\.[0-9]+)*)
    (?:[._-]?(?P<pre_l>alpha|a|beta|b|preview|pre|c|rc)[._-]?(?P<pre_n>[0-9]+)?)?
    (?:-(?P<post_n1>[0-9]+)|[._-]?(?P<post_l>post|rev|r)[._-]?(?P<post_n2>[0-9]+)?)?
    (?:[._-]?(?P<dev_l>dev)[._-]?(?P<dev_n>[0-9]+)?)?
    (?:\+(?P<local>[a-z0-9]+(?:[._-][a-z0-9]+)*))?
    """,
    re.VERBOSE | re.IGNORECASE | re.ASCII,
)
_LOCAL_SEPARATOR: Final = re.compile(r"[._-]")
_SIMPLE: Final = frozenset("0123456789.")
_REASON: Final = "expected [N!]N(.N)*[{a|b|rc}N][.postN][.devN][+local] (PEP 440)"

_PRE: Final = {"a": "\x01", "alpha": "\x01", "b": "\x02", "beta": "\x02"}  # anything else spells rc
_RC: Final = "\x03"
_DEV_ONLY: Final = "\x00"  # 1.0.dev1 < 1.0a1
_NO_PRE: Final = "\x04"
_NO_POST: Final = "\x00"
_POST: Final = "\x01"
_DEV: Final = "\x00"
_NO_DEV: Final = "\x01"
_NO_LOCAL: Final = "\x00"
_LOCAL: Final = "\x01"
_END: Final = "\x00"  # closes the release and the local label: below every component
_TEXT_SEGMENT: Final = "\x01"
_NUMBER_SEGMENT: Final = "\x02"
# The key of a plain release with no epoch is "0 release 0x00 0x04 0x00 0x01 0x00": epoch 0, the release components,
# the end of the release, no pre-release, no post-release, no dev release, no local label.
_EPOCH_ZERO: Final = "\x01"
_PLAIN_TAIL: Final = _END + _NO_PRE + _NO_POST + _NO_DEV + _NO_LOCAL


def _number(digits: str) -> str:
    """ASCII digits as an order-preserving, prefix-free code: their count without leading zeros, then the digits.

    The code never starts with 0x00, which is left for the end markers.
    """
    significant = digits.lstrip("0")
    size = len(significant)
    if size < 0xFD:
        return chr(size + 1) + significant
    return "\xff" + size.to_bytes(4, "big").decode("latin-1") + significant


def _release(release: str) -> str:
    components = release.split(".")
    while components and not components[-1].strip("0"):
        components.pop()  # 1.0.0 == 1
    return "".join(map(_number, components))


def _local(label: str) -> str:
    segments = [_LOCAL]
    for segment in _LOCAL_SEPARATOR.split(label.lower()):
        if segment.isdigit():
            segments.append(_NUMBER_SEGMENT + _number(segment))
        else:
            segments.append(_TEXT_SEGMENT + segment + _END)
    segments.append(_END)
    return "".join(segments)


@dataclass(frozen=True, slots=True)
class Pep440Scheme(KeyOrdered):
    """PEP 440 version order, as `packaging.version.Version` implements it."""

    @property
    def name(self) -> str:
        return _SCHEME

    def sort_key(self, version: str) -> bytes:
        if version and _SIMPLE.issuperset(version):
            if "" in version.split("."):
                raise InvalidVersion(_SCHEME, version, _REASON)
            return (_EPOCH_ZERO + _release(version) + _PLAIN_TAIL).encode("latin-1")
        # packaging strips Unicode whitespace around the version; str.strip() removes the same characters.
        match = _PATTERN.fullmatch(version.strip())
        if match is None:
            raise InvalidVersion(_SCHEME, version, _REASON)
        epoch, release, pre_l, pre_n, post_n1, post_l, post_n2, dev_l, dev_n, local = match.groups()
        parts = [_number(epoch or "0"), _release(release), _END]
        has_post = post_n1 is not None or post_l is not None
        if pre_l is not None:
            parts.append(_PRE.get(pre_l.lower(), _RC) + _number(pre_n or "0"))
        elif dev_l is not None and not has_post:
            parts.append(_DEV_ONLY)
        else:
            parts.append(_NO_PRE)
        parts.append(_POST + _number(post_n1 or post_n2 or "0") if has_post else _NO_POST)
        parts.append(_DEV + _number(dev_n or "0") if dev_l is not None else _NO_DEV)
        parts.append(_local(local) if local is not None else _NO_LOCAL)
        return "".join(parts).encode("latin-1")


SCHEME: Final = Pep440Scheme()
