"""Use cases of accounts: users and roles, API tokens, signing in with throttling. The only writers."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from patchday.accounts.models import ApiToken, LoginFailure, User
from patchday.audit import services as audit
from patchday.core.audit import Actor, ActorKind
from patchday.core.errors import (
    AuthenticationFailed,
    Conflict,
    InvalidInput,
    LoginThrottled,
    NotFound,
    PermissionDenied,
)
from patchday.core.roles import Permission, Role

USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,149}$")
TOKEN_PREFIX = "pd_"
MAX_FAILURES = 5
FAILURE_WINDOW = timedelta(minutes=15)


# -- users ---------------------------------------------------------------------------------------


def _check_username(username: str) -> str:
    if not USERNAME_PATTERN.fullmatch(username):
        raise InvalidInput(
            f"username {username[:40]!r} is not valid: use 1-150 letters, digits and . _ @ + -, "
            "starting with a letter or digit",
            field="username",
        )
    return username


def _check_password(password: str, user: User | None = None) -> None:
    try:
        password_validation.validate_password(password, user)
    except ValidationError as exc:
        raise InvalidInput("password rejected: " + " ".join(exc.messages), field="password") from exc


def generate_password() -> str:
    """A random password that passes the validators (about 120 bits)."""
    return secrets.token_urlsafe(18)


def get_user(username: str) -> User:
    try:
        return User.objects.get(username=username)
    except User.DoesNotExist:
        raise NotFound(f"no user named {username!r}") from None


def list_users() -> QuerySet[User]:
    return User.objects.order_by("username")


def create_user(actor: Actor, username: str, role: Role, password: str | None = None) -> tuple[User, str | None]:
    """Create an active user; returns it and the generated password when none was given (shown once)."""
    _check_username(username)
    generated = None
    if password is None:
        password = generated = generate_password()
    _check_password(password, User(username=username))
    try:
        with transaction.atomic():
            user = User(username=username, role=role.value, is_staff=False, is_superuser=False)
            user.set_password(password)
            user.save()
            audit.record(actor, "user.create", "user", user.username, {"role": role.value})
    except IntegrityError:
        raise Conflict(f"a user named {username!r} already exists") from None
    return user, generated


def set_role(actor: Actor, username: str, role: Role) -> User:
    with transaction.atomic():
        user = get_user(username)
        before = user.role
        _keep_one_admin(user, new_role=role)
        user.role = role.value
        user.save(update_fields=["role"])
        audit.record(actor, "user.set_role", "user", username, {"role": [before, role.value]})
    return user


def set_active(actor: Actor, username: str, active: bool) -> User:
    """Disable (or enable again) a user; a disabled user cannot sign in and their tokens stop working."""
    with transaction.atomic():
        user = get_user(username)
        if actor.user_id is not None and actor.user_id == user.pk and not active:
            raise Conflict("you cannot disable your own account")
        if not active:
            _keep_one_admin(user, new_role=None)
        user.is_active = active
        user.save(update_fields=["is_active"])
        audit.record(actor, "user.enable" if active else "user.disable", "user", username, {"active": active})
    return user


def change_user(actor: Actor, username: str, role: Role | None = None, active: bool | None = None) -> User:
    """Change a user's role and/or active flag as one change: if either part is refused, neither is made."""
    with transaction.atomic():
        user = get_user(username)
        if role is not None:
            user = set_role(actor, username, role)
        if active is not None:
            user = set_active(actor, username, active)
    return user


def set_password(actor: Actor, username: str, password: str) -> User:
    with transaction.atomic():
        user = get_user(username)
        _check_password(password, user)
        user.set_password(password)
        user.save(update_fields=["password"])
        audit.record(actor, "user.set_password", "user", username, {})
    return user


def _keep_one_admin(user: User, new_role: Role | None) -> None:
    """Refuse a change that would leave no active admin (the system could no longer be administered)."""
    if user.role != Role.ADMIN or not user.is_active or new_role is Role.ADMIN:
        return
    # Lock the active admins, so that two admins demoting each other at once cannot both succeed
    # (on PostgreSQL; SQLite's IMMEDIATE transactions already run one writer at a time).
    admins = User.objects.select_for_update().filter(role=Role.ADMIN, is_active=True)
    if not any(pk != user.pk for pk in admins.values_list("pk", flat=True)):
        raise Conflict(f"{user.username!r} is the last active admin; make another admin first")


# -- API tokens -----------------------------------------------------------------------------------


def _hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A new token: `secret` is the whole bearer value and is never stored or shown again."""

    token: ApiToken
    secret: str


def create_token(actor: Actor, owner: User, name: str, expires_at: datetime | None = None) -> IssuedToken:
    name = name.strip()
    if not 0 < len(name) <= 100:
        raise InvalidInput("token name must be 1-100 characters", field="name")
    now = timezone.now()
    if expires_at is not None and expires_at <= now:
        raise InvalidInput("token expiry must be in the future", field="expires_at")
    prefix = secrets.token_hex(6)
    secret = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=owner,
            name=name,
            prefix=prefix,
            token_hash=_hash_token(secret),
            created_at=now,
            expires_at=expires_at,
        )
        audit.record(
            actor,
            "token.create",
            "api_token",
            prefix,
            {
                "owner": owner.username,
                "name": name,
                "expires_at": expires_at.isoformat() if expires_at else None,
            },
        )
    return IssuedToken(token=token, secret=secret)


def list_tokens(owner: User | None) -> QuerySet[ApiToken]:
    """Tokens of `owner`, or every token when owner is None (admins)."""
    rows = ApiToken.objects.select_related("user")
    return rows.filter(user=owner) if owner is not None else rows


def revoke_token(actor: Actor, requester: User | None, prefix: str) -> ApiToken:
    """Revoke a token. `requester` may revoke their own; admins (and the CLI, requester None) any."""
    with transaction.atomic():
        token = ApiToken.objects.select_related("user").filter(prefix=prefix).first()
        if token is None:
            raise NotFound(f"no API token with id {prefix!r}")
        if requester is not None and token.user_id != requester.pk and not requester.may(Permission.ADMINISTER):
            raise NotFound(f"no API token with id {prefix!r}")
        if token.revoked_at is not None:
            raise Conflict(f"API token {prefix!r} is already revoked")
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit.record(actor, "token.revoke", "api_token", prefix, {"owner": token.user.username})
    return token


def authenticate_token(raw: str) -> tuple[User, ApiToken]:
    """The active user and token behind bearer value `raw`; raises AuthenticationFailed otherwise."""
    parts = raw.split("_", 2)
    if len(parts) != 3 or f"{parts[0]}_" != TOKEN_PREFIX or len(raw) > 200:
        raise AuthenticationFailed("malformed API token")
    token = ApiToken.objects.select_related("user").filter(prefix=parts[1]).first()
    if token is None or not hmac.compare_digest(token.token_hash, _hash_token(raw)):
        raise AuthenticationFailed("unknown API token")
    now = timezone.now()
    if token.revoked_at is not None:
        raise AuthenticationFailed("API token was revoked")
    if token.expires_at is not None and token.expires_at <= now:
        raise AuthenticationFailed("API token has expired")
    if not token.user.is_active:
        raise AuthenticationFailed("the token's owner is disabled")
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)  # bookkeeping, coarse on purpose
    return token.user, token


# -- signing in -----------------------------------------------------------------------------------


def _recent_failures(username: str, source: str, now: datetime) -> tuple[int, int]:
    since = now - FAILURE_WINDOW
    recent = LoginFailure.objects.filter(at__gte=since)
    return recent.filter(username=username).count(), recent.filter(source_address=source).count()


def check_sign_in(username: str, password: str, source: str) -> User:
    """The active user with these credentials; raises LoginThrottled or AuthenticationFailed.

    After MAX_FAILURES failures in FAILURE_WINDOW for a username, or 4x that from one address,
    further attempts are refused without checking the password. Every outcome is audited; a
    failed or refused attempt is recorded as made by "anonymous", since nobody proved who they are.
    """
    now = timezone.now()
    name = username[:150]
    anonymous = Actor(kind=ActorKind.USER, name="anonymous", source_address=source)
    by_user, by_source = _recent_failures(name, source, now)
    if by_user >= MAX_FAILURES or by_source >= 4 * MAX_FAILURES:
        audit.record(
            anonymous, "session.login_throttled", "user", name, {"failures": by_user, "from_source": by_source}
        )
        raise LoginThrottled(
            "too many failed sign-ins; try again in 15 minutes",
            retry_after=int(FAILURE_WINDOW.total_seconds()),
        )
    user = User.objects.filter(username=username).first()
    if user is None:
        User().set_password(password)  # same work as a real check, so timing does not reveal usernames
        reason = "unknown user"
    elif not user.check_password(password):
        reason = "wrong password"
    elif not user.is_active:
        reason = "account disabled"
    else:
        reason = ""
    if reason or user is None:
        with transaction.atomic():  # a failed sign-in is itself a security event: kept and audited
            LoginFailure.objects.create(username=name, source_address=source, at=now)
            audit.record(anonymous, "session.login_failed", "user", name, {"reason": reason})
        raise AuthenticationFailed("wrong username or password, or the account is disabled")
    with transaction.atomic():
        LoginFailure.objects.filter(username=username).delete()
        user.last_login = now
        user.save(update_fields=["last_login"])
        audit.record(Actor(ActorKind.USER, username, user.pk, source), "session.login", "user", username, {})
    return user


def require(user: User, permission: Permission) -> None:
    """Raise PermissionDenied unless `user` holds `permission`."""
    if not user.may(permission):
        raise PermissionDenied(f"role {user.role!r} may not do this (needs {permission.value!r})")
