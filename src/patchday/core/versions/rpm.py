"""RPM versions ([epoch:]version[-release]) parsed, compared and keyed exactly as rpm 4.18 does.

Order is rpm's labelCompare: epochs (absent = 0), then versions, then releases, each with
rpmvercmp, except that an absent release sorts before any release. rpmvercmp reads a string as a
sequence of tokens: digit runs (compared as numbers of any length, leading zeros ignored), ASCII
letter runs (compared with strcmp), '~' and '^'; every other character only separates tokens, so
"1.0" == "1_0" == "1.0." and "1.01" == "1.1". Tokens compare as '~' < end of string < '^' <
letters < digits, which is why "1.0~rc1" < "1.0" < "1.0^git1" < "1.0a" < "1.0.1".

Validity is stricter than rpmvercmp (which takes any string) and follows what rpmbuild accepts in
Version and Release: ASCII letters, digits and "._+%{}~^"; a version may contain '-' (Red Hat
CNA data has versions like "3.2.11.Final-redhat-00001"), the release is what follows the last '-'.

Sort key layout (bytes, compared with memcmp): the epoch as a digit run, the version's tokens and
the end byte 0x02, then 0x00 when the release is absent or the release's tokens and 0x02. Tokens:
'~' 0x01, '^' 0x03, letters 0x04 + the letters + 0x00, digits 0x05 + their length without leading
zeros (one byte, or 0xFF and 8 bytes past 254 digits) + those digits. The encoding is prefix-free,
so byte order equals token order, part by part.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from patchday.core.errors import InvalidVersion

_SCHEME: Final = "rpm"
_EPOCH_MAX: Final = 2**32 - 1  # rpm headers store the epoch as a 32-bit number
_EPOCH: Final = re.compile(r"[0-9]+")
_VERSION: Final = re.compile(r"[0-9A-Za-z._+%{}~^-]+")
_RELEASE: Final = re.compile(r"[0-9A-Za-z._+%{}~^]+")
_ALLOWED: Final = "ASCII letters, digits and ._+%{}~^"

_TOKEN: Final = re.compile(r"[A-Za-z]+|[0-9]+|~|\^")
_TILDE: Final = "\x01"
_END: Final = "\x02"
_CARET: Final = "\x03"
_ALPHA: Final = "\x04"
_NUMBER: Final = "\x05"
_NO_RELEASE: Final = b"\x00"

# Token ranks for compare(), in rpmvercmp's order; the end of a string sits between '~' and '^'.
_RANK_TILDE, _RANK_END, _RANK_CARET, _RANK_ALPHA, _RANK_NUMBER = range(5)


@dataclass(frozen=True, slots=True)
class Evr:
    """An RPM epoch:version-release; `epoch` is 0 when absent, `release` None when absent."""

    epoch: int
    version: str
    release: str | None


def parse_evr(text: str) -> Evr:
    """Split "[epoch:]version[-release]" as rpm does (the release follows the last '-').

    Raises InvalidVersion for an empty string, a non-numeric or too large epoch, an empty version
    or release, or a character rpmbuild refuses in a version ("2:23.11-2.el9_5" is fine).
    """
    if not text:
        raise InvalidVersion(_SCHEME, text, "version string is empty")
    epoch_text, colon, body = text.partition(":")
    epoch = 0
    if not colon:
        body = text
    elif _EPOCH.fullmatch(epoch_text) is None:
        raise InvalidVersion(_SCHEME, text, "epoch is not a number")
    else:
        digits = epoch_text.lstrip("0")
        if len(digits) > 10 or int(digits or "0") > _EPOCH_MAX:  # length first: int() of a huge string is slow
            raise InvalidVersion(_SCHEME, text, f"epoch is larger than {_EPOCH_MAX}")
        epoch = int(digits or "0")
    version, hyphen, release = body.rpartition("-")
    if not hyphen:
        version = release
    if not version:
        raise InvalidVersion(_SCHEME, text, "version is empty")
    if _VERSION.fullmatch(version) is None:
        raise InvalidVersion(_SCHEME, text, f"invalid character in version: it may hold only {_ALLOWED} and '-'")
    if not hyphen:
        return Evr(epoch, version, None)
    if not release:
        raise InvalidVersion(_SCHEME, text, "release is empty after '-'")
    if _RELEASE.fullmatch(release) is None:
        raise InvalidVersion(_SCHEME, text, f"invalid character in release: it may hold only {_ALLOWED}")
    return Evr(epoch, version, release)


def _token_key(token: str) -> str:
    first = token[0]
    if first == "~":
        return _TILDE
    if first == "^":
        return _CARET
    if first > "9":
        return _ALPHA + token + "\x00"
    digits = token.lstrip("0")
    if len(digits) < 0xFF:
        return _NUMBER + chr(len(digits)) + digits
    return _NUMBER + "\xff" + len(digits).to_bytes(8, "big").decode("latin-1") + digits


def _part_key(part: str) -> str:
    return "".join([_token_key(token) for token in _TOKEN.findall(part)]) + _END


def _tokens(part: str) -> list[tuple[int, str]]:
    tokens = []
    for token in _TOKEN.findall(part):
        if token == "~":
            tokens.append((_RANK_TILDE, ""))
        elif token == "^":
            tokens.append((_RANK_CARET, ""))
        elif token[0] > "9":
            tokens.append((_RANK_ALPHA, token))
        else:
            tokens.append((_RANK_NUMBER, token.lstrip("0")))
    return tokens


def vercmp(a: str, b: str) -> int:
    """rpmvercmp(a, b): -1, 0 or 1 for any two strings (no validation; rpm takes anything)."""
    tokens_a, tokens_b = _tokens(a), _tokens(b)
    end = (_RANK_END, "")
    for index in range(max(len(tokens_a), len(tokens_b))):
        rank_a, text_a = tokens_a[index] if index < len(tokens_a) else end
        rank_b, text_b = tokens_b[index] if index < len(tokens_b) else end
        if rank_a != rank_b:
            return -1 if rank_a < rank_b else 1
        if rank_a == _RANK_NUMBER and len(text_a) != len(text_b):
            return -1 if len(text_a) < len(text_b) else 1
        if text_a != text_b:
            return -1 if text_a < text_b else 1
    return 0


@dataclass(frozen=True, slots=True)
class RpmScheme:
    """RHEL, Fedora, SUSE, AlmaLinux and Rocky package versions, as rpm's labelCompare orders them."""

    @property
    def name(self) -> str:
        return _SCHEME

    def validate(self, version: str) -> None:
        parse_evr(version)

    def compare(self, a: str, b: str) -> int:
        evr_a, evr_b = parse_evr(a), parse_evr(b)
        if evr_a.epoch != evr_b.epoch:
            return -1 if evr_a.epoch < evr_b.epoch else 1
        result = vercmp(evr_a.version, evr_b.version)
        if result or evr_a.release == evr_b.release:
            return result
        if evr_a.release is None or evr_b.release is None:
            return -1 if evr_a.release is None else 1
        return vercmp(evr_a.release, evr_b.release)

    def sort_key(self, version: str) -> bytes:
        evr = parse_evr(version)
        key = _token_key(str(evr.epoch)) + _part_key(evr.version)
        if evr.release is None:
            return key.encode("latin-1") + _NO_RELEASE
        return (key + _part_key(evr.release)).encode("latin-1")


SCHEME: Final = RpmScheme()
