"""Inventory documents (docs/inventory.md, format 1) built from imported files rather than collected on a host."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

FORMAT: Final = 1


def utc_text(moment: datetime) -> str:
    """An aware time as the document writes it: "2026-11-28T09:30:00Z"."""
    if moment.tzinfo is None:
        raise ValueError("collected_at must be an aware time")
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def blank_document(*, collector: str, collected_at: datetime, hostname: str = "") -> dict[str, Any]:
    """A document with every key present and every fact empty, as a collector that read nothing leaves it."""
    return {
        "format": FORMAT,
        "collector": collector,
        "collected_at": utc_text(collected_at),
        "machine_id": "",
        "hostname": hostname,
        "fqdn": "",
        "addresses": [],
        "os": {"id": "", "version_id": "", "version_codename": "", "pretty_name": "", "id_like": ""},
        "architecture": "",
        "kernel": {"running": "", "installed": []},
        "boot_time": None,
        "uptime_seconds": None,
        "hardware": {
            "system_vendor": "",
            "product_name": "",
            "product_serial": "",
            "bios_vendor": "",
            "bios_version": "",
            "bios_date": "",
        },
        "packages": [],
        "python_packages": [],
        "pending_updates": [],
        "reboot": {"required": None, "reasons": [], "packages": []},
        "errors": [],
    }


def add_error(document: dict[str, Any], collector: str, message: str) -> None:
    """Record that a fact could not be read, the way collectors do (docs/inventory.md, "Rules")."""
    document["errors"].append({"collector": collector, "message": message})


def note_missing_facts(document: dict[str, Any], collector: str, what: str) -> None:
    """One error line per fact group that `what` (an import format: "osquery results") never carries."""
    for fact in ("network addresses", "running or installed kernels", "boot time or uptime", "pending updates"):
        add_error(document, collector, f"no {fact} in {what}")
    add_error(document, collector, f"no reboot-required state in {what}")
