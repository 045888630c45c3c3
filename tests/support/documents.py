"""Inventory documents (docs/inventory.md) built from the fixture fleet's real packages."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from patchday.collectors.inventory import empty_document
from patchday.core.matching import InstalledPackage


def document(
    packages: Iterable[InstalledPackage],
    hostname: str = "web-1",
    machine_id: str = "0123456789abcdef0123456789abcdef",
    pending: Iterable[dict[str, Any]] = (),
    **extra: Any,
) -> dict[str, Any]:
    """A full Debian 12 inventory document with these dpkg packages."""
    doc = empty_document(datetime(2026, 11, 28, 9, 0, tzinfo=UTC))
    doc.update(
        hostname=hostname,
        machine_id=machine_id,
        os={
            "id": "debian",
            "version_id": "12",
            "version_codename": "bookworm",
            "pretty_name": "Debian GNU/Linux 12 (bookworm)",
            "id_like": "",
        },
        architecture="x86_64",
        kernel={"running": "6.1.0-27-amd64", "installed": ["6.1.0-27-amd64"]},
        packages=[
            {
                "manager": "dpkg",
                "name": p.name,
                "version": p.version,
                "arch": p.arch or "",
                "source": p.source_name or p.name,
                "source_version": p.source_version or p.version,
            }
            for p in packages
        ],
        pending_updates=list(pending),
    )
    doc.update(extra)
    return doc


def pending_update(name: str, installed: str, candidate: str, security: bool = True) -> dict[str, Any]:
    return {
        "manager": "apt",
        "name": name,
        "arch": "amd64",
        "installed": installed,
        "candidate": candidate,
        "origin": "Debian-Security" if security else "Debian",
        "suite": "bookworm-security" if security else "bookworm",
        "security": security,
        "source": name,
        "source_version": candidate,
        "changelog_cves": ["CVE-2026-1234"] if security else [],
    }
