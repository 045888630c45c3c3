"""The agent's config and state files: atomic writes, 0600 for the token, validation, path overrides."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from patchday.agent import config
from patchday.agent.config import AgentConfig, AgentState, StateStore, load_config, save_config
from patchday.agent.errors import ConfigError, NotEnrolled

TOKEN = "pdh_secret-token-value"


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_state_is_written_with_mode_0600_in_a_0700_directory(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state")
    store.save(AgentState(7, "h1", TOKEN, sequence=3))
    assert mode_of(store.path) == 0o600
    assert mode_of(store.directory) == 0o700
    assert store.load() == AgentState(7, "h1", TOKEN, sequence=3)


def test_saving_state_tightens_a_too_open_directory(tmp_path: Path) -> None:
    directory = tmp_path / "state"
    directory.mkdir()
    os.chmod(directory, 0o755)  # noqa: S103 - the too-open directory under test
    StateStore(directory).save(AgentState(7, "h1", TOKEN))
    assert mode_of(directory) == 0o700


def test_the_file_is_private_before_the_token_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    modes_while_writing: list[int] = []
    real_fdopen = os.fdopen

    def spy(fd: int, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        modes_while_writing.append(stat.S_IMODE(os.fstat(fd).st_mode))
        return real_fdopen(fd, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(os, "fdopen", spy)
    StateStore(tmp_path).save(AgentState(7, "h1", TOKEN))
    assert modes_while_writing == [0o600]


def test_a_failed_write_leaves_the_old_state_and_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = StateStore(tmp_path)
    store.save(AgentState(7, "h1", TOKEN, sequence=1))

    def broken_replace(source: str, target: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="No space"):
        store.save(AgentState(7, "h1", TOKEN, sequence=2))
    monkeypatch.undo()
    assert store.require().sequence == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_loading_a_state_file_readable_by_others_makes_it_0600(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    store.save(AgentState(7, "h1", TOKEN))
    os.chmod(store.path, 0o644)  # restored from a backup, say
    assert store.require().host_token == TOKEN
    assert mode_of(store.path) == 0o600


def test_the_token_is_not_in_the_state_repr() -> None:
    state = AgentState(7, "h1", TOKEN)
    assert TOKEN not in repr(state)
    assert TOKEN not in str(state)


def test_no_state_file_means_not_enrolled(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "missing")
    assert store.load() is None
    with pytest.raises(NotEnrolled, match="patchday-agent enroll"):
        store.require()


@pytest.mark.parametrize(
    "document",
    [
        [],
        {"host_id": 7, "host_name": "h1"},
        {"host_id": 7, "host_name": "h1", "host_token": ""},
        {"host_id": 7, "host_name": "h1", "host_token": TOKEN, "sequence": -1},
        {"host_id": 7, "host_name": "h1", "host_token": TOKEN, "sequence": True},
        {"host_id": "7", "host_name": "h1", "host_token": TOKEN},
    ],
)
def test_a_malformed_state_file_is_refused_by_name(tmp_path: Path, document: object) -> None:
    (tmp_path / "state.json").write_text(json.dumps(document))
    with pytest.raises(ConfigError, match="state"):
        StateStore(tmp_path).load()


def test_a_state_file_that_is_not_json_is_refused(tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        StateStore(tmp_path).load()


def test_config_round_trips_and_holds_no_secret(tmp_path: Path) -> None:
    path = tmp_path / "etc" / "agent.json"
    save_config(path, AgentConfig("https://patchday.example", "/etc/patchday-agent/ca.pem", timeout=10))
    assert load_config(path) == AgentConfig("https://patchday.example", "/etc/patchday-agent/ca.pem", timeout=10.0)
    assert mode_of(path) == 0o644


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({}, "lacks `server`"),
        ({"server": "https://x", "timeout": 0}, "timeout"),
        ({"server": "https://x", "insecure_http": "yes"}, "insecure_http"),
        ({"server": "https://x", "ca_file": 3}, "ca_file"),
    ],
)
def test_a_bad_config_is_refused(tmp_path: Path, document: object, message: str) -> None:
    path = tmp_path / "agent.json"
    path.write_text(json.dumps(document))
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_a_missing_config_says_to_enroll(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="enroll"):
        load_config(tmp_path / "agent.json")


def test_paths_come_from_flags_then_environment_then_defaults() -> None:
    env = {config.CONFIG_ENV: "/srv/c.json", config.STATE_DIR_ENV: "/srv/state"}
    assert config.config_path("/x/agent.json", env) == Path("/x/agent.json")
    assert config.config_path(None, env) == Path("/srv/c.json")
    assert config.config_path(None, {}) == Path("/etc/patchday-agent/agent.json")
    assert config.state_dir("/x", env) == Path("/x")
    assert config.state_dir(None, env) == Path("/srv/state")
    assert config.state_dir(None, {}) == Path("/var/lib/patchday-agent")
