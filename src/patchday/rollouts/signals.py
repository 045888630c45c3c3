"""Announcing deployment events: change-request and rollout state changes go to the notification channels
(webhooks and e-mail) that subscribed, so Jira or ServiceNow can mirror a change, and people hear of a
failed ring or a finished rollout. Recorded once per (event, subject, state)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.utils import timezone

from patchday.notifications.detection import record_notification
from patchday.notifications.models import Channel, Event
from patchday.settings import load_settings

_PATHS = {"plan": ("/plans/{id}/", "/api/v1/plans/{id}"), "rollout": ("/rollouts/{id}/", "/api/v1/rollouts/{id}")}


def _subject(kind: str, object_id: int, state: str, detail: Mapping[str, Any]) -> dict[str, Any]:
    base = load_settings().public_url or ""
    web, api = _PATHS[kind]
    return {
        "type": kind,
        "id": object_id,
        "state": state,
        **detail,
        "links": {"web": base + web.format(id=object_id), "api": base + api.format(id=object_id)},
    }


def announce(event: Event, kind: str, object_id: int, state: str, detail: Mapping[str, Any], key: str = "") -> None:
    """Queue `event` about a plan or rollout for every channel that wants it (once per subject key)."""
    channels = list(Channel.objects.filter(enabled=True, deleted_at=None))
    if not channels:
        return
    subject_key = f"{kind}:{object_id}:{key or state}"[:128]
    record_notification(event.value, subject_key, _subject(kind, object_id, state, detail), timezone.now(), channels)


def change_state(kind: str, object_id: int, state: str, detail: Mapping[str, Any]) -> None:
    """A plan or rollout reached `state`: the ITSM mirror event."""
    announce(Event.CHANGE_STATE, kind, object_id, state, detail)
