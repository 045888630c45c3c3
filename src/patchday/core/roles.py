"""Roles, the permissions each grants, and the one question: may this role do that."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Final


class Role(StrEnum):
    """What a person (or their API token) may do in patchday."""

    ADMIN = "admin"
    OPERATOR = "operator"
    APPROVER = "approver"
    AUDITOR = "auditor"
    VIEWER = "viewer"


class Permission(StrEnum):
    """A kind of action; every route and page requires exactly one."""

    VIEW = "view"  # read the fleet, findings, plans, reports
    OPERATE = "operate"  # create plans, run and pause rollouts, manage hosts
    APPROVE = "approve"  # approve or reject changes and exceptions
    READ_AUDIT = "read_audit"  # read the audit trail and export evidence
    ADMINISTER = "administer"  # manage users, roles and system settings


ROLE_PERMISSIONS: Final[Mapping[Role, frozenset[Permission]]] = {
    Role.ADMIN: frozenset(Permission),
    Role.OPERATOR: frozenset({Permission.VIEW, Permission.OPERATE}),
    Role.APPROVER: frozenset({Permission.VIEW, Permission.APPROVE}),
    Role.AUDITOR: frozenset({Permission.VIEW, Permission.READ_AUDIT}),
    Role.VIEWER: frozenset({Permission.VIEW}),
}

ROLE_DESCRIPTIONS: Final[Mapping[Role, str]] = {
    Role.ADMIN: "everything, including users, roles and settings",
    Role.OPERATOR: "plans deployments, runs and pauses rollouts, manages hosts",
    Role.APPROVER: "approves or rejects changes and risk exceptions",
    Role.AUDITOR: "reads everything, including the audit trail, and exports evidence",
    Role.VIEWER: "reads the fleet, findings and reports",
}


def is_allowed(role: Role, permission: Permission) -> bool:
    """True when `role` grants `permission`."""
    return permission in ROLE_PERMISSIONS[role]


def parse_role(text: str) -> Role:
    """The Role named by `text`; raises InvalidInput naming the accepted roles."""
    from patchday.core.errors import InvalidInput

    try:
        return Role(text.strip().lower())
    except ValueError:
        accepted = ", ".join(r.value for r in Role)
        raise InvalidInput(f"unknown role {text!r}; accepted roles: {accepted}", field="role") from None
