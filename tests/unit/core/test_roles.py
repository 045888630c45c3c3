"""Roles and what they grant: the table in core/roles.py, read as the issue describes each role."""

from __future__ import annotations

import pytest

from patchday.core.errors import InvalidInput
from patchday.core.roles import ROLE_DESCRIPTIONS, ROLE_PERMISSIONS, Permission, Role, is_allowed, parse_role

EXPECTED: dict[Role, set[Permission]] = {
    Role.ADMIN: {Permission.VIEW, Permission.OPERATE, Permission.APPROVE, Permission.READ_AUDIT, Permission.ADMINISTER},
    Role.OPERATOR: {Permission.VIEW, Permission.OPERATE},
    Role.APPROVER: {Permission.VIEW, Permission.APPROVE},
    Role.AUDITOR: {Permission.VIEW, Permission.READ_AUDIT},
    Role.VIEWER: {Permission.VIEW},
}


def test_the_five_roles_are_named_as_in_the_issue() -> None:
    assert [role.value for role in Role] == ["admin", "operator", "approver", "auditor", "viewer"]


def test_each_role_grants_exactly_its_permissions() -> None:
    assert {role: set(granted) for role, granted in ROLE_PERMISSIONS.items()} == EXPECTED


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("permission", list(Permission))
def test_is_allowed_reads_the_table(role: Role, permission: Permission) -> None:
    assert is_allowed(role, permission) is (permission in EXPECTED[role])


def test_only_admins_administer() -> None:
    assert [role for role in Role if is_allowed(role, Permission.ADMINISTER)] == [Role.ADMIN]


def test_every_role_may_view() -> None:
    assert all(is_allowed(role, Permission.VIEW) for role in Role)


def test_admin_holds_every_permission_even_new_ones() -> None:
    assert ROLE_PERMISSIONS[Role.ADMIN] == frozenset(Permission)


def test_every_role_has_a_description() -> None:
    assert set(ROLE_DESCRIPTIONS) == set(Role)
    assert all(text.strip() for text in ROLE_DESCRIPTIONS.values())


@pytest.mark.parametrize(
    ("text", "role"),
    [("admin", Role.ADMIN), ("Operator", Role.OPERATOR), ("  AUDITOR ", Role.AUDITOR), ("viewer\n", Role.VIEWER)],
)
def test_parse_role_accepts_any_case_and_surrounding_space(text: str, role: Role) -> None:
    assert parse_role(text) is role


@pytest.mark.parametrize("text", ["", "root", "admins", "view", "ad min"])
def test_parse_role_rejects_unknown_names_and_lists_the_accepted_ones(text: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_role(text)

    assert raised.value.field == "role"
    assert str(raised.value) == (f"unknown role {text!r}; accepted roles: admin, operator, approver, auditor, viewer")
