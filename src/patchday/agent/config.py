"""The agent's two files: its configuration (which server, how to trust it) and its state (host token, sequence).

Both are JSON. The state file holds the host token, so it is written atomically (temporary file,
fsync, rename) with mode 0600 in a 0700 directory, and `AgentState`'s repr leaves the token out.
Paths default to /etc/patchday-agent/agent.json and /var/lib/patchday-agent/state.json; the
command line (`--config`, `--state-dir`) or PATCHDAY_AGENT_CONFIG / PATCHDAY_AGENT_STATE_DIR
move them (tests do). This module is the one place the agent reads its environment variables.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from patchday.agent.errors import ConfigError, NotEnrolled

DEFAULT_CONFIG_PATH = Path("/etc/patchday-agent/agent.json")
DEFAULT_STATE_DIR = Path("/var/lib/patchday-agent")
STATE_FILE_NAME = "state.json"
CONFIG_ENV = "PATCHDAY_AGENT_CONFIG"
STATE_DIR_ENV = "PATCHDAY_AGENT_STATE_DIR"
SECRET_ENV = "PATCHDAY_AGENT_ENROLL_SECRET"
DEFAULT_TIMEOUT = 30.0
DEFAULT_INTERVAL = 300

log = logging.getLogger("patchday.agent")


@dataclass(frozen=True)
class AgentConfig:
    """Which server and how: `server` is its base URL, `ca_file` a PEM bundle trusted instead of the system's CAs."""

    server: str
    ca_file: str | None = None
    insecure_http: bool = False
    timeout: float = DEFAULT_TIMEOUT
    changelogs: bool = False


@dataclass(frozen=True)
class AgentState:
    """What the agent remembers between runs. `sequence` is the number of the last inventory collected."""

    host_id: int
    host_name: str
    host_token: str = field(repr=False)
    sequence: int = 0
    checkin_interval: int = DEFAULT_INTERVAL
    last_digest: str = ""  # digest of the last inventory the server stored
    last_checkin_at: str = ""
    last_inventory_at: str = ""
    last_error: str = ""


def config_path(flag: str | None = None, environ: Mapping[str, str] = os.environ) -> Path:
    """The config file: the flag, else PATCHDAY_AGENT_CONFIG, else /etc/patchday-agent/agent.json."""
    return Path(flag or environ.get(CONFIG_ENV) or DEFAULT_CONFIG_PATH)


def state_dir(flag: str | None = None, environ: Mapping[str, str] = os.environ) -> Path:
    """The state directory: the flag, else PATCHDAY_AGENT_STATE_DIR, else /var/lib/patchday-agent."""
    return Path(flag or environ.get(STATE_DIR_ENV) or DEFAULT_STATE_DIR)


def enroll_secret_from_env(environ: Mapping[str, str] = os.environ) -> str:
    """The enrollment secret handed over in the environment (keeps it out of `ps`), or ""."""
    return environ.get(SECRET_ENV, "").strip()


def write_file_atomically(path: Path, text: str, mode: int = 0o600) -> None:
    """Replace `path` with `text` so readers see the old or the new file, never a torn one; the file gets `mode`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=str(path.parent), prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)  # before any byte is written: the token is never readable by others, not even briefly
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(str(directory), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot sync a directory; the rename is still atomic
        pass
    finally:
        os.close(fd)


def _read_json_object(path: Path, what: str) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} {path}: {exc.strerror}") from exc
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"the {what} {path} is not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise ConfigError(f"the {what} {path} is not a JSON object")
    return document


def load_config(path: Path) -> AgentConfig:
    """The config at `path`; raises ConfigError when it is missing or malformed."""
    try:
        document = _read_json_object(path, "agent config")
    except FileNotFoundError:
        raise ConfigError(f"no agent config at {path}: run `patchday-agent enroll` first") from None
    server = document.get("server")
    ca_file = document.get("ca_file")
    insecure_http = document.get("insecure_http", False)
    timeout = document.get("timeout", DEFAULT_TIMEOUT)
    changelogs = document.get("changelogs", False)
    if not isinstance(server, str) or not server:
        raise ConfigError(f"the agent config {path} lacks `server` (the patchday server's URL)")
    if ca_file is not None and not isinstance(ca_file, str):
        raise ConfigError(f"`ca_file` in {path} must be a path or null")
    if not isinstance(insecure_http, bool) or not isinstance(changelogs, bool):
        raise ConfigError(f"`insecure_http` and `changelogs` in {path} must be true or false")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 1 <= timeout <= 600:
        raise ConfigError(f"`timeout` in {path} must be a number of seconds from 1 to 600")
    return AgentConfig(server, ca_file or None, insecure_http, float(timeout), changelogs)


def save_config(path: Path, config: AgentConfig) -> None:
    """Write the config atomically (0644: it holds no secret)."""
    write_file_atomically(path, json.dumps(asdict(config), indent=2, sort_keys=True) + "\n", mode=0o644)


class StateStore:
    """The state file `state.json` in a private directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / STATE_FILE_NAME

    def load(self) -> AgentState | None:
        """The saved state, or None before enrollment; raises ConfigError for a malformed file."""
        try:
            document = _read_json_object(self.path, "agent state")
        except FileNotFoundError:
            return None
        self._tighten_permissions()
        return _state_from(document, self.path)

    def require(self) -> AgentState:
        """The saved state; raises NotEnrolled when there is none."""
        state = self.load()
        if state is None:
            raise NotEnrolled(f"this host is not enrolled (no {self.path}): run `patchday-agent enroll`")
        return state

    def save(self, state: AgentState) -> None:
        """Write the state atomically with mode 0600, in a directory only its owner can enter."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if stat.S_IMODE(self.directory.stat().st_mode) & 0o077:
            os.chmod(self.directory, 0o700)
        write_file_atomically(self.path, json.dumps(asdict(state), indent=2, sort_keys=True) + "\n", mode=0o600)

    def update(self, state: AgentState, **changes: Any) -> AgentState:
        """Save `state` with `changes` applied and return it."""
        changed = replace(state, **changes)
        self.save(changed)
        return changed

    def _tighten_permissions(self) -> None:
        mode = stat.S_IMODE(self.path.stat().st_mode)
        if mode & 0o077:  # restored from a backup or copied by hand: the token must not stay readable
            log.warning("the state file %s had mode %o; setting 0600", self.path, mode)
            os.chmod(self.path, 0o600)


def _state_from(document: Mapping[str, Any], path: Path) -> AgentState:
    def text(key: str, required: bool = False) -> str:
        value = document.get(key, "")
        if not isinstance(value, str) or (required and not value):
            raise ConfigError(f"the agent state {path} has no valid `{key}`")
        return value

    def number(key: str, default: int, minimum: int) -> int:
        value = document.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ConfigError(f"the agent state {path} has no valid `{key}` (an integer >= {minimum})")
        return value

    return AgentState(
        host_id=number("host_id", 0, 0),
        host_name=text("host_name"),
        host_token=text("host_token", required=True),
        sequence=number("sequence", 0, 0),
        checkin_interval=number("checkin_interval", DEFAULT_INTERVAL, 1),
        last_digest=text("last_digest"),
        last_checkin_at=text("last_checkin_at"),
        last_inventory_at=text("last_inventory_at"),
        last_error=text("last_error"),
    )
