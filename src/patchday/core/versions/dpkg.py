"""Debian versions ([epoch:]upstream[-revision]) parsed, compared and keyed exactly as dpkg 1.21 does.

Validity follows `dpkg --validate-version`: what dpkg only warns about (an upstream version not
starting with a digit, characters outside [A-Za-z0-9.+~-:]) is rejected too, with dpkg's own
wording as the reason. Order follows `dpkg --compare-versions`: epochs numerically, then upstream
and revision by dpkg's algorithm: alternate non-digit runs (compared character by character, '~'
before the end of the run, the end before letters, letters before other characters) and digit runs
(compared as numbers of any length). An absent revision equals "0"; "1.0" == "1.0-0" == "0:1.0".

Sort key layout (bytes, compared with memcmp): 4-byte big-endian epoch, then upstream and revision,
each as its runs: every non-digit run as one weight byte per character followed by the run end
byte 0x02, every digit run as its length without leading zeros (one byte, or 0xFF and 8 bytes past
254 digits) followed by its digits, and 0x02 once more to close the part. A part always starts
with a (possibly empty) non-digit run and every later non-digit run is non-empty, so the closing
0x02 can only meet a character weight, where it orders like dpkg's "end of string": the encoding
is prefix-free and its byte order is dpkg's order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from patchday.core.errors import InvalidVersion

_SCHEME: Final = "dpkg"
_INT_MAX: Final = 2**31 - 1
_BLANKS: Final = " \t"  # dpkg trims and refuses embedded c_isblank() characters only
_DIGITS: Final = frozenset("0123456789")

# strtol() on the text before the first colon: C isspace(), an optional sign, decimal digits.
_EPOCH: Final = re.compile(r"[ \t\n\v\f\r]*([+-]?)([0-9]*)")
_UPSTREAM_TAIL: Final = re.compile(r"[0-9A-Za-z.+~:-]*")
_REVISION: Final = re.compile(r"[0-9A-Za-z.+~]*")
# One digit run, leading zeros outside the group ("000" -> ""), for the key builder.
_DIGIT_RUN: Final = re.compile(r"(?=[0-9])0*([0-9]*)")
_NON_DIGIT_RUN: Final = re.compile(r"[^0-9]*")

_RUN_END: Final = "\x02"
# dpkg's order(): '~' < end of run < letters (ASCII order) < every other character (ASCII order).
# Letters keep their own code (0x41..0x7a); '.', '+', '-', ':' move above them (+0x80).
_WEIGHTS: Final = str.maketrans({"~": "\x01", "+": "\xab", "-": "\xad", ".": "\xae", ":": "\xba"})


def _strip_blanks(version: str) -> str:
    text = version.lstrip(_BLANKS)
    end = 0
    while end < len(text) and text[end] not in _BLANKS:
        end += 1
    if text[end:].strip(_BLANKS):
        raise InvalidVersion(_SCHEME, version, "version string has embedded spaces")
    if not text:
        raise InvalidVersion(_SCHEME, version, "version string is empty")
    return text[:end] if end < len(text) else text


def _parse_epoch(version: str, text: str, colon: int) -> int:
    match = _EPOCH.match(text)
    assert match is not None  # every part of the pattern may match empty
    sign, digits = match.groups()
    if not digits:
        raise InvalidVersion(_SCHEME, version, "epoch in version is empty")
    if match.end() != colon:
        raise InvalidVersion(_SCHEME, version, "epoch in version is not number")
    digits = digits.lstrip("0")
    if sign == "-" and digits:
        raise InvalidVersion(_SCHEME, version, "epoch in version is negative")
    if len(digits) > 10 or int(digits or "0") > _INT_MAX:  # length first: int() of a huge string is slow
        raise InvalidVersion(_SCHEME, version, "epoch in version is too big")
    return int(digits or "0")


def _split(version: str) -> tuple[int, str, str]:
    """(epoch, upstream, revision) of a valid version; raises InvalidVersion with dpkg's reason."""
    if version[:1] in _DIGITS and version[-1:] not in _BLANKS:
        text = version  # the common case: nothing to trim, no embedded blank can hide before the epoch
        if " " in text or "\t" in text:
            text = _strip_blanks(version)
    else:
        text = _strip_blanks(version)
    colon = text.find(":")
    if colon < 0:
        epoch, rest = 0, text
    else:
        epoch = _parse_epoch(version, text, colon)
        rest = text[colon + 1 :]
        if not rest and version.endswith(":"):  # dpkg looks past its trimmed end: "1: " has an empty version
            raise InvalidVersion(_SCHEME, version, "nothing after colon in version number")
    hyphen = rest.rfind("-")
    if hyphen < 0:
        upstream, revision = rest, ""
    else:
        upstream, revision = rest[:hyphen], rest[hyphen + 1 :]
        if not revision:
            raise InvalidVersion(_SCHEME, version, "revision number is empty")
    if not upstream:
        raise InvalidVersion(_SCHEME, version, "version number is empty")
    if upstream[0] not in _DIGITS:
        raise InvalidVersion(_SCHEME, version, "version number does not start with digit")
    if _UPSTREAM_TAIL.fullmatch(upstream, 1) is None:
        raise InvalidVersion(_SCHEME, version, "invalid character in version number")
    if revision and _REVISION.fullmatch(revision) is None:
        raise InvalidVersion(_SCHEME, version, "invalid character in revision number")
    return epoch, upstream, revision


def _digit_run_key(match: re.Match[str]) -> str:
    digits = match.group(1)
    if len(digits) < 0xFF:
        return _RUN_END + chr(len(digits)) + digits
    return _RUN_END + "\xff" + len(digits).to_bytes(8, "big").decode("latin-1") + digits


def _part_key(part: str) -> str:
    # Each digit run becomes "end of the preceding non-digit run" + length + digits; a part that
    # ends in a non-digit run (or is empty) gets that run's end and an empty digit run (0).
    key = _DIGIT_RUN.sub(_digit_run_key, part.translate(_WEIGHTS))
    if part[-1:] not in _DIGITS:
        key += _RUN_END + "\x00"
    return key + _RUN_END


def _order(char: str) -> int:
    """dpkg's weight of one character of a non-digit run ('' is the end of the run)."""
    if not char:
        return 0
    if char == "~":
        return -1
    if char.isascii() and char.isalpha():
        return ord(char)
    return ord(char) + 256


def _compare_part(a: str, b: str) -> int:
    i = j = 0
    while i < len(a) or j < len(b):
        run_a = _NON_DIGIT_RUN.match(a, i)
        run_b = _NON_DIGIT_RUN.match(b, j)
        assert run_a is not None
        assert run_b is not None
        text_a, text_b = run_a.group(), run_b.group()
        for k in range(max(len(text_a), len(text_b))):
            diff = _order(text_a[k : k + 1]) - _order(text_b[k : k + 1])
            if diff:
                return -1 if diff < 0 else 1
        i, j = run_a.end(), run_b.end()
        num_a = _DIGIT_RUN.match(a, i)
        num_b = _DIGIT_RUN.match(b, j)
        digits_a = num_a.group(1) if num_a else ""
        digits_b = num_b.group(1) if num_b else ""
        if (len(digits_a), digits_a) != (len(digits_b), digits_b):
            return -1 if (len(digits_a), digits_a) < (len(digits_b), digits_b) else 1
        i = num_a.end() if num_a else i
        j = num_b.end() if num_b else j
    return 0


@dataclass(frozen=True, slots=True)
class DpkgScheme:
    """Debian and Ubuntu package versions, as dpkg orders them."""

    @property
    def name(self) -> str:
        return _SCHEME

    def validate(self, version: str) -> None:
        _split(version)

    def compare(self, a: str, b: str) -> int:
        epoch_a, upstream_a, revision_a = _split(a)
        epoch_b, upstream_b, revision_b = _split(b)
        if epoch_a != epoch_b:
            return -1 if epoch_a < epoch_b else 1
        return _compare_part(upstream_a, upstream_b) or _compare_part(revision_a, revision_b)

    def sort_key(self, version: str) -> bytes:
        epoch, upstream, revision = _split(version)
        key = _part_key(upstream) + _part_key(revision)
        return epoch.to_bytes(4, "big") + key.encode("latin-1")


SCHEME: Final = DpkgScheme()
