"""The dashboard's navigation: each area adds its pages here; a user sees those their role allows."""

from __future__ import annotations

from dataclasses import dataclass

from patchday.core.roles import Permission


@dataclass(frozen=True, slots=True)
class NavItem:
    label: str
    url_name: str
    permission: Permission


NAVIGATION: tuple[NavItem, ...] = (
    NavItem("Overview", "home", Permission.VIEW),
    NavItem("Hosts", "hosts", Permission.VIEW),
    NavItem("Vulnerabilities", "vulnerabilities", Permission.VIEW),
    NavItem("Feeds", "feeds", Permission.VIEW),
    NavItem("Audit trail", "audit-log", Permission.READ_AUDIT),
    NavItem("Users", "users", Permission.ADMINISTER),
    NavItem("API tokens", "tokens", Permission.VIEW),
)
