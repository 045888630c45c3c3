"""Shared fixtures: users of each role, API clients with real tokens, subprocess environments.

The database is whatever PATCHDAY_DATABASE_URL names (SQLite by default; `./run test` runs the
suite a second time against a throwaway PostgreSQL server).
"""

from __future__ import annotations

import os
from collections.abc import Callable

# The private data dir and empty feed URLs are set by tests/private_env.py, loaded as a plugin
# (`-p tests.private_env`) because pytest-django sets Django up before this file is imported.
import pytest
from django.test import Client

from patchday.accounts import services
from patchday.accounts.models import User
from patchday.core.audit import Actor, ActorKind
from patchday.core.roles import Role

TEST_PASSWORD = "correct-horse-battery-staple-42"
SYSTEM_ACTOR = Actor(ActorKind.SYSTEM, "tests")


@pytest.fixture
def make_user(db: None) -> Callable[..., User]:
    def make(role: Role = Role.VIEWER, username: str | None = None) -> User:
        name = username or f"{role.value}-{User.objects.count() + 1}"
        user, _ = services.create_user(SYSTEM_ACTOR, name, role, TEST_PASSWORD)
        return user

    return make


@pytest.fixture
def token_for(db: None) -> Callable[[User], str]:
    def issue(user: User) -> str:
        return services.create_token(SYSTEM_ACTOR, user, "tests").secret

    return issue


class ApiClient:
    """A Django test client that sends a bearer token and JSON bodies to /api/v1."""

    def __init__(self, token: str | None) -> None:
        self.client = Client()
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def request(self, method: str, path: str, json: object = None, **kwargs: object):  # type: ignore[no-untyped-def]
        import json as jsonlib

        url = path if path.startswith("/") else f"/api/v1/{path}"
        body = jsonlib.dumps(json) if json is not None else None
        call = getattr(self.client, method.lower())
        extra = {"content_type": "application/json"} if body is not None else {}
        return call(url, data=body, headers=self.headers, **extra, **kwargs)

    def get(self, path: str, **kwargs: object):  # type: ignore[no-untyped-def]
        return self.request("GET", path, **kwargs)

    def post(self, path: str, json: object = None, **kwargs: object):  # type: ignore[no-untyped-def]
        return self.request("POST", path, json=json, **kwargs)

    def patch(self, path: str, json: object = None, **kwargs: object):  # type: ignore[no-untyped-def]
        return self.request("PATCH", path, json=json, **kwargs)

    def delete(self, path: str, **kwargs: object):  # type: ignore[no-untyped-def]
        return self.request("DELETE", path, **kwargs)


@pytest.fixture
def api_as(make_user: Callable[..., User], token_for: Callable[[User], str]) -> Callable[[Role], ApiClient]:
    """api_as(Role.ADMIN) -> a client authenticated with a fresh token of a fresh user of that role."""

    def build(role: Role) -> ApiClient:
        return ApiClient(token_for(make_user(role)))

    return build


@pytest.fixture
def admin_api(api_as: Callable[[Role], ApiClient]) -> ApiClient:
    return api_as(Role.ADMIN)


@pytest.fixture
def anonymous_api() -> ApiClient:
    return ApiClient(None)


def database_url_of_test_db() -> str:
    """A PATCHDAY_DATABASE_URL naming the test database Django is using now (for child processes)."""
    from django.db import connection

    conf = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{conf['NAME']}"
    user = conf.get("USER") or ""
    password = f":{conf['PASSWORD']}" if conf.get("PASSWORD") else ""
    host = conf.get("HOST") or "127.0.0.1"
    port = f":{conf['PORT']}" if conf.get("PORT") else ""
    return f"postgresql://{user}{password}@{host}{port}/{conf['NAME']}"


@pytest.fixture
def child_env(transactional_db: None) -> dict[str, str]:
    """Environment for a `patchday` child process that shares this test's (committed) database."""
    env = dict(os.environ)
    env["PATCHDAY_DATABASE_URL"] = database_url_of_test_db()
    return env


@pytest.fixture(autouse=True)
def _fresh_window_cache() -> None:
    """Each test starts without another test's maintenance windows and freezes in the process cache."""
    from patchday.rollouts.windows import forget_cached

    forget_cached()
