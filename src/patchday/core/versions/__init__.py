"""Version schemes: parse, compare and order versions exactly as each ecosystem's own tools do.

Each scheme module (dpkg, rpm, apk, pep440, semver) exposes one `SCHEME` object satisfying
`VersionScheme`. `sort_key(v)` returns bytes whose byte order equals the scheme's order
(`compare(a, b) < 0` exactly when `sort_key(a) < sort_key(b)`; equal versions give equal keys),
so "introduced <= installed < fixed" can run as an indexed range check inside the database.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Protocol


class VersionScheme(Protocol):
    """One ecosystem's version semantics."""

    @property
    def name(self) -> str:
        """Short scheme name: 'dpkg', 'rpm', 'apk', 'pep440', 'semver'."""
        ...

    def validate(self, version: str) -> None:
        """Raise InvalidVersion (naming the version, the scheme and the reason) unless `version` parses."""
        ...

    def compare(self, a: str, b: str) -> int:
        """Negative, zero or positive as a sorts before, equal to, or after b; raises InvalidVersion."""
        ...

    def sort_key(self, version: str) -> bytes:
        """Bytes ordered as the versions are; raises InvalidVersion."""
        ...


class KeyOrdered(ABC):
    """Base of schemes whose order *is* their sort key: validate and compare follow from sort_key,
    so the key order and compare() cannot disagree."""

    __slots__ = ()

    @abstractmethod
    def sort_key(self, version: str) -> bytes:
        """Bytes ordered as the versions are; raises InvalidVersion."""

    def validate(self, version: str) -> None:
        self.sort_key(version)

    def compare(self, a: str, b: str) -> int:
        key_a, key_b = self.sort_key(a), self.sort_key(b)
        return (key_a > key_b) - (key_a < key_b)
