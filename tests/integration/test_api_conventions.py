"""API conventions through the whole Django stack: the one error shape, status codes, pagination, docs, health."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory

from patchday.accounts import services as accounts
from patchday.accounts.models import ApiToken, User
from patchday.api.main import api
from patchday.audit.models import AuditChainHead, AuditRecord
from patchday.core.roles import Role
from tests.conftest import SYSTEM_ACTOR, TEST_PASSWORD, ApiClient

pytestmark = pytest.mark.django_db

MakeUser = Callable[..., User]
TokenFor = Callable[[User], str]


def error_of(response: Any) -> dict[str, Any]:
    """The `error` member of an error response, after checking the response has exactly the one shape."""
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]
    error: dict[str, Any] = body["error"]
    return error


def fields_of(response: Any) -> list[str]:
    return [detail["field"] for detail in error_of(response)["details"]]


def audit_count() -> int:
    head = AuditChainHead.objects.filter(pk=1).first()
    return AuditRecord.objects.count() if head is None else head.count


def strict_client() -> Client:
    """A client that, like a real browser session, gets CSRF checks."""
    return Client(enforce_csrf_checks=True)


# -- unknown routes and methods -------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/api/v1/no-such-thing", "/api/v1/me/extra", "/api/v1/users/a/b", "/api/v2/me", "/api/", "/api/v1/"]
)
@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_an_unknown_api_route_answers_404_in_the_error_shape(admin_api: ApiClient, method: str, path: str) -> None:
    response = strict_client().generic(
        method, path, data="{}", content_type="application/json", headers=admin_api.headers
    )

    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_an_unknown_api_route_answers_404_to_nobody_too() -> None:
    response = Client().get("/api/v1/no-such-area")

    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_a_method_the_route_lacks_answers_405_naming_the_allowed_ones(admin_api: ApiClient) -> None:
    response = admin_api.request("PUT", "me", json={})

    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"
    assert response["Allow"] == "GET"


# -- who is asking ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic YWRtaW46c2VjcmV0",
        "Token pd_0123456789ab_secret",
        "Bearer not-a-patchday-token",
        "Bearer pd_0123456789ab_unknownsecret",
        "Bearer pd_" + "a" * 300,
    ],
)
def test_missing_or_invalid_credentials_answer_401(authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}

    response = Client().get("/api/v1/me", headers=headers)

    assert response.status_code == 401
    assert error_of(response)["code"] == "not_authenticated"
    assert response["WWW-Authenticate"] == 'Bearer realm="patchday"'


def test_a_real_token_prefix_with_the_wrong_secret_answers_401(make_user: MakeUser, token_for: TokenFor) -> None:
    secret = token_for(make_user(Role.ADMIN))
    forged = secret[:-4] + ("aaaa" if not secret.endswith("aaaa") else "bbbb")

    response = ApiClient(forged).get("me")

    assert response.status_code == 401
    assert error_of(response)["message"] == "unknown API token"


def test_a_role_without_the_permission_answers_403_naming_it(api_as: Callable[[Role], ApiClient]) -> None:
    response = api_as(Role.AUDITOR).get("users")

    assert response.status_code == 403
    error = error_of(response)
    assert error["code"] == "forbidden"
    assert "'administer'" in error["message"]


def test_a_session_may_read_without_a_csrf_token(make_user: MakeUser) -> None:
    client = strict_client()
    client.force_login(make_user(Role.VIEWER, username="reader"))

    response = client.get("/api/v1/me")

    assert response.status_code == 200
    assert response.json()["username"] == "reader"


def test_a_session_writing_without_a_csrf_token_answers_403_and_changes_nothing(make_user: MakeUser) -> None:
    user = make_user(Role.VIEWER)
    client = strict_client()
    client.force_login(user)
    before = audit_count()

    response = client.post("/api/v1/tokens", data={"name": "laptop"}, content_type="application/json")

    assert response.status_code == 403
    assert error_of(response)["code"] == "forbidden"
    assert "CSRF" in error_of(response)["message"]
    assert not ApiToken.objects.filter(user=user).exists()
    assert audit_count() == before


def test_a_session_writing_with_the_csrf_token_succeeds(make_user: MakeUser) -> None:
    user = make_user(Role.VIEWER)
    client = strict_client()
    client.force_login(user)
    client.get("/login/")  # any page with a form sets the CSRF cookie
    csrf = client.cookies[settings.CSRF_COOKIE_NAME].value

    response = client.post(
        "/api/v1/tokens", data={"name": "laptop"}, content_type="application/json", headers={"X-CSRFToken": csrf}
    )

    assert response.status_code == 201
    assert list(ApiToken.objects.filter(user=user).values_list("name", flat=True)) == ["laptop"]


def test_a_bearer_token_writes_without_a_csrf_token(make_user: MakeUser, token_for: TokenFor) -> None:
    user = make_user(Role.VIEWER)
    headers = {"Authorization": f"Bearer {token_for(user)}"}

    response = strict_client().post(
        "/api/v1/tokens", data={"name": "ci"}, content_type="application/json", headers=headers
    )

    assert response.status_code == 201
    assert response.json()["name"] == "ci"


# -- bad input ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", ["{bad", '{"name": "x",}', "\xff\xfe", "[1, 2"])
def test_a_body_that_is_not_json_answers_422_naming_the_body(admin_api: ApiClient, body: str) -> None:
    before = audit_count()

    response = admin_api.client.post(
        "/api/v1/tokens", data=body.encode("latin-1"), content_type="application/json", headers=admin_api.headers
    )

    assert response.status_code == 422
    assert error_of(response)["code"] == "invalid_input"
    assert fields_of(response) == ["body"]
    assert ApiToken.objects.count() == 1  # only the token admin_api itself uses
    assert audit_count() == before


def test_invalid_fields_answer_422_naming_each_field(admin_api: ApiClient) -> None:
    before = (User.objects.count(), audit_count())

    response = admin_api.post("users", json={"username": "", "role": "king", "password": 5})

    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "invalid_input"
    assert fields_of(response) == ["username", "role", "password"]
    assert error["message"] == "invalid input in: username, role, password"
    assert (User.objects.count(), audit_count()) == before


def test_missing_fields_answer_422_naming_each(admin_api: ApiClient) -> None:
    response = admin_api.post("users", json={})

    assert response.status_code == 422
    assert fields_of(response) == ["username", "role"]


def test_a_body_of_the_wrong_type_answers_422(admin_api: ApiClient) -> None:
    response = admin_api.post("users", json=["alice", "viewer"])

    assert response.status_code == 422
    assert fields_of(response) == ["username", "role"]


def test_a_required_body_that_is_absent_answers_422_naming_the_body(admin_api: ApiClient) -> None:
    response = admin_api.post("users")

    assert response.status_code == 422
    assert fields_of(response) == ["body"]


def test_an_invalid_query_parameter_answers_422_naming_it(admin_api: ApiClient) -> None:
    response = admin_api.get("users?page=0&page_size=abc")

    assert response.status_code == 422
    assert sorted(fields_of(response)) == ["page", "page_size"]


def test_input_refused_by_a_service_names_its_field_the_same_way(admin_api: ApiClient) -> None:
    response = admin_api.post("users", json={"username": "no spaces please", "role": "viewer"})

    assert response.status_code == 422
    assert fields_of(response) == ["username"]


def test_an_oversized_body_answers_413_and_changes_nothing(admin_api: ApiClient) -> None:
    before = audit_count()
    body = json.dumps({"name": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)})

    response = admin_api.client.post(
        "/api/v1/tokens", data=body, content_type="application/json", headers=admin_api.headers
    )

    assert response.status_code == 413
    assert error_of(response)["code"] == "payload_too_large"
    assert ApiToken.objects.count() == 1
    assert audit_count() == before


def test_a_refused_change_changes_nothing_and_writes_no_audit_record(make_user: MakeUser, token_for: TokenFor) -> None:
    make_user(Role.ADMIN, username="other-admin")
    me = make_user(Role.ADMIN, username="me")
    client = ApiClient(token_for(me))
    before = audit_count()

    # the role change alone is allowed; disabling oneself is not, so neither may happen
    response = client.patch("users/me", json={"role": "operator", "active": False})

    assert response.status_code == 409
    assert error_of(response)["code"] == "conflict"
    me.refresh_from_db()
    assert (me.role, me.is_active) == (Role.ADMIN, True)
    assert audit_count() == before


def test_a_conflict_answers_409_and_writes_no_audit_record(admin_api: ApiClient, make_user: MakeUser) -> None:
    make_user(Role.VIEWER, username="taken")
    before = (User.objects.count(), audit_count())

    response = admin_api.post("users", json={"username": "taken", "role": "operator", "password": TEST_PASSWORD})

    assert response.status_code == 409
    assert error_of(response)["code"] == "conflict"
    assert User.objects.get(username="taken").role == Role.VIEWER
    assert (User.objects.count(), audit_count()) == before


def test_an_unknown_object_answers_404_in_the_error_shape(admin_api: ApiClient) -> None:
    response = admin_api.get("users/nobody-here")

    assert response.status_code == 404
    assert error_of(response) == {"code": "not_found", "message": "no user named 'nobody-here'", "details": []}


# -- pagination -----------------------------------------------------------------------------------------


def test_lists_are_paged_with_items_and_count(admin_api: ApiClient, make_user: MakeUser) -> None:
    for name in ["carol", "alice", "erin", "bob", "dave"]:
        make_user(Role.VIEWER, username=name)
    everyone = sorted(User.objects.values_list("username", flat=True))

    first = admin_api.get("users?page=1&page_size=2").json()
    second = admin_api.get("users?page=2&page_size=2").json()
    beyond = admin_api.get("users?page=99&page_size=2").json()
    default = admin_api.get("users").json()

    assert set(first) == {"items", "count"}
    assert [u["username"] for u in first["items"]] == everyone[0:2]
    assert [u["username"] for u in second["items"]] == everyone[2:4]
    assert first["count"] == second["count"] == beyond["count"] == len(everyone) == 6
    assert beyond["items"] == []
    assert [u["username"] for u in default["items"]] == everyone


def test_a_page_size_above_the_maximum_is_capped(admin_api: ApiClient) -> None:
    from patchday.audit import services as audit_services

    cap = settings.NINJA_MAX_PER_PAGE_SIZE
    for index in range(cap + 10):
        audit_services.record(SYSTEM_ACTOR, "test.fill", "thing", index)

    response = admin_api.get(f"audit?page_size={cap * 10}")

    assert response.status_code == 200
    assert response.json()["count"] > cap
    assert len(response.json()["items"]) == cap == 500


# -- documentation and health -----------------------------------------------------------------------------


def test_the_openapi_document_lists_every_operation() -> None:
    response = Client().get("/api/v1/openapi.json")

    assert response.status_code == 200
    document = response.json()
    listed = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    registered = {
        (method, "/api/v1" + ("/" + prefix.strip("/") + path).replace("//", "/"))
        for prefix, router in api._routers
        for path, path_view in router.path_operations.items()
        for operation in path_view.operations
        for method in operation.methods
    }
    assert listed == registered
    assert ("GET", "/api/v1/audit") in listed
    schemes = document["components"]["securitySchemes"]
    assert {scheme["scheme"] for scheme in schemes.values()} == {"bearer"}


def test_the_api_docs_page_loads_the_openapi_document() -> None:
    response = Client().get("/api/v1/docs")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert b"/api/v1/openapi.json" in response.content


def test_healthz_answers_without_signing_in() -> None:
    response = Client().get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_answers_ready_when_the_database_is_migrated() -> None:
    response = Client().get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.parametrize(("status", "kept"), [(201, True), (409, False), (500, False)])
def test_an_unsafe_api_request_answered_with_an_error_keeps_none_of_its_writes(
    db: None, rf: RequestFactory, status: int, kept: bool
) -> None:
    from patchday.api.errors import error_response
    from patchday.api.middleware import ApiTransactionMiddleware

    def view_that_writes_then_answers(request: HttpRequest) -> HttpResponse:
        accounts.create_user(SYSTEM_ACTOR, "ghost", Role.VIEWER, TEST_PASSWORD)
        return error_response(status, "x", "x") if status >= 400 else HttpResponse(status=status)

    before = AuditRecord.objects.count()
    response = ApiTransactionMiddleware(view_that_writes_then_answers)(rf.post("/api/v1/anything"))

    assert response.status_code == status
    assert User.objects.filter(username="ghost").exists() is kept
    assert AuditRecord.objects.count() == before + (1 if kept else 0)
