"""Maintenance windows and freezes through the API: validation naming the field, next openings (time zones, DST,
offsets), .ics import, and what they do to leasing: a freeze or a closed window keeps deploy jobs back, rollbacks
lease anyway, an open window with room for the job's estimate lets it go.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from patchday.core.roles import Role
from patchday.inventory import agents
from patchday.inventory import services as inventory_services
from patchday.rollouts.models import FreezePeriod, MaintenanceWindow
from tests.conftest import SYSTEM_ACTOR, ApiClient
from tests.integration.test_rollout_api import (
    ONE_RING,
    Agent,
    actions_since,
    approved,
    audit_mark,
    error_field,
    set_hosts,
    start,
)

pytestmark = pytest.mark.django_db

ICS = Path(__file__).resolve().parents[1] / "fixtures" / "ics" / "maintenance-windows.ics"


@pytest.fixture
def operator(api_as: Callable[[Role], ApiClient]) -> ApiClient:
    return api_as(Role.OPERATOR)


@pytest.fixture
def approver(api_as: Callable[[Role], ApiClient]) -> ApiClient:
    return api_as(Role.APPROVER)


@pytest.fixture
def secret() -> str:
    return agents.create_secret(SYSTEM_ACTOR, "window-tests").secret


def window(name: str = "nightly", **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "rrule": "FREQ=WEEKLY;BYDAY=SA",
        "duration_minutes": 240,
        "timezone": "Europe/Berlin",
        "starts": "2026-01-03T02:00",
    } | fields


def daily_utc(name: str, opens_in: timedelta, minutes: int) -> dict[str, Any]:
    """A daily UTC window whose opening today starts `opens_in` from now (negative: it opened that long ago)."""
    first = (timezone.now() + opens_in - timedelta(days=1)).astimezone(UTC).replace(second=0, microsecond=0)
    return window(
        name, rrule="FREQ=DAILY", timezone="UTC", duration_minutes=minutes, starts=first.strftime("%Y-%m-%dT%H:%M")
    )


# -- windows ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"rrule": "FREQ=SOMETIMES"}, "rrule"),
        ({"rrule": "FREQ=HOURLY"}, "rrule"),
        ({"rrule": "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"}, "rrule"),
        ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"duration_minutes": 0}, "duration_minutes"),
        ({"duration_minutes": 7 * 24 * 60 + 1}, "duration_minutes"),
        ({"starts": "next saturday"}, "starts"),
        ({"starts": "2026-01-03T02:00+01:00"}, "starts"),
        ({"offset_minutes": 50000}, "offset_minutes"),
        ({"name": ""}, "name"),
    ],
)
def test_a_bad_window_is_refused_naming_the_field(operator: ApiClient, fields: dict[str, Any], field: str) -> None:
    mark = audit_mark()

    answer = operator.post("windows", json=window(**fields))

    assert answer.status_code == 422, answer.content
    assert error_field(answer) == field
    assert not MaintenanceWindow.objects.exists()
    assert actions_since(mark) == []


def test_windows_are_created_listed_and_deleted(operator: ApiClient, api_as: Callable[[Role], ApiClient]) -> None:
    mark = audit_mark()
    created = operator.post("windows", json=window(description="Saturday night"))
    assert created.status_code == 201, created.content
    assert operator.post("windows", json=window()).status_code == 409  # the name is taken
    assert operator.post("windows", json=window("other", groups=["no-such-group"])).status_code == 404
    assert api_as(Role.VIEWER).post("windows", json=window("v")).status_code == 403

    (listed,) = api_as(Role.VIEWER).get("windows").json()

    assert listed["name"] == "nightly"
    assert listed["description"] == "Saturday night"
    start = datetime.fromisoformat(listed["next_opening"]["start"])
    end = datetime.fromisoformat(listed["next_opening"]["end"])
    local = start.astimezone(ZoneInfo("Europe/Berlin"))
    assert (local.weekday(), local.hour, local.minute) == (5, 2, 0)  # Saturday 02:00 Berlin time, DST or not
    assert end - start == timedelta(hours=4)
    assert end > timezone.now()
    assert operator.delete("windows/nightly").status_code == 204
    assert operator.delete("windows/nightly").status_code == 404
    assert operator.get("windows").json() == []
    assert actions_since(mark) == ["window.create", "window.delete"]


def test_an_offset_window_is_the_tuesday_after_patch_tuesday(operator: ApiClient) -> None:
    body = window("after-patch-tuesday", rrule="FREQ=MONTHLY;BYDAY=2TU", starts="2026-01-13T22:00",
                  duration_minutes=180, offset_minutes=7 * 24 * 60)  # fmt: skip
    assert operator.post("windows", json=body).status_code == 201

    (listed,) = operator.get("windows").json()

    local = datetime.fromisoformat(listed["next_opening"]["start"]).astimezone(ZoneInfo("Europe/Berlin"))
    assert local.weekday() == 1
    assert 15 <= local.day <= 21
    assert local.hour == 22


def test_a_freeze_removes_its_span_from_the_next_opening(operator: ApiClient) -> None:
    body = daily_utc("daily", opens_in=timedelta(hours=1), minutes=60)
    operator.post("windows", json=body)
    now = timezone.now()
    opening = operator.get("windows").json()[0]["next_opening"]
    frozen = {"name": "launch", "start": now.isoformat(), "end": (now + timedelta(days=1, hours=12)).isoformat()}
    assert operator.post("freezes", json=frozen).status_code == 201

    after = operator.get("windows").json()[0]["next_opening"]

    assert datetime.fromisoformat(after["start"]) > datetime.fromisoformat(opening["start"]) + timedelta(hours=23)


def test_freezes_are_created_listed_checked_and_ended(operator: ApiClient, api_as: Callable[[Role], ApiClient]) -> None:
    now = timezone.now()
    mark = audit_mark()
    body = {
        "name": "year end",
        "start": now.isoformat(),
        "end": (now + timedelta(days=3)).isoformat(),
        "reason": "audit",
    }
    created = operator.post("freezes", json=body)
    assert created.status_code == 201, created.content
    backwards = operator.post("freezes", json=body | {"end": (now - timedelta(days=1)).isoformat()})
    assert backwards.status_code == 422
    assert error_field(backwards) == "end"
    naive = operator.post("freezes", json=body | {"start": "2026-12-24T00:00:00", "end": "2026-12-27T00:00:00"})
    assert naive.status_code == 422
    assert api_as(Role.APPROVER).post("freezes", json=body).status_code == 403

    (listed,) = api_as(Role.VIEWER).get("freezes").json()

    assert listed["name"] == "year end"
    assert listed["reason"] == "audit"
    assert listed["created_by"].startswith("operator")
    assert operator.delete(f"freezes/{listed['id']}").status_code == 204
    assert operator.delete(f"freezes/{listed['id']}").status_code == 404
    assert actions_since(mark) == ["freeze.create", "freeze.delete"]


def test_an_ics_file_is_imported_as_windows_and_freezes(operator: ApiClient) -> None:
    mark = audit_mark()

    answer = operator.post("windows/import", json={"calendar": ICS.read_text()})

    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert body["windows"] == ["Saturday after Patch Tuesday", "Sunday night pilot ring", "Emergency kernel window"]
    assert len(body["freezes"]) == 2
    assert len(body["skipped"]) == 1
    assert "EXDATE" in body["skipped"][0]
    sunday = MaintenanceWindow.objects.get(name="Sunday night pilot ring")
    assert (sunday.timezone, sunday.starts, sunday.duration_minutes) == ("Europe/Berlin", "2026-01-04T01:30:00", 180)
    assert FreezePeriod.objects.count() == 2
    assert actions_since(mark).count("window.create") == 3
    assert actions_since(mark)[-1] == "window.import"

    again = operator.post("windows/import", json={"calendar": ICS.read_text()})
    assert again.status_code == 409  # a name is taken: the whole file is refused
    assert MaintenanceWindow.objects.count() == 3
    assert FreezePeriod.objects.count() == 2
    broken = operator.post("windows/import", json={"calendar": "this is not a calendar"})
    assert broken.status_code == 422
    assert MaintenanceWindow.objects.count() == 3


# -- what windows and freezes do to leasing --------------------------------------------------------------------


def rollout_on(operator: ApiClient, approver: ApiClient, hosts: list[str]) -> int:
    plan_id = approved(operator, approver, target={"hosts": hosts}, rings=ONE_RING)
    return int(start(operator, plan_id)["id"])


def test_a_freeze_holds_deploy_jobs_back_but_not_rollbacks(
    secret: str, operator: ApiClient, approver: ApiClient
) -> None:
    done, waiting = Agent(secret, "done-1"), Agent(secret, "waiting-1")
    first = rollout_on(operator, approver, ["done-1"])
    (lease,) = done.check_in()
    done.report(lease)
    done.apply(lease)
    now = timezone.now()
    freeze = operator.post("freezes", json={"name": "launch", "start": (now - timedelta(minutes=5)).isoformat(),
                                            "end": (now + timedelta(hours=6)).isoformat()})  # fmt: skip
    second = approved(operator, approver, target={"hosts": ["waiting-1"]}, rings=ONE_RING)
    preview = operator.get(f"plans/{second}").json()["hosts"][0]
    assert datetime.fromisoformat(preview["window_start"]) >= now + timedelta(hours=6) - timedelta(seconds=1)
    start(operator, second)

    assert waiting.check_in() == []  # frozen
    assert operator.post(f"rollouts/{first}/hosts/done-1/rollback").status_code == 200
    (rollback,) = done.check_in()  # a rollback is not held back by a freeze
    assert rollback["phase"] == "rollback"

    assert operator.delete(f"freezes/{freeze.json()['id']}").status_code == 204
    (deploy,) = waiting.check_in()
    assert deploy["phase"] == "deploy"


def test_only_a_host_whose_window_is_open_with_room_gets_its_job(
    secret: str, operator: ApiClient, approver: ApiClient
) -> None:
    hosts = {name: Agent(secret, name) for name in ("open-1", "closed-1", "short-1", "grouped-1", "free-1")}
    operator.post("windows", json=daily_utc("open", opens_in=-timedelta(hours=1), minutes=180))
    operator.post("windows", json=daily_utc("closed", opens_in=timedelta(hours=3), minutes=60))
    operator.post("windows", json=daily_utc("short", opens_in=-timedelta(minutes=50), minutes=60))  # 10 min left
    inventory_services.create_static_group(SYSTEM_ACTOR, "late", "", ["grouped-1"])
    covering = operator.post(
        "windows", json=daily_utc("late", opens_in=timedelta(hours=5), minutes=60) | {"groups": ["late"]}
    )
    assert covering.status_code == 201, covering.content
    for name in ("open", "closed", "short"):
        set_hosts([f"{name}-1"], maintenance_window=name)
    rollout_id = rollout_on(operator, approver, sorted(hosts))
    plan = operator.get(f"plans/{operator.get(f'rollouts/{rollout_id}').json()['plan_id']}").json()
    starts = {h["host"]: datetime.fromisoformat(h["window_start"]) for h in plan["hosts"]}
    assert starts["closed-1"] > timezone.now() + timedelta(hours=2)

    leased = {name: len(host.check_in()) for name, host in hosts.items()}

    assert leased == {"open-1": 1, "closed-1": 0, "short-1": 0, "grouped-1": 0, "free-1": 1}


def test_a_hosts_page_and_api_show_its_window_next_opening_and_deployments(
    secret: str, operator: ApiClient, approver: ApiClient, api_as: Callable[[Role], ApiClient]
) -> None:
    from django.test import Client

    from tests.conftest import TEST_PASSWORD

    hosts = {name: Agent(secret, name) for name in ("win-1", "free-2")}
    operator.post("windows", json=daily_utc("later", opens_in=timedelta(hours=3), minutes=60))
    set_hosts(["win-1"], maintenance_window="later")
    rollout_id = rollout_on(operator, approver, sorted(hosts))

    shown = operator.get("hosts/win-1").json()
    assert shown["window"] == "later"
    opens = datetime.fromisoformat(shown["next_opening"])
    assert timedelta(hours=2, minutes=55) < opens - timezone.now() < timedelta(hours=3, minutes=5)
    assert operator.get("hosts/free-2").json()["window"] == ""
    assert operator.get("hosts/free-2").json()["next_opening"] is None

    from patchday.accounts import services as accounts

    accounts.create_user(SYSTEM_ACTOR, "page-viewer", Role.VIEWER, TEST_PASSWORD)
    browser = Client()
    assert browser.login(username="page-viewer", password=TEST_PASSWORD)
    page = browser.get("/hosts/win-1/").content.decode()
    assert "later" in page
    assert "next opening" in page
    assert f"/rollouts/{rollout_id}/" in page
