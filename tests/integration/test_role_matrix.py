"""Every API operation and every page, for every role and for nobody, against the declared role matrix.

The routes come from the running configuration (Django's URL resolver and the NinjaAPI's routers),
never from a hand-kept list, so a new route without a line in role_matrix.py fails here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings
from django.http.response import HttpResponseBase
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from ninja.operation import Operation

from patchday.accounts import services
from patchday.accounts.guards import Guard
from patchday.accounts.models import User
from patchday.advisories.models import EpssScore
from patchday.api.main import api
from patchday.core.roles import Permission, Role, is_allowed
from patchday.findings.models import Finding
from patchday.inventory import agents
from patchday.inventory import services as inventory_services
from patchday.inventory.api import HostGuard
from patchday.inventory.models import Host
from tests.conftest import SYSTEM_ACTOR
from tests.integration.role_matrix import API_RULES, HOST, PAGE_RULES, PUBLIC, TOKEN_PAGES, Rule

ROLES_AND_NOBODY: tuple[Role | None, ...] = (None, *Role)
PAGE_METHODS = ("GET", "POST")
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True, slots=True)
class ApiRoute:
    method: str
    path: str  # template with {name} parameters, e.g. /api/v1/users/{username}
    rule_in_code: str  # a Permission value, "public", or what the code has instead of a Guard


@dataclass(frozen=True, slots=True)
class PageRoute:
    name: str
    route: str  # Django's route text, for messages
    parameters: tuple[str, ...]
    rule_in_code: str


# -- discovering the routes ---------------------------------------------------------------------


def _template(path: str) -> str:
    """'/api/v1//users/<str:username>' and '/users/{username}' alike -> '/api/v1/users/{username}'."""
    path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", path)
    path = re.sub(r"\{(?:\w+:)?(\w+)\}", r"{\1}", path)
    return re.sub(r"/{2,}", "/", path)


def _api_resolver() -> tuple[str, URLResolver]:
    for entry in get_resolver().url_patterns:
        if isinstance(entry, URLResolver) and entry.namespace == api.urls_namespace:
            return "/" + str(entry.pattern), entry
    raise AssertionError(f"the URL table does not include the API (namespace {api.urls_namespace!r})")


def _operation_rule(operation: Operation) -> str:
    callbacks = list(operation.auth_callbacks)
    if not callbacks:
        return PUBLIC
    if len(callbacks) == 1 and isinstance(callbacks[0], Guard | HostGuard):
        return str(callbacks[0].permission)
    return f"unrecognized auth {callbacks!r}"


def discover_api_routes() -> list[ApiRoute]:
    """Every ninja operation (each method of each path), then the API's other URLs (root, docs, schema)."""
    root, resolver = _api_resolver()
    routes: list[ApiRoute] = []
    for prefix, router in api._routers:
        for path, path_view in router.path_operations.items():
            for operation in path_view.operations:
                template = _template(f"{root}/{prefix}/{path}")
                routes.extend(ApiRoute(method, template, _operation_rule(operation)) for method in operation.methods)
    operation_paths = {route.path for route in routes}
    for entry in resolver.url_patterns:
        template = _template(f"{root}/{entry.pattern}")
        if isinstance(entry, URLPattern) and template not in operation_paths:
            rule = str(getattr(entry.callback, "required_permission", PUBLIC))
            routes.append(ApiRoute("GET", template, rule))
        elif isinstance(entry, URLResolver):
            routes.append(ApiRoute("?", template, "an include inside the API, which this test cannot walk"))
    return routes


def _walk_pages(patterns: Iterable[Any], prefix: str, namespace: str | None) -> Iterator[PageRoute]:
    for entry in patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            if entry.namespace == api.urls_namespace:
                continue  # the API: walked through its routers instead
            inner = ":".join(part for part in (namespace, entry.namespace) if part) or None
            yield from _walk_pages(entry.url_patterns, route, inner)
        elif isinstance(entry, URLPattern):
            if settings.STATIC_URL and route.lstrip("^/").startswith(settings.STATIC_URL.lstrip("/")):
                continue
            name = f"{namespace}:{entry.name}" if namespace and entry.name else entry.name or f"<unnamed {route}>"
            parameters = tuple(entry.pattern.regex.groupindex)
            rule = getattr(entry.callback, "required_permission", None)
            yield PageRoute(name, route, parameters, str(rule) if rule is not None else "no page_guard")


def discover_pages() -> list[PageRoute]:
    return list(_walk_pages(get_resolver().url_patterns, "", None))


def mismatches(found: Iterable[object], declared: Iterable[object], what: str) -> list[str]:
    """Readable lines for routes without a declared rule and for declared rules without a route."""
    found_set, declared_set = set(found), set(declared)
    lines = [f"{what} {key} has no rule in role_matrix.py" for key in sorted(map(str, found_set - declared_set))]
    lines += [
        f"role_matrix.py names {what} {key}, which does not exist" for key in sorted(map(str, declared_set - found_set))
    ]
    return lines


# -- asking the server ------------------------------------------------------------------------------


def body_of(response: HttpResponseBase) -> bytes:
    if response.streaming:
        return b"".join(response.streaming_content)  # type: ignore[attr-defined]
    return bytes(response.content)  # type: ignore[attr-defined]


def error_code(response: HttpResponseBase) -> str | None:
    """The code of an API error response, or None when the body is not the one error shape."""
    try:
        body = json.loads(body_of(response))
    except ValueError:
        return None
    if not isinstance(body, dict) or set(body) != {"error"} or not isinstance(body["error"], dict):
        return None
    if set(body["error"]) != {"code", "message", "details"}:
        return None
    code = body["error"]["code"]
    return code if isinstance(code, str) else None


def expectation_failure(
    response: HttpResponseBase, rule: Rule, role: Role | None, *, is_api: bool, path: str
) -> str | None:
    """Why `response` breaks `rule` for `role` (None: nobody signed in), or None when it keeps it."""
    status = response.status_code
    location = response.get("Location", "")
    login = reverse("login")
    to_login = status == 302 and location.startswith(f"{login}?")
    if status >= 500:
        return f"got {status}: {body_of(response)[:300]!r}"
    if rule == HOST:  # no person's credentials reach an agent route
        if status != 401 or error_code(response) != "not_authenticated":
            return f"expected 401 in the error shape for a host-token route, got {status}"
        return None
    if rule == PUBLIC or (role is not None and is_allowed(role, Permission(rule))):
        if status in (401, 403) or to_login:
            return f"expected access, got {status} {location}"
        return None
    if role is None and is_api:
        if status != 401 or error_code(response) != "not_authenticated":
            return f"expected 401 in the error shape, got {status}: {body_of(response)[:200]!r}"
        return None
    if role is None:
        if not to_login or parse_qs(urlsplit(location).query).get("next") != [path]:
            return f"expected a redirect to {login}?next={path}, got {status} {location}"
        return None
    if status != 403:
        return f"expected 403, got {status}"
    if is_api and error_code(response) != "forbidden":
        return f"expected 403 in the error shape, got {body_of(response)[:200]!r}"
    return None


@dataclass(frozen=True, slots=True)
class Fleet:
    """One user (and token) per role, plus objects whose keys fill path parameters."""

    users: Mapping[Role, User]
    tokens: Mapping[Role, str]
    path_values: Mapping[str, str]


@pytest.fixture
def fleet(db: None, token_for: Callable[[User], str]) -> Fleet:
    # Users without a password: force_login and tokens need none, and an Argon2 hash each costs seconds.
    users = {role: User.objects.create_user(f"matrix-{role.value}", role=role.value) for role in Role}
    tokens = {role: token_for(user) for role, user in users.items()}
    target = User.objects.create_user("matrix-target", role=Role.VIEWER.value)
    spare = services.create_token(SYSTEM_ACTOR, users[Role.ADMIN], "to be revoked")
    # A CVE only EPSS names: enough for the vulnerability routes to answer 200, not 404.
    EpssScore.objects.create(cve_id="CVE-2024-3094", score_date=date(2024, 4, 1), probability=0.5, percentile=0.9)
    host = Host.objects.create(name="matrix-host", created_at=timezone.now())
    inventory_services.create_group(SYSTEM_ACTOR, host.name)
    secret = agents.create_secret(SYSTEM_ACTOR, "matrix")
    now = timezone.now()
    finding = Finding.objects.create(
        host=host, vulnerability="CVE-2024-3094", ecosystem="Debian:12", package="xz-utils",
        installed_version="5.4.1-0.2", first_detected_at=now, last_detected_at=now, status_changed_at=now,
    )  # fmt: skip
    deployment = _deployment(host, users)
    return Fleet(
        users,
        tokens,
        {
            "username": target.username,
            "token_id": spare.token.prefix,
            "rest": "v1/no-such-route",
            "cve_id": "CVE-2024-3094",
            "name": host.name,  # a host and a group share the name, so both kinds of route find theirs
            "secret_id": secret.record.prefix,
            "finding_id": str(finding.pk),
            "exception_id": "999999",  # none: the guard answers before the lookup
            "record_id": "999999",
            "webhook_id": "999999",
            "recipient_id": "999999",
            "schedule_id": "999999",
            **deployment,
        },
    )


def _deployment(host: Host, users: Mapping[Role, User]) -> dict[str, str]:
    """A started rollout of an approved plan on `host`, and a window, a freeze, a script and an auto-approval
    rule: the ids the deployment routes and pages take. The window and rule are named like the host, because
    the routes share the {name} parameter."""
    from patchday.core.audit import Actor, ActorKind
    from patchday.inventory.models import PendingUpdate
    from patchday.rollouts import driver, plans, windows
    from patchday.rollouts.models import Job, PlanHost

    operator = Actor(ActorKind.USER, users[Role.OPERATOR].username)
    PendingUpdate.objects.create(
        host=host, manager="apt", name="xz-utils", arch="amd64", installed="5.4.1-0.2", candidate="5.4.1-1",
        security=True, source="xz-utils", source_version="5.4.1-1",
    )  # fmt: skip
    plans.save_script(operator, "drain", ["/usr/local/bin/drain"])
    plan = plans.create_plan(
        operator, operator.name, "matrix", {"kind": "security"}, {"hosts": [host.name]},
        {"pre_scripts": ["drain"]}, [{"name": "all"}],
    )  # fmt: skip
    plans.submit(operator, plan.pk)
    plans.decide(SYSTEM_ACTOR, users[Role.APPROVER].username, plan.pk, True, "ok")
    rollout = driver.start(operator, plan.pk)
    job = Job.objects.get(rollout=rollout)
    windows.create_window(operator, host.name, "FREQ=WEEKLY;BYDAY=SA", 120, "UTC", "2026-01-03T02:00")
    now = timezone.now()
    freeze = windows.create_freeze(operator, "matrix", now + timedelta(days=30), now + timedelta(days=31))
    plans.save_rule(SYSTEM_ACTOR, host.name, ["security"], [])
    return {
        "plan_id": str(plan.pk),
        "rollout_id": str(rollout.pk),
        "command": "pause",
        "host": host.name,
        "job_id": str(job.pk),
        "freeze_id": str(freeze.pk),
        "plan_host_id": str(PlanHost.objects.get(plan=plan).pk),
    }


def _fill(template: str, values: Mapping[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise AssertionError(f"no value for path parameter {name!r} of {template}; add one to the fleet fixture")
        return values[name]

    return re.sub(r"\{(\w+)\}", value, template)


def _who(role: Role | None) -> str:
    return role.value if role else "nobody"


def _report(failures: Sequence[str]) -> str:
    return f"{len(failures)} route/role combinations break the matrix:\n" + "\n".join(failures)


# -- the tests ------------------------------------------------------------------------------------


def test_every_route_has_exactly_one_declared_rule() -> None:
    api_keys = [(route.method, route.path) for route in discover_api_routes()]
    page_keys = [page.name for page in discover_pages()]

    problems = mismatches(api_keys, API_RULES, "API route") + mismatches(page_keys, PAGE_RULES, "page")

    assert not problems, "\n".join(problems)
    assert len(api_keys) == len(set(api_keys)), "an API operation is registered twice"


def test_an_undeclared_route_is_reported() -> None:
    found = [*API_RULES, ("GET", "/api/v1/new-thing")]
    declared = {key: rule for key, rule in API_RULES.items() if key != ("GET", "/api/v1/me")}

    assert mismatches(found, declared, "API route") == [
        "API route ('GET', '/api/v1/me') has no rule in role_matrix.py",
        "API route ('GET', '/api/v1/new-thing') has no rule in role_matrix.py",
    ]
    assert mismatches(["home"], {"home": PUBLIC, "gone": PUBLIC}, "page") == [
        "role_matrix.py names page gone, which does not exist"
    ]


def test_guards_in_code_are_the_declared_rules() -> None:
    declared = {f"{method} {path}": str(rule) for (method, path), rule in API_RULES.items()}
    wrong = [
        f"{key}: code says {route.rule_in_code}, matrix says {declared[key]}"
        for route in discover_api_routes()
        if (key := f"{route.method} {route.path}") in declared and route.rule_in_code != declared[key]
    ]
    wrong += [
        f"page {page.name}: code says {page.rule_in_code}, matrix says {PAGE_RULES[page.name]}"
        for page in discover_pages()
        if page.name in PAGE_RULES and page.rule_in_code != str(PAGE_RULES[page.name])
    ]

    assert not wrong, "\n".join(wrong)


def test_api_routes_answer_each_role_as_declared(fleet: Fleet) -> None:
    failures: list[str] = []
    checked = 0
    for route in discover_api_routes():
        rule = API_RULES.get((route.method, route.path))
        if rule is None:
            continue  # reported by test_every_route_has_exactly_one_declared_rule
        url = _fill(route.path, fleet.path_values)
        for role in ROLES_AND_NOBODY:
            headers = {"Authorization": f"Bearer {fleet.tokens[role]}"} if role else {}
            extra: dict[str, Any] = {"data": "{}", "content_type": "application/json"}
            response = Client().generic(
                route.method, url, headers=headers, **(extra if route.method in UNSAFE_METHODS else {})
            )
            checked += 1
            if problem := expectation_failure(response, rule, role, is_api=True, path=url):
                failures.append(f"{route.method} {url} as {_who(role)}: {problem}")

    assert not failures, _report(failures)
    assert checked == len(API_RULES) * len(ROLES_AND_NOBODY)


def test_pages_answer_each_role_as_declared(fleet: Fleet) -> None:
    failures: list[str] = []
    clients = {role: Client() for role in Role}
    checked = 0
    for page in discover_pages():
        rule = PAGE_RULES.get(page.name)
        if rule is None:
            continue  # reported by test_every_route_has_exactly_one_declared_rule
        missing = [name for name in page.parameters if name not in fleet.path_values]
        assert not missing, f"no value for path parameters {missing} of page {page.name}; add them to the fleet"
        url = reverse(page.name, kwargs={name: fleet.path_values[name] for name in page.parameters})
        for method in PAGE_METHODS:
            for role in ROLES_AND_NOBODY:
                client = Client()
                if role is not None:
                    client = clients[role]
                    client.force_login(fleet.users[role])  # again each time: the logout page ends the session
                response = client.generic(method, url)
                checked += 1
                is_api = page.name in TOKEN_PAGES
                if problem := expectation_failure(response, rule, role, is_api=is_api, path=url):
                    failures.append(f"{method} {url} ({page.name}) as {_who(role)}: {problem}")

    assert not failures, _report(failures)
    assert checked == len(PAGE_RULES) * len(PAGE_METHODS) * len(ROLES_AND_NOBODY)
