"""A pending update as every package-manager collector (apt, dnf, apk) reports it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class PendingUpdate:
    """One installed package (or a new one an upgrade pulls in: `installed` is "") and the version it would get.

    `origin`/`suite` name where the candidate comes from (apt: release Label and codename; dnf: the
    advisory and repository; apk: the repository tag). `source`/`source_version` are the candidate's
    source package, "" when the package manager does not say.
    """

    manager: str
    name: str
    arch: str
    installed: str
    candidate: str
    origin: str = ""
    suite: str = ""
    security: bool = False
    source: str = ""
    source_version: str = ""
    changelog_cves: list[str] = field(default_factory=list)

    def as_document(self) -> dict[str, Any]:
        """The `pending_updates[]` entry of the inventory document."""
        return asdict(self)
