"""The real agent (the zipapp, run by the system python without Django) against a live patchday server."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pytest_django.live_server_helper import LiveServer

from patchday.agent.build import build_zipapp
from patchday.core.audit import Actor, ActorKind
from patchday.inventory import agents
from patchday.inventory.models import Host

pytestmark = pytest.mark.slow
SYSTEM_PYTHON = "/usr/bin/python3"
ACTOR = Actor(ActorKind.SYSTEM, "tests")


@pytest.fixture(scope="module")
def pyz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not Path(SYSTEM_PYTHON).exists():
        pytest.skip(f"{SYSTEM_PYTHON} is needed")
    return build_zipapp(tmp_path_factory.mktemp("agent") / "patchday-agent.pyz")


@pytest.fixture
def secret(transactional_db: None) -> str:
    return agents.create_secret(ACTOR, "agent integration tests").secret


class AgentHost:
    """The agent on 'this host': its own config file and state directory under tmp_path."""

    def __init__(self, pyz: Path, home: Path) -> None:
        self.pyz = pyz
        self.config = home / "agent.json"
        self.state_dir = home / "state"
        self.outputs: list[str] = []

    def run(self, *args: str, secret: str = "") -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LC_ALL": "C.UTF-8",
            "PATCHDAY_AGENT_CONFIG": str(self.config),
            "PATCHDAY_AGENT_STATE_DIR": str(self.state_dir),
        }
        if secret:
            env["PATCHDAY_AGENT_ENROLL_SECRET"] = secret
        done = subprocess.run(
            [SYSTEM_PYTHON, "-I", str(self.pyz), *args],
            env=env,
            cwd=self.pyz.parent,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        self.outputs.append(done.stdout + done.stderr)
        return done

    @property
    def state(self) -> dict[str, Any]:
        document = json.loads((self.state_dir / "state.json").read_text())
        assert isinstance(document, dict)
        return document

    @property
    def host_id(self) -> int:
        value = self.state["host_id"]
        assert isinstance(value, int)
        return value


@pytest.fixture
def agent_host(pyz: Path, tmp_path: Path) -> AgentHost:
    return AgentHost(pyz, tmp_path)


def test_the_agent_enrolls_sends_its_inventory_then_only_its_digest(
    live_server: LiveServer, secret: str, agent_host: AgentHost
) -> None:
    enrolled = agent_host.run("enroll", "--server", live_server.url, secret=secret)
    assert enrolled.returncode == 0, enrolled.stderr
    host = Host.objects.get(pk=agent_host.host_id)
    assert host.management_mode == "agent"

    first = agent_host.run("once")
    assert first.returncode == 0, first.stderr
    assert "inventory sent" in first.stdout
    host.refresh_from_db()
    state = agent_host.state
    assert host.inventory_sequence == state["sequence"] == 1
    assert host.inventory_digest == state["last_digest"]
    assert host.packages.count() > 0

    second = agent_host.run("once")
    assert second.returncode == 0, second.stderr
    host.refresh_from_db()
    assert agent_host.state["sequence"] == 2
    if "inventory unchanged" in second.stdout:
        assert host.inventory_sequence == 1  # only the digest travelled
    else:  # this machine changed in between (an address, a pending update): the server asked again
        assert "inventory sent" in second.stdout
        assert host.inventory_sequence == 2
        assert host.inventory_digest == agent_host.state["last_digest"] != state["last_digest"]

    status = agent_host.run("status")
    assert status.returncode == 0
    assert f"host: {host.name} (id {host.pk})" in status.stdout
    assert not any(str(state["host_token"]) in output for output in agent_host.outputs)


def test_an_agent_behind_the_servers_sequence_moves_past_it(
    live_server: LiveServer, secret: str, agent_host: AgentHost
) -> None:
    assert agent_host.run("enroll", "--server", live_server.url, secret=secret).returncode == 0
    # As after re-enrolling a machine whose state file was lost: the host record remembers sequence 50.
    Host.objects.filter(pk=agent_host.host_id).update(inventory_sequence=50, inventory_digest="")
    done = agent_host.run("once")
    assert done.returncode == 0, done.stderr
    host = Host.objects.get(pk=agent_host.host_id)
    assert host.inventory_sequence == agent_host.state["sequence"]
    assert isinstance(host.inventory_sequence, int)
    assert host.inventory_sequence > 50


def test_a_revoked_secret_enrolls_nothing(live_server: LiveServer, secret: str, agent_host: AgentHost) -> None:
    prefix = secret.split("_")[1]
    agents.revoke_secret(ACTOR, prefix)
    done = agent_host.run("enroll", "--server", live_server.url, secret=secret)
    assert done.returncode == 1
    assert "refused the enrollment secret" in done.stderr
    assert not (agent_host.state_dir / "state.json").exists()
    assert not Host.objects.exists()


def test_a_revoked_host_token_makes_once_fail(live_server: LiveServer, secret: str, agent_host: AgentHost) -> None:
    assert agent_host.run("enroll", "--server", live_server.url, secret=secret).returncode == 0
    agents.revoke_host_tokens(ACTOR, Host.objects.get(pk=agent_host.host_id))
    done = agent_host.run("once")
    assert done.returncode == 1
    assert "HTTP 401" in done.stderr
    assert "401" in str(agent_host.state["last_error"])
