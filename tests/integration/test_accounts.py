"""Accounts through the API and services on a real database: users, roles, the last admin, API tokens."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.hashers import identify_hasher
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from patchday.accounts import services
from patchday.accounts.models import ApiToken, User
from patchday.audit.models import AuditRecord
from patchday.core.errors import AuthenticationFailed, Conflict
from patchday.core.roles import Role
from tests.conftest import SYSTEM_ACTOR, TEST_PASSWORD, ApiClient

pytestmark = pytest.mark.django_db

MakeUser = Callable[..., User]
TokenFor = Callable[[User], str]


def actions() -> list[str]:
    return list(AuditRecord.objects.order_by("id").values_list("action", flat=True))


def error_of(response: Any) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    return error


# -- users and passwords ------------------------------------------------------------------------------


def test_passwords_are_stored_as_argon2_hashes(make_user: MakeUser) -> None:
    user = make_user(Role.VIEWER)

    assert identify_hasher(user.password).algorithm == "argon2"
    assert user.password.startswith("argon2$argon2id$")
    assert TEST_PASSWORD not in user.password
    assert user.check_password(TEST_PASSWORD)


def test_an_admin_creates_a_user_and_sees_the_generated_password_once(admin_api: ApiClient) -> None:
    response = admin_api.post("users", json={"username": "dana", "role": "operator"})

    assert response.status_code == 201
    created = response.json()
    assert {k: created[k] for k in ("username", "role", "active")} == {
        "username": "dana",
        "role": "operator",
        "active": True,
    }
    password = created["generated_password"]
    assert len(password) >= 20
    assert services.check_sign_in("dana", password, "127.0.0.1").username == "dana"
    shown_again = admin_api.get("users/dana").json()
    assert "generated_password" not in shown_again
    assert shown_again["role"] == "operator"
    assert password not in json.dumps(admin_api.get("users").json())


def test_a_given_password_is_kept_and_not_echoed(admin_api: ApiClient) -> None:
    response = admin_api.post("users", json={"username": "erin", "role": "viewer", "password": TEST_PASSWORD})

    assert response.status_code == 201
    assert response.json()["generated_password"] is None
    assert User.objects.get(username="erin").check_password(TEST_PASSWORD)


@pytest.mark.parametrize("password", ["short-1", "123456789012345", "password1234", "frank-the-user"])
def test_a_weak_password_is_refused_naming_the_field(admin_api: ApiClient, password: str) -> None:
    response = admin_api.post("users", json={"username": "frank-the-user", "role": "viewer", "password": password})

    assert response.status_code == 422
    assert [d["field"] for d in error_of(response)["details"]] == ["password"]
    assert not User.objects.filter(username="frank-the-user").exists()


def test_creating_a_user_is_audited_with_the_actor_and_role(make_user: MakeUser, token_for: TokenFor) -> None:
    admin = make_user(Role.ADMIN, username="root-admin")
    token = token_for(admin)

    ApiClient(token).post("users", json={"username": "gail", "role": "auditor"})

    record = AuditRecord.objects.filter(action="user.create", object_id="gail").get()
    assert record.actor_kind == "token"
    assert record.actor_name.startswith("root-admin/")
    assert json.loads(record.changes) == {"role": "auditor"}


def test_me_names_the_user_and_their_permissions(api_as: Callable[[Role], ApiClient]) -> None:
    body = api_as(Role.AUDITOR).get("me").json()

    assert body["role"] == "auditor"
    assert body["active"] is True
    assert body["permissions"] == ["read_audit", "view"]


# -- roles and the last admin ----------------------------------------------------------------------


def test_a_role_change_takes_effect_at_once_and_is_audited(
    admin_api: ApiClient, make_user: MakeUser, token_for: TokenFor
) -> None:
    user = make_user(Role.VIEWER, username="hal")
    hal = ApiClient(token_for(user))
    assert hal.get("users").status_code == 403

    response = admin_api.patch("users/hal", json={"role": "admin"})

    assert response.status_code == 200
    assert response.json()["role"] == "admin"
    assert hal.get("users").status_code == 200
    record = AuditRecord.objects.filter(action="user.set_role").get()
    assert json.loads(record.changes) == {"role": ["viewer", "admin"]}


def test_the_last_active_admin_cannot_be_demoted(make_user: MakeUser, token_for: TokenFor) -> None:
    admin = make_user(Role.ADMIN, username="only-admin")
    client = ApiClient(token_for(admin))
    before = actions()

    response = client.patch("users/only-admin", json={"role": "operator"})

    assert response.status_code == 409
    assert "last active admin" in error_of(response)["message"]
    admin.refresh_from_db()
    assert admin.role == Role.ADMIN
    assert actions() == before


def test_the_last_active_admin_cannot_be_disabled_or_demoted_from_the_cli() -> None:
    admin, _ = services.create_user(SYSTEM_ACTOR, "only-admin", Role.ADMIN, TEST_PASSWORD)

    with pytest.raises(Conflict, match="last active admin"):
        services.set_active(SYSTEM_ACTOR, "only-admin", False)
    with pytest.raises(Conflict, match="last active admin"):
        services.set_role(SYSTEM_ACTOR, "only-admin", Role.VIEWER)

    admin.refresh_from_db()
    assert (admin.role, admin.is_active) == (Role.ADMIN, True)


def test_a_disabled_admin_does_not_count_as_another_admin(make_user: MakeUser, token_for: TokenFor) -> None:
    admin = make_user(Role.ADMIN, username="ann")
    make_user(Role.ADMIN, username="bea")
    services.set_active(SYSTEM_ACTOR, "bea", False)

    response = ApiClient(token_for(admin)).patch("users/ann", json={"role": "viewer"})

    assert response.status_code == 409


def test_with_two_admins_one_may_be_demoted_then_the_other_is_the_last(
    make_user: MakeUser, token_for: TokenFor
) -> None:
    ann = ApiClient(token_for(make_user(Role.ADMIN, username="ann")))
    make_user(Role.ADMIN, username="bea")

    assert ann.patch("users/bea", json={"role": "approver"}).status_code == 200
    assert ann.patch("users/ann", json={"role": "approver"}).status_code == 409
    assert list(User.objects.filter(role=Role.ADMIN).values_list("username", flat=True)) == ["ann"]


def test_an_admin_cannot_disable_themself(make_user: MakeUser, token_for: TokenFor) -> None:
    make_user(Role.ADMIN, username="other")
    me = make_user(Role.ADMIN, username="me")

    response = ApiClient(token_for(me)).patch("users/me", json={"active": False})

    assert response.status_code == 409
    assert error_of(response)["message"] == "you cannot disable your own account"
    me.refresh_from_db()
    assert me.is_active


def test_changing_an_unknown_user_answers_404(admin_api: ApiClient) -> None:
    response = admin_api.patch("users/nobody", json={"role": "viewer"})

    assert response.status_code == 404


# -- disabled users -------------------------------------------------------------------------------------


def test_a_disabled_users_tokens_stop_working_and_work_again_when_enabled(
    admin_api: ApiClient, make_user: MakeUser, token_for: TokenFor
) -> None:
    user = make_user(Role.OPERATOR, username="ivy")
    ivy = ApiClient(token_for(user))
    assert ivy.get("me").status_code == 200

    assert admin_api.patch("users/ivy", json={"active": False}).json()["active"] is False
    refused = ivy.get("me")

    assert refused.status_code == 401
    assert error_of(refused)["message"] == "the token's owner is disabled"
    assert admin_api.patch("users/ivy", json={"active": True}).status_code == 200
    assert ivy.get("me").status_code == 200
    assert actions()[-2:] == ["user.disable", "user.enable"]


def test_a_disabled_users_session_stops_working(make_user: MakeUser) -> None:
    user = make_user(Role.VIEWER, username="jay")
    client = Client()
    client.force_login(user)
    assert client.get("/api/v1/me").status_code == 200

    services.set_active(SYSTEM_ACTOR, "jay", False)

    assert client.get("/api/v1/me").status_code == 401
    assert client.get("/").status_code == 302


# -- API tokens -----------------------------------------------------------------------------------------


def test_a_new_token_is_shown_once_and_stored_only_as_its_sha256(make_user: MakeUser, token_for: TokenFor) -> None:
    user = make_user(Role.VIEWER, username="kim")
    kim = ApiClient(token_for(user))

    response = kim.post("tokens", json={"name": "laptop"})

    assert response.status_code == 201
    created = response.json()
    secret = created["token"]
    assert secret.startswith(f"pd_{created['id']}_")
    assert (created["name"], created["owner"], created["revoked_at"]) == ("laptop", "kim", None)
    row = ApiToken.objects.get(prefix=created["id"])
    assert row.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    stored = [str(value) for value in ApiToken.objects.filter(pk=row.pk).values().get().values()]
    assert not any(secret in value or value in secret for value in stored if len(value) > 12)
    listed = kim.get("tokens").json()
    assert "token" not in listed["items"][0]
    assert secret not in json.dumps(listed)
    assert ApiClient(secret).get("me").json()["username"] == "kim"


def test_token_creation_and_revocation_are_audited_without_the_secret(make_user: MakeUser, token_for: TokenFor) -> None:
    kim = ApiClient(token_for(make_user(Role.VIEWER, username="kim")))

    created = kim.post("tokens", json={"name": "ci"}).json()
    kim.delete(f"tokens/{created['id']}")

    records = AuditRecord.objects.filter(object_id=created["id"]).order_by("id")
    assert [r.action for r in records] == ["token.create", "token.revoke"]
    assert all(created["token"] not in r.changes for r in records)
    assert json.loads(records[0].changes) == {"owner": "kim", "name": "ci", "expires_at": None}


def test_using_a_token_records_when_it_was_last_used(make_user: MakeUser, token_for: TokenFor) -> None:
    secret = token_for(make_user(Role.VIEWER))
    token = ApiToken.objects.get()
    assert token.last_used_at is None

    ApiClient(secret).get("me")

    token.refresh_from_db()
    assert token.last_used_at is not None
    assert timezone.now() - token.last_used_at < timedelta(minutes=1)


def test_a_token_with_an_expiry_works_until_it_expires(make_user: MakeUser, token_for: TokenFor) -> None:
    kim = ApiClient(token_for(make_user(Role.VIEWER, username="kim")))
    expires = (timezone.now() + timedelta(days=30)).isoformat()

    created = kim.post("tokens", json={"name": "month", "expires_at": expires}).json()
    limited = ApiClient(created["token"])

    assert created["expires_at"] is not None
    assert limited.get("me").status_code == 200
    ApiToken.objects.filter(prefix=created["id"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    refused = limited.get("me")
    assert refused.status_code == 401
    assert error_of(refused)["message"] == "API token has expired"


def test_a_token_cannot_be_created_already_expired(make_user: MakeUser, token_for: TokenFor) -> None:
    kim = ApiClient(token_for(make_user(Role.VIEWER)))
    before = (ApiToken.objects.count(), actions())

    response = kim.post("tokens", json={"name": "old", "expires_at": "2020-01-01T00:00:00Z"})

    assert response.status_code == 422
    assert [d["field"] for d in error_of(response)["details"]] == ["expires_at"]
    assert (ApiToken.objects.count(), actions()) == before


def test_a_revoked_token_stops_working_and_cannot_be_revoked_twice(make_user: MakeUser, token_for: TokenFor) -> None:
    kim = ApiClient(token_for(make_user(Role.VIEWER, username="kim")))
    created = kim.post("tokens", json={"name": "spare"}).json()

    revoked = kim.delete(f"tokens/{created['id']}")
    refused = ApiClient(created["token"]).get("me")
    again = kim.delete(f"tokens/{created['id']}")

    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    assert refused.status_code == 401
    assert error_of(refused)["message"] == "API token was revoked"
    assert again.status_code == 409
    assert kim.get("me").status_code == 200  # the token in use is another one


def test_only_the_owner_or_an_admin_may_revoke_a_token(
    admin_api: ApiClient, make_user: MakeUser, token_for: TokenFor
) -> None:
    kim_secret = token_for(make_user(Role.OPERATOR, username="kim"))
    kim_prefix = ApiToken.objects.get(user__username="kim").prefix
    lee = ApiClient(token_for(make_user(Role.OPERATOR, username="lee")))

    refused = lee.delete(f"tokens/{kim_prefix}")

    assert refused.status_code == 404  # a stranger may not even learn the token exists
    assert ApiClient(kim_secret).get("me").status_code == 200
    assert admin_api.delete(f"tokens/{kim_prefix}").status_code == 200
    assert ApiClient(kim_secret).get("me").status_code == 401


def test_people_list_their_own_tokens_and_admins_may_list_all(
    admin_api: ApiClient, make_user: MakeUser, token_for: TokenFor
) -> None:
    kim = ApiClient(token_for(make_user(Role.VIEWER, username="kim")))
    token_for(make_user(Role.VIEWER, username="lee"))

    own = kim.get("tokens").json()
    asked_for_all = kim.get("tokens?all=true").json()
    everyone = admin_api.get("tokens?all=true").json()
    admins_own = admin_api.get("tokens").json()

    assert [t["owner"] for t in own["items"]] == ["kim"]
    assert asked_for_all == own
    assert sorted(t["owner"] for t in everyone["items"]) == ["admin-1", "kim", "lee"]
    assert everyone["count"] == 3
    assert [t["owner"] for t in admins_own["items"]] == ["admin-1"]


def test_authenticate_token_refuses_a_token_of_a_deleted_prefix(make_user: MakeUser, token_for: TokenFor) -> None:
    secret = token_for(make_user(Role.VIEWER))
    ApiToken.objects.all().delete()

    with pytest.raises(AuthenticationFailed, match="unknown API token"):
        services.authenticate_token(secret)


@pytest.mark.django_db(transaction=True)
def test_two_admins_demoting_each_other_at_once_leave_one_admin() -> None:
    services.create_user(SYSTEM_ACTOR, "ann", Role.ADMIN, TEST_PASSWORD)
    services.create_user(SYSTEM_ACTOR, "bea", Role.ADMIN, TEST_PASSWORD)
    first_done, release = threading.Event(), threading.Event()
    outcomes: list[str] = []

    def demote_bea_and_wait() -> None:
        try:
            with transaction.atomic():  # still uncommitted while the second demotion runs
                services.set_role(SYSTEM_ACTOR, "bea", Role.VIEWER)
                first_done.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    def demote_ann() -> None:
        try:
            services.set_role(SYSTEM_ACTOR, "ann", Role.VIEWER)
            outcomes.append("demoted")
        except Conflict:
            outcomes.append("refused")
        finally:
            connection.close()

    first = threading.Thread(target=demote_bea_and_wait)
    second = threading.Thread(target=demote_ann)
    first.start()
    assert first_done.wait(timeout=30)
    second.start()
    second.join(timeout=1)  # without a lock it finishes here, seeing bea as an admin still
    release.set()
    first.join(timeout=30)
    second.join(timeout=30)

    assert outcomes == ["refused"]
    assert list(User.objects.filter(role=Role.ADMIN, is_active=True).values_list("username", flat=True)) == ["ann"]
