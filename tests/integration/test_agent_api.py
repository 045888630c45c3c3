"""The agent protocol over HTTP (docs/agent.md): enroll, check in, send inventory; and what it refuses."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client, override_settings
from django.utils import timezone

from patchday.audit.models import AuditRecord
from patchday.inventory import agents, ingest
from patchday.inventory.models import EnrollmentSecret, Host, HostToken
from tests.conftest import SYSTEM_ACTOR, ApiClient
from tests.support.documents import document
from tests.support.fleet import host_at, real_host

pytestmark = pytest.mark.django_db
MACHINE = "0123456789abcdef0123456789abcdef"


def _enroll(secret: str, machine_id: str = MACHINE, hostname: str = "web-1") -> Any:
    body = {"secret": secret, "machine_id": machine_id, "hostname": hostname}
    return ApiClient(None).post("agent/enroll", json=body)


def _agent(token: str) -> ApiClient:
    return ApiClient(token)


@pytest.fixture
def secret() -> str:
    return agents.create_secret(SYSTEM_ACTOR, "fleet").secret


def test_enroll_check_in_and_send_inventory_only_when_it_changed(secret: str) -> None:
    enrolled = _enroll(secret)
    assert enrolled.status_code == 201, enrolled.content
    token = enrolled.json()["host_token"]
    assert token.startswith("pdh_")
    assert token not in json.dumps(list(HostToken.objects.values()), default=str)  # only its hash is stored
    agent = _agent(token)
    doc = document(real_host(), machine_id=MACHINE)
    digest = ingest.canonical_digest(doc)

    first = agent.post("agent/checkin", json={"sequence": 1, "digest": digest, "agent_version": "0.1.0"})
    sent = agent.request("PUT", "agent/inventory", json={"sequence": 1, "digest": digest, "inventory": doc})
    again = agent.post("agent/checkin", json={"sequence": 1, "digest": digest})

    assert first.status_code == 200
    assert first.json() == {"inventory_wanted": True, "checkin_interval": 900, "jobs": [], "simulations": []}
    assert sent.status_code == 200, sent.content
    assert sent.json()["added"] == len(real_host())
    assert again.json()["inventory_wanted"] is False
    host = Host.objects.get(machine_id=MACHINE)
    assert host.management_mode == "agent"
    assert host.packages.count() == len(real_host())


def test_a_replayed_inventory_is_refused_with_409_and_changes_nothing(secret: str) -> None:
    agent = _agent(_enroll(secret).json()["host_token"])
    newer = document(host_at("bookworm-security"), machine_id=MACHINE)
    older = document(real_host(), machine_id=MACHINE)
    put = {"sequence": 7, "digest": ingest.canonical_digest(newer), "inventory": newer}
    assert agent.request("PUT", "agent/inventory", json=put).status_code == 200

    replay = agent.request(
        "PUT", "agent/inventory", json={"sequence": 6, "digest": ingest.canonical_digest(older), "inventory": older}
    )

    assert replay.status_code == 409
    assert replay.json()["error"]["code"] == "conflict"
    assert replay.json()["error"]["details"] == {"last_sequence": 7}
    assert Host.objects.get().inventory_digest == ingest.canonical_digest(newer)


def test_re_enrolling_the_same_machine_revokes_its_old_token(secret: str) -> None:
    old = _enroll(secret).json()["host_token"]
    new = _enroll(secret).json()["host_token"]

    assert Host.objects.count() == 1
    assert _agent(old).post("agent/checkin", json={"sequence": 1, "digest": "0" * 64}).status_code == 401
    assert _agent(new).post("agent/checkin", json={"sequence": 1, "digest": "0" * 64}).status_code == 200


@pytest.mark.parametrize("state", ["revoked", "expired", "unknown", "malformed"])
def test_a_secret_that_is_not_active_enrolls_nothing(secret: str, state: str) -> None:
    record = EnrollmentSecret.objects.get()
    if state == "revoked":
        agents.revoke_secret(SYSTEM_ACTOR, record.prefix)
    elif state == "expired":
        EnrollmentSecret.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    elif state == "unknown":
        secret = secret[:-4] + "AAAA"
    else:
        secret = "not-a-secret"

    answer = _enroll(secret)

    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "forbidden"
    assert not Host.objects.exists()
    assert not HostToken.objects.exists()


def test_a_person_s_api_token_is_not_a_host_token(admin_api: ApiClient) -> None:
    answer = admin_api.post("agent/checkin", json={"sequence": 1, "digest": "0" * 64})

    assert answer.status_code == 401


def test_a_host_token_reaches_only_its_own_host(secret: str) -> None:
    token_a = _enroll(secret, machine_id="a" * 32, hostname="a").json()["host_token"]
    _enroll(secret, machine_id="b" * 32, hostname="b")
    claims_b = document(real_host()[:3], hostname="b", machine_id="b" * 32)

    answer = _agent(token_a).request(
        "PUT",
        "agent/inventory",
        json={"sequence": 1, "digest": ingest.canonical_digest(claims_b), "inventory": claims_b},
    )

    assert answer.status_code == 200
    assert answer.json()["host_name"] == "a"
    assert Host.objects.get(name="b").packages.count() == 0
    assert Host.objects.get(name="a").machine_id == "a" * 32
    assert _agent(token_a).get("hosts").status_code == 401  # nor any route for people


def test_an_inventory_over_the_size_limit_gets_413(secret: str) -> None:
    agent = _agent(_enroll(secret).json()["host_token"])
    doc = document(real_host(), machine_id=MACHINE)
    body = {"sequence": 1, "digest": ingest.canonical_digest(doc), "inventory": doc}

    with override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=10_000):
        answer = agent.request("PUT", "agent/inventory", json=body)

    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "payload_too_large"
    assert Host.objects.get().packages.count() == 0


def test_invalid_utf8_is_refused_and_names_the_body(secret: str) -> None:
    token = _enroll(secret).json()["host_token"]

    answer = Client().put(
        "/api/v1/agent/inventory",
        data=b'{"sequence": 1, "digest": "' + b"\xff" * 64 + b'", "inventory": {}}',
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )

    assert 400 <= answer.status_code < 500
    assert "error" in answer.json()
    assert Host.objects.get().packages.count() == 0


def test_a_hostile_document_is_refused_naming_the_field(secret: str) -> None:
    agent = _agent(_enroll(secret).json()["host_token"])
    doc = document(real_host()[:5], machine_id=MACHINE)
    doc["packages"][2]["version"] = "9" * 400

    answer = agent.request("PUT", "agent/inventory", json={"sequence": 1, "digest": "0" * 64, "inventory": doc})

    assert answer.status_code == 422
    assert "inventory.packages.2.version" in answer.json()["error"]["message"]
    assert Host.objects.get().packages.count() == 0


def test_enrollment_secrets_are_managed_by_admins_and_audited(admin_api: ApiClient) -> None:
    created = admin_api.post("enrollment-secrets", json={"name": "datacenter-1"})
    assert created.status_code == 201
    secret_id, secret_value = created.json()["id"], created.json()["secret"]

    listed = admin_api.get("enrollment-secrets").json()
    revoked = admin_api.delete(f"enrollment-secrets/{secret_id}")

    assert [(s["id"], s["state"]) for s in listed] == [(secret_id, "active")]
    assert "secret" not in listed[0]
    assert revoked.json()["state"] == "revoked"
    assert _enroll(secret_value).status_code == 403
    actions = set(AuditRecord.objects.values_list("action", flat=True))
    assert {"enrollment_secret.create", "enrollment_secret.revoke"} <= actions


def test_the_server_serves_the_agent_and_an_install_script_without_secrets(tmp_path, secret: str) -> None:  # type: ignore[no-untyped-def]
    import hashlib
    import subprocess

    download = Client().get("/agent/patchday-agent.pyz")
    script = Client().get("/agent/install.sh").content.decode()

    assert download.status_code == 200
    digest = hashlib.sha256(download.content).hexdigest()
    assert download["X-Checksum-SHA256"] == digest
    assert Client().get("/agent/patchday-agent.pyz", headers={"If-None-Match": f'"{digest}"'}).status_code == 304
    pyz = tmp_path / "patchday-agent.pyz"
    pyz.write_bytes(download.content)
    version = subprocess.run(["/usr/bin/python3", "-I", str(pyz), "--version"], capture_output=True, text=True)
    assert version.returncode == 0, version.stderr
    assert version.stdout.startswith("patchday-agent ")
    assert digest in script
    assert secret not in script
    assert "pde_" not in script
