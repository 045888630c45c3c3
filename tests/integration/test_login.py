"""Signing in and out through the real login page: sessions, CSRF, failures, throttling, redirects."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from patchday.accounts import services
from patchday.accounts.models import ApiToken, LoginFailure, User
from patchday.audit.models import AuditRecord
from patchday.core.errors import AuthenticationFailed, LoginThrottled
from patchday.core.roles import Role
from tests.conftest import SYSTEM_ACTOR, TEST_PASSWORD

pytestmark = pytest.mark.django_db

MakeUser = Callable[..., User]
WRONG = "not-the-password-at-all"


def sign_in(client: Client, username: str, password: str, address: str = "192.0.2.1", **data: str) -> Any:
    return client.post("/login/", {"username": username, "password": password, **data}, REMOTE_ADDR=address)


def is_signed_in(client: Client) -> bool:
    return client.get("/api/v1/me").status_code == 200


def fail(client: Client, username: str, times: int, address: str = "192.0.2.1") -> None:
    for _ in range(times):
        assert sign_in(client, username, WRONG, address).status_code == 401


@pytest.fixture
def alice(make_user: MakeUser) -> User:
    return make_user(Role.OPERATOR, username="alice")


# -- the happy path -------------------------------------------------------------------------------------


def test_the_login_page_is_a_form_with_a_csrf_token() -> None:
    client = Client()

    response = client.get("/login/")

    assert response.status_code == 200
    assert b'name="csrfmiddlewaretoken"' in response.content
    assert settings.CSRF_COOKIE_NAME in response.cookies


def test_signing_in_starts_a_session_and_follows_next(alice: User) -> None:
    client = Client()

    response = sign_in(client, "alice", TEST_PASSWORD, next="/tokens/")

    assert response.status_code == 302
    assert response["Location"] == "/tokens/"
    assert is_signed_in(client)
    alice.refresh_from_db()
    assert alice.last_login is not None
    record = AuditRecord.objects.filter(action="session.login").get()
    assert (record.actor_name, record.source_address) == ("alice", "192.0.2.1")


def test_the_session_cookie_is_http_only_same_site_and_expires(alice: User) -> None:
    response = sign_in(Client(), "alice", TEST_PASSWORD)

    cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert int(cookie["max-age"]) == 8 * 3600


def test_signing_in_gives_a_new_session_key(alice: User) -> None:
    client = Client()
    session = client.session
    session["visited"] = True
    session.save()
    before = client.cookies[settings.SESSION_COOKIE_NAME].value

    sign_in(client, "alice", TEST_PASSWORD)

    assert client.cookies[settings.SESSION_COOKIE_NAME].value != before


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "http://testserver.evil/"])
def test_next_cannot_leave_the_site(alice: User, target: str) -> None:
    response = sign_in(Client(), "alice", TEST_PASSWORD, next=target)

    assert response.status_code == 302
    assert response["Location"] == "/"


def test_a_page_sends_nobody_to_sign_in_and_back(alice: User) -> None:
    client = Client()

    redirect = client.get("/tokens/")
    response = sign_in(client, "alice", TEST_PASSWORD, next="/tokens/")

    assert redirect.status_code == 302
    assert redirect["Location"] == "/login/?next=/tokens/"
    assert response["Location"] == "/tokens/"
    assert client.get("/tokens/").status_code == 200


# -- failures -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("username", "password"), [("alice", WRONG), ("nobody", WRONG), ("nobody", TEST_PASSWORD)])
def test_wrong_credentials_answer_401_alike_and_are_recorded(alice: User, username: str, password: str) -> None:
    client = Client()

    response = sign_in(client, username, password)

    assert response.status_code == 401
    assert response.context["error"] == "wrong username or password, or the account is disabled"
    assert not is_signed_in(client)
    assert list(LoginFailure.objects.values_list("username", "source_address")) == [(username, "192.0.2.1")]
    record = AuditRecord.objects.filter(action="session.login_failed").get()
    assert record.object_id == username
    assert record.actor_name == "anonymous"  # nobody proved who they are
    expected = "unknown user" if username == "nobody" else "wrong password"
    assert json.loads(record.changes) == {"reason": expected}


def test_a_disabled_user_cannot_sign_in(alice: User, make_user: MakeUser) -> None:
    services.set_active(SYSTEM_ACTOR, "alice", False)
    client = Client()

    response = sign_in(client, "alice", TEST_PASSWORD)

    assert response.status_code == 401
    assert not is_signed_in(client)


def test_an_empty_form_is_refused_without_counting_a_failure() -> None:
    response = Client().post("/login/", {})

    assert response.status_code == 200
    assert LoginFailure.objects.count() == 0


# -- throttling ---------------------------------------------------------------------------------------------


def test_five_failures_lock_the_username_even_for_the_right_password(alice: User) -> None:
    client = Client()
    fail(client, "alice", 5)

    response = sign_in(client, "alice", TEST_PASSWORD)

    assert response.status_code == 429
    assert response.context["error"] == "too many failed sign-ins; try again in 15 minutes"
    assert not is_signed_in(client)


def test_four_failures_do_not_lock(alice: User) -> None:
    client = Client()
    fail(client, "alice", 4)

    assert sign_in(client, "alice", TEST_PASSWORD).status_code == 302


def test_the_username_lock_holds_across_addresses(alice: User) -> None:
    client = Client()
    for n in range(5):
        fail(client, "alice", 1, address=f"198.51.100.{n}")

    assert sign_in(client, "alice", TEST_PASSWORD, address="203.0.113.9").status_code == 429


def test_a_locked_username_does_not_lock_other_users(alice: User, make_user: MakeUser) -> None:
    make_user(Role.VIEWER, username="bob")
    client = Client()
    fail(client, "alice", 5)

    assert sign_in(client, "bob", TEST_PASSWORD).status_code == 302


def test_failures_older_than_15_minutes_do_not_count(alice: User) -> None:
    now = timezone.now()
    for minutes in (16, 20, 30, 60, 90):
        LoginFailure.objects.create(username="alice", source_address="192.0.2.1", at=now - timedelta(minutes=minutes))
    fail(Client(), "alice", 4)

    assert sign_in(Client(), "alice", TEST_PASSWORD).status_code == 302


def test_failures_within_15_minutes_count(alice: User) -> None:
    now = timezone.now()
    for minutes in (1, 5, 9, 13, 14.5):
        LoginFailure.objects.create(username="alice", source_address="192.0.2.1", at=now - timedelta(minutes=minutes))

    assert sign_in(Client(), "alice", TEST_PASSWORD).status_code == 429


def earlier_failures(count: int, address: str = "192.0.2.1", username: str | None = None) -> None:
    """Failures recorded a minute ago (each real attempt costs an Argon2 hash; these are plain rows)."""
    at = timezone.now() - timedelta(minutes=1)
    LoginFailure.objects.bulk_create(
        LoginFailure(username=username or f"guess-{n}", source_address=address, at=at) for n in range(count)
    )


def test_twenty_failures_from_one_address_lock_that_address(alice: User) -> None:
    client = Client()
    earlier_failures(19, address="198.51.100.7")
    fail(client, "one-more-guess", 1, address="198.51.100.7")

    assert sign_in(client, "alice", TEST_PASSWORD, address="198.51.100.7").status_code == 429
    assert sign_in(client, "alice", TEST_PASSWORD, address="198.51.100.8").status_code == 302


def test_signing_in_clears_the_usernames_failures(alice: User) -> None:
    earlier_failures(4, username="alice")
    assert sign_in(Client(), "alice", TEST_PASSWORD).status_code == 302
    earlier_failures(4, username="alice")

    assert LoginFailure.objects.filter(username="alice").count() == 4
    assert sign_in(Client(), "alice", TEST_PASSWORD).status_code == 302


def test_check_sign_in_raises_throttled_with_the_retry_delay(alice: User) -> None:
    for _ in range(services.MAX_FAILURES):
        with pytest.raises(AuthenticationFailed):
            services.check_sign_in("alice", WRONG, "192.0.2.1")

    with pytest.raises(LoginThrottled) as raised:
        services.check_sign_in("alice", TEST_PASSWORD, "192.0.2.1")

    assert raised.value.retry_after == 15 * 60
    refused = AuditRecord.objects.get(action="session.login_throttled")
    assert (refused.actor_name, refused.object_id) == ("anonymous", "alice")
    assert json.loads(refused.changes) == {"failures": services.MAX_FAILURES, "from_source": services.MAX_FAILURES}


# -- CSRF on forms ---------------------------------------------------------------------------------------------


def csrf_client() -> tuple[Client, str]:
    """A client that gets CSRF checks (as a browser does) and the token its form would carry."""
    client = Client(enforce_csrf_checks=True)
    client.get("/login/")
    return client, client.cookies[settings.CSRF_COOKIE_NAME].value


def test_the_login_form_needs_its_csrf_token(alice: User) -> None:
    client, token = csrf_client()

    refused = sign_in(client, "alice", TEST_PASSWORD)
    accepted = sign_in(client, "alice", TEST_PASSWORD, csrfmiddlewaretoken=token)

    assert refused.status_code == 403
    assert LoginFailure.objects.count() == 0
    assert accepted.status_code == 302
    assert is_signed_in(client)


def test_a_signed_in_form_needs_its_csrf_token(alice: User) -> None:
    client, token = csrf_client()
    sign_in(client, "alice", TEST_PASSWORD, csrfmiddlewaretoken=token)
    token = client.cookies[settings.CSRF_COOKIE_NAME].value  # rotated on sign-in

    refused = client.post("/tokens/", {"name": "forged"})
    accepted = client.post("/tokens/", {"name": "mine", "csrfmiddlewaretoken": token})

    assert refused.status_code == 403
    assert accepted.status_code == 200
    assert list(ApiToken.objects.values_list("name", flat=True)) == ["mine"]


def test_signing_out_needs_its_csrf_token(alice: User) -> None:
    client, token = csrf_client()
    sign_in(client, "alice", TEST_PASSWORD, csrfmiddlewaretoken=token)

    assert client.post("/logout/").status_code == 403
    assert is_signed_in(client)


# -- signing out and passwords -------------------------------------------------------------------------------------


def test_signing_out_takes_a_post_and_ends_the_session(alice: User) -> None:
    client = Client()
    sign_in(client, "alice", TEST_PASSWORD)

    assert client.get("/logout/").status_code == 405
    response = client.post("/logout/")

    assert response.status_code == 302
    assert response["Location"] == "/login/"
    assert not is_signed_in(client)
    assert client.get("/").status_code == 302
    assert AuditRecord.objects.filter(action="session.logout", object_id="alice").count() == 1


def test_changing_the_password_keeps_this_session_and_retires_the_old_one(alice: User) -> None:
    client, other = Client(), Client()
    sign_in(client, "alice", TEST_PASSWORD)
    sign_in(other, "alice", TEST_PASSWORD)
    new = "a-brand-new-passphrase-77"

    response = client.post("/account/password/", {"current": TEST_PASSWORD, "new": new})

    assert response.status_code == 302
    assert is_signed_in(client)
    assert not is_signed_in(other)  # sessions elsewhere end with the old password
    assert sign_in(Client(), "alice", TEST_PASSWORD).status_code == 401
    assert sign_in(Client(), "alice", new).status_code == 302


def test_the_password_is_not_changed_without_the_current_one(alice: User) -> None:
    client = Client()
    sign_in(client, "alice", TEST_PASSWORD)

    response = client.post("/account/password/", {"current": WRONG, "new": "a-brand-new-passphrase-77"})

    assert response.status_code == 200
    alice.refresh_from_db()
    assert alice.check_password(TEST_PASSWORD)
    assert not AuditRecord.objects.filter(action="user.set_password").exists()
