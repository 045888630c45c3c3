"""Dashboard pages of accounts: sign in and out, users and roles, API tokens, password."""

from __future__ import annotations

from typing import cast

from django import forms
from django.contrib import messages
from django.contrib.auth import login, logout, update_session_auth_hash
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from patchday.accounts import services
from patchday.accounts.guards import PUBLIC, actor_for, page_guard, source_address
from patchday.accounts.models import User
from patchday.core.errors import AuthenticationFailed, LoginThrottled, PatchdayError
from patchday.core.roles import ROLE_DESCRIPTIONS, Permission, Role

ROLE_CHOICES = [(r.value, f"{r.value} — {ROLE_DESCRIPTIONS[r]}") for r in Role]


class LoginForm(forms.Form):
    username = forms.CharField(max_length=150)
    password = forms.CharField(max_length=256, widget=forms.PasswordInput)


class UserForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=ROLE_CHOICES, initial=Role.VIEWER.value)  # least privilege by default


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100)
    expires_at = forms.DateTimeField(required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))


class PasswordForm(forms.Form):
    current = forms.CharField(max_length=256, widget=forms.PasswordInput, label="Current password")
    new = forms.CharField(max_length=256, widget=forms.PasswordInput, label="New password")


@page_guard(PUBLIC)
@require_http_methods(["GET", "POST"])
def login_page(request: HttpRequest) -> HttpResponse:
    next_url = request.POST.get("next") or request.GET.get("next") or "/"
    if not url_has_allowed_host_and_scheme(next_url, {request.get_host()}, require_https=request.is_secure()):
        next_url = "/"
    form = LoginForm(request.POST or None)
    error = None
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            user = services.check_sign_in(
                form.cleaned_data["username"], form.cleaned_data["password"], source_address(request)
            )
        except LoginThrottled as exc:
            error, status = str(exc), 429
        except AuthenticationFailed as exc:
            error, status = str(exc), 401
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            return redirect(next_url)
    return render(request, "accounts/login.html", {"form": form, "error": error, "next": next_url}, status=status)


@page_guard(Permission.VIEW)
@require_POST
def logout_page(request: HttpRequest) -> HttpResponse:
    from patchday.audit import services as audit

    audit.record(actor_for(request), "session.logout", "user", request.user.get_username(), {})
    logout(request)
    messages.info(request, "You are signed out.")
    return redirect("login")


@page_guard(Permission.ADMINISTER)
@require_http_methods(["GET", "POST"])
def users_page(request: HttpRequest) -> HttpResponse:
    form = UserForm(request.POST or None)
    created: dict[str, str] | None = None
    if request.method == "POST" and form.is_valid():
        try:
            user, password = services.create_user(
                actor_for(request), form.cleaned_data["username"], Role(form.cleaned_data["role"])
            )
        except PatchdayError as exc:
            messages.error(request, str(exc))
        else:
            created = {"username": user.username, "password": password or ""}
            form = UserForm()
    context = {"form": form, "users": services.list_users(), "roles": list(Role), "created": created}
    return render(request, "accounts/users.html", context)


@page_guard(Permission.ADMINISTER)
@require_POST
def user_change_page(request: HttpRequest, username: str) -> HttpResponse:
    actor = actor_for(request)
    try:
        if role := request.POST.get("role"):
            from patchday.core.roles import parse_role

            services.set_role(actor, username, parse_role(role))
            messages.success(request, f"{username} is now {role}.")
        elif (active := request.POST.get("active")) in {"true", "false"}:
            services.set_active(actor, username, active == "true")
            messages.success(request, f"{username} is {'enabled' if active == 'true' else 'disabled'}.")
        else:
            messages.error(request, "Nothing to change: send a role or active=true|false.")
    except PatchdayError as exc:
        messages.error(request, str(exc))
    return redirect("users")


@page_guard(Permission.VIEW)
@require_http_methods(["GET", "POST"])
def tokens_page(request: HttpRequest) -> HttpResponse:
    user = cast(User, request.user)
    form = TokenForm(request.POST or None)
    secret = None
    if request.method == "POST" and form.is_valid():
        try:
            issued = services.create_token(
                actor_for(request), user, form.cleaned_data["name"], form.cleaned_data["expires_at"]
            )
        except PatchdayError as exc:
            messages.error(request, str(exc))
        else:
            secret = issued.secret
            form = TokenForm()
    context = {"form": form, "tokens": services.list_tokens(user), "secret": secret}
    return render(request, "accounts/tokens.html", context)


@page_guard(Permission.VIEW)
@require_POST
def token_revoke_page(request: HttpRequest, token_id: str) -> HttpResponse:
    try:
        services.revoke_token(actor_for(request), cast(User, request.user), token_id)
        messages.success(request, f"Token {token_id} is revoked.")
    except PatchdayError as exc:
        messages.error(request, str(exc))
    return redirect("tokens")


@page_guard(Permission.VIEW)
@require_http_methods(["GET", "POST"])
def password_page(request: HttpRequest) -> HttpResponse:
    user = cast(User, request.user)
    form = PasswordForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if not user.check_password(form.cleaned_data["current"]):
            form.add_error("current", "This is not your current password.")
        else:
            try:
                services.set_password(actor_for(request), user.username, form.cleaned_data["new"])
            except PatchdayError as exc:
                form.add_error("new", str(exc))
            else:
                user.refresh_from_db()
                update_session_auth_hash(request, user)
                messages.success(request, "Your password is changed.")
                return redirect("home")
    return render(request, "accounts/password.html", {"form": form})
