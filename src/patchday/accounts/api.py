"""API routes of accounts: the current user, users and roles (admins), API tokens."""

from __future__ import annotations

from datetime import datetime
from typing import cast

from django.http import HttpRequest
from ninja import Field, Router, Schema
from ninja.pagination import paginate
from ninja.responses import Status
from pydantic import AliasChoices

from patchday.accounts import services
from patchday.accounts.guards import Guard, actor_for
from patchday.accounts.models import ApiToken, User
from patchday.api.pagination import Pagination
from patchday.core.roles import ROLE_PERMISSIONS, Permission, Role

router = Router(tags=["accounts"])


# Output schemas read ORM rows (lists, lookups) and plain dicts (the created-once responses, which add
# a secret). Static resolvers would run on both and fail on the dicts, so fields that are named
# differently on the row say so with AliasChoices: the output name first, then the row's.


class UserOut(Schema):
    username: str
    role: Role
    active: bool = Field(validation_alias=AliasChoices("active", "is_active"))
    last_login: datetime | None
    date_joined: datetime


class MeOut(UserOut):
    permissions: list[Permission]

    @staticmethod
    def resolve_permissions(obj: User) -> list[Permission]:
        return sorted(ROLE_PERMISSIONS[Role(obj.role)])


class UserCreate(Schema):
    username: str = Field(min_length=1, max_length=150)
    role: Role
    password: str | None = Field(None, min_length=1, max_length=256, description="generated when absent")


class UserCreated(UserOut):
    generated_password: str | None = Field(None, description="shown once; present only when none was given")


class UserChange(Schema):
    role: Role | None = None
    active: bool | None = None


class TokenOut(Schema):
    # "prefix" first: a row also has an "id", its integer primary key, which is never shown
    id: str = Field(validation_alias=AliasChoices("prefix", "id"), description="the token's public prefix")
    name: str
    owner: str = Field(validation_alias=AliasChoices("owner", "user.username"))
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class TokenCreate(Schema):
    name: str = Field(min_length=1, max_length=100)
    expires_at: datetime | None = None


class TokenCreated(TokenOut):
    token: str = Field(description="the bearer value; shown once, never stored")


def _user(request: HttpRequest) -> User:
    return cast(User, request.auth)  # type: ignore[attr-defined]


@router.get("/me", response=MeOut, auth=Guard(Permission.VIEW), summary="The signed-in user and their permissions")
def me(request: HttpRequest) -> User:
    return _user(request)


@router.get("/users", response=list[UserOut], auth=Guard(Permission.ADMINISTER), summary="List users")
@paginate(Pagination)
def list_users(request: HttpRequest) -> object:
    return services.list_users()


@router.post("/users", response={201: UserCreated}, auth=Guard(Permission.ADMINISTER), summary="Create a user")
def create_user(request: HttpRequest, body: UserCreate) -> Status[dict[str, object]]:
    user, generated = services.create_user(actor_for(request), body.username, body.role, body.password)
    out = UserOut.from_orm(user).dict()
    return Status(201, {**out, "generated_password": generated})


@router.get("/users/{username}", response=UserOut, auth=Guard(Permission.ADMINISTER), summary="One user")
def get_user(request: HttpRequest, username: str) -> User:
    return services.get_user(username)


@router.patch(
    "/users/{username}", response=UserOut, auth=Guard(Permission.ADMINISTER), summary="Change role or disable"
)
def change_user(request: HttpRequest, username: str, body: UserChange) -> User:
    return services.change_user(actor_for(request), username, role=body.role, active=body.active)


@router.get("/tokens", response=list[TokenOut], auth=Guard(Permission.VIEW), summary="List API tokens")
@paginate(Pagination)
def list_tokens(request: HttpRequest, all: bool = False) -> object:
    """Your own tokens; admins may pass all=true to see everyone's."""
    user = _user(request)
    return services.list_tokens(None if all and user.may(Permission.ADMINISTER) else user)


@router.post("/tokens", response={201: TokenCreated}, auth=Guard(Permission.VIEW), summary="Create an API token")
def create_token(request: HttpRequest, body: TokenCreate) -> Status[dict[str, object]]:
    issued = services.create_token(actor_for(request), _user(request), body.name, body.expires_at)
    return Status(201, {**TokenOut.from_orm(issued.token).dict(), "token": issued.secret})


@router.delete("/tokens/{token_id}", response=TokenOut, auth=Guard(Permission.VIEW), summary="Revoke an API token")
def revoke_token(request: HttpRequest, token_id: str) -> ApiToken:
    return services.revoke_token(actor_for(request), _user(request), token_id)
