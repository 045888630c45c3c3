"""Who is asking, and may they: the guards every API route and every page declares.

API routes use `Guard(permission)` as their Ninja `auth`; pages use `@page_guard(permission)`.
The permission is kept on the route (`Guard.permission`, `view.required_permission`) so a test
can walk the route table and compare it with the declared role matrix.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from ninja.security.base import AuthBase
from ninja.utils import check_csrf

from patchday.accounts import services
from patchday.accounts.models import ApiToken, User
from patchday.core.audit import Actor, ActorKind
from patchday.core.errors import AuthenticationFailed, PermissionDenied
from patchday.core.roles import Permission

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PUBLIC = "public"  # marker for pages anyone may open (login, health checks)


def source_address(request: HttpRequest) -> str:
    return str(request.META.get("REMOTE_ADDR") or "unknown")[:64]


def actor_for(request: HttpRequest) -> Actor:
    """The audit actor behind `request`: the token (on behalf of its owner) or the signed-in user."""
    user = cast(User, request.user)
    token: ApiToken | None = getattr(request, "api_token", None)
    if token is not None:
        return Actor(ActorKind.TOKEN, f"{user.username}/{token.prefix}", user.pk, source_address(request))
    if user.is_authenticated:
        return Actor(ActorKind.USER, user.username, user.pk, source_address(request))
    return Actor(ActorKind.USER, "anonymous", None, source_address(request))


class Guard(AuthBase):
    """Ninja auth: a Bearer API token, or the dashboard session (with CSRF on unsafe methods); then the role."""

    openapi_type = "http"
    openapi_scheme = "bearer"

    def __init__(self, permission: Permission) -> None:
        self.permission = permission
        super().__init__()

    def __call__(self, request: HttpRequest) -> User:
        user = self._authenticate(request)
        if not user.may(self.permission):
            raise PermissionDenied(f"role {user.role!r} may not do this (it needs {self.permission.value!r})")
        return user

    def _authenticate(self, request: HttpRequest) -> User:
        header = request.headers.get("Authorization", "")
        if header:
            scheme, _, value = header.partition(" ")
            if scheme.lower() != "bearer" or not value.strip():
                raise AuthenticationFailed("Authorization header must be 'Bearer <token>'")
            user, token = services.authenticate_token(value.strip())
            request.user = user
            request.api_token = token  # type: ignore[attr-defined]
            return user
        session_user = request.user
        if not session_user.is_authenticated:
            raise AuthenticationFailed("send an API token (Authorization: Bearer ...) or sign in")
        if request.method not in SAFE_METHODS and check_csrf(request) is not None:
            raise PermissionDenied("CSRF check failed: send the X-CSRFToken header with the session cookie")
        return session_user


V = TypeVar("V", bound=Callable[..., HttpResponse])


def page_guard(permission: Permission | str) -> Callable[[V], V]:
    """Require a signed-in, active user holding `permission` (or nothing, for PUBLIC)."""

    def decorate(view: V) -> V:
        if permission == PUBLIC:
            view.required_permission = PUBLIC  # type: ignore[attr-defined]
            return view

        @wraps(view)
        def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            user = request.user
            if not user.is_authenticated or not user.is_active:
                return redirect_to_login(request.get_full_path())
            if not user.may(Permission(permission)):
                return render(request, "dashboard/forbidden.html", {"permission": permission}, status=403)
            return view(request, *args, **kwargs)

        guarded.required_permission = permission  # type: ignore[attr-defined]
        return cast(V, guarded)

    return decorate
