"""Browser fixtures: Debian's Chromium driven by Playwright against pytest-django's live server.

Playwright never downloads a browser here: it launches /usr/bin/chromium (`apt-get install chromium`).
The first admin is made through the accounts services, as `patchday bootstrap` makes it; everyone else
is seeded through the public API, with real HTTP requests and that admin's bearer token.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright
from pytest_django.live_server_helper import LiveServer

from patchday.accounts import services
from patchday.core.audit import Actor, ActorKind
from patchday.core.roles import Role

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 800}
MOBILE = {"width": 390, "height": 844}
ADMIN_PASSWORD = "first-admin-password-2024"
BOOTSTRAP = Actor(ActorKind.SYSTEM, "bootstrap")

expect.set_options(timeout=5_000)


@dataclass(frozen=True, slots=True)
class ApiAnswer:
    status: int
    body: object


def call_api(base_url: str, method: str, path: str, token: str | None, body: object = None) -> ApiAnswer:
    """One real HTTP request to the live server's API; returns the status and the decoded JSON body."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{base_url}/api/v1/{path.lstrip('/')}", data=data, method=method)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return ApiAnswer(response.status, json.loads(response.read() or b"null"))
    except urllib.error.HTTPError as exc:
        return ApiAnswer(exc.code, json.loads(exc.read() or b"null"))


@dataclass(frozen=True, slots=True)
class Seeded:
    """The people of one test: the first admin, their API token, and the passwords of everyone seeded."""

    base_url: str
    admin_token: str
    passwords: dict[str, str]

    def user(self, username: str, role: Role) -> str:
        """Create a user through the public API, as the admin; returns the generated password."""
        answer = self.api("POST", "users", {"username": username, "role": role.value})
        assert answer.status == 201, answer
        assert isinstance(answer.body, dict)
        password = str(answer.body["generated_password"])
        self.passwords[username] = password
        return password

    def api(self, method: str, path: str, body: object = None) -> ApiAnswer:
        """A request to the public API with the admin's token."""
        return call_api(self.base_url, method, path, self.admin_token, body)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Chromium for one test module; while it runs, Django's ORM may be used beside Playwright's event loop.

    Playwright's sync API keeps an asyncio loop in this thread, and Django refuses ORM calls (seeding,
    flushing the test database) in a thread with a running loop unless told that is safe. The
    allowance is lifted again when the module ends, so tests outside e2e keep Django's check.
    """
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium")
    before = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as driver:
            chromium = driver.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            yield chromium
            chromium.close()
    finally:
        if before is None:
            del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = before


@pytest.fixture
def seeded(live_server: LiveServer, transactional_db: None) -> Seeded:
    admin, _ = services.create_user(BOOTSTRAP, "admin", Role.ADMIN, ADMIN_PASSWORD)
    token = services.create_token(BOOTSTRAP, admin, "e2e seeding").secret
    return Seeded(base_url=live_server.url, admin_token=token, passwords={"admin": ADMIN_PASSWORD})


@pytest.fixture
def new_context(browser: Browser, live_server: LiveServer) -> Iterator[Callable[..., BrowserContext]]:
    """new_context(viewport=MOBILE) -> a fresh browser context (its own cookies) on the live server."""
    opened: list[BrowserContext] = []

    def open_context(viewport: dict[str, int] | None = None) -> BrowserContext:
        context = browser.new_context(base_url=live_server.url, viewport=viewport or DESKTOP)  # type: ignore[arg-type]
        context.set_default_timeout(5_000)
        opened.append(context)
        return context

    yield open_context
    for context in opened:
        context.close()


@pytest.fixture
def page(new_context: Callable[..., BrowserContext]) -> Page:
    return new_context().new_page()


def sign_in(page: Page, username: str, password: str) -> None:
    """Fill and send the login form (the caller asserts where it lands)."""
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
