"""The inspected host as collectors see it: files under a root prefix, and commands run as argv lists."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from patchday.collectors import CollectorError

# Non-login shells (SSH commands, cron) often lack the sbin directories where `ip` lives.
_EXTRA_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")


@dataclass(frozen=True)
class CommandResult:
    """What a finished command left behind."""

    returncode: int
    stdout: str
    stderr: str


class Runner(Protocol):
    """Runs argv (never through a shell) with a timeout in seconds, in `cwd` (None: inherit)."""

    def __call__(self, argv: Sequence[str], timeout: float, cwd: str | None) -> CommandResult: ...


def run_command(argv: Sequence[str], timeout: float = 120, cwd: str | None = None) -> CommandResult:
    """Run `argv` (never through a shell) with LC_ALL=C; raises CollectorError when it cannot start or times out.

    A non-zero exit status is not an error here: callers decide what it means (`dnf check-update` exits 100).
    """
    env = dict(os.environ)
    env["LC_ALL"] = "C"
    env.pop("LANGUAGE", None)
    path = env.get("PATH", "").split(os.pathsep)
    env["PATH"] = os.pathsep.join([p for p in path if p] + [p for p in _EXTRA_PATH if p not in path])
    try:
        done = subprocess.run(  # noqa: S603 - argv list, no shell
            list(argv),
            capture_output=True,
            timeout=timeout,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except FileNotFoundError:
        raise CollectorError(f"{argv[0]} is not installed") from None
    except subprocess.TimeoutExpired:
        raise CollectorError(f"{' '.join(argv[:3])} did not finish within {timeout:g} s") from None
    except OSError as exc:
        raise CollectorError(f"{argv[0]} could not be started: {exc.strerror or exc}") from None
    return CommandResult(
        done.returncode,
        done.stdout.decode("utf-8", "replace"),
        done.stderr.decode("utf-8", "replace"),
    )


class Host:
    """Files of the host below `root` ("/" for the running system) and a runner for its commands."""

    def __init__(self, root: str = "/", runner: Runner = run_command) -> None:
        self.root = root or "/"
        self.runner = runner

    @property
    def is_live(self) -> bool:
        """True when `root` is the running system's own root, so its commands and /proc describe it."""
        return os.path.abspath(self.root) == "/"

    def path(self, path: str) -> str:
        """The local path of the host's absolute or root-relative `path`."""
        return os.path.join(self.root, path.lstrip("/"))

    def exists(self, path: str) -> bool:
        return os.path.lexists(self.path(path))

    def read_bytes(self, path: str) -> bytes:
        """The content of the host's file `path`; raises CollectorError naming it (and saying why)."""
        local = self.path(path)
        try:
            with open(local, "rb") as handle:
                return handle.read()
        except PermissionError:
            raise CollectorError(f"permission denied: {local}") from None
        except FileNotFoundError:
            raise CollectorError(f"no such file: {local}") from None
        except OSError as exc:
            raise CollectorError(f"cannot read {local}: {exc.strerror or exc}") from None

    def read_text(self, path: str) -> str:
        return self.read_bytes(path).decode("utf-8", "replace")

    def listdir(self, path: str) -> list[str]:
        """Sorted entries of the host's directory `path`; [] when it does not exist."""
        try:
            return sorted(os.listdir(self.path(path)))
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise CollectorError(f"cannot list {self.path(path)}: {exc.strerror or exc}") from None

    def run(self, argv: Sequence[str], timeout: float = 120, cwd: str | None = None) -> CommandResult:
        """Run `argv` on the host; raises CollectorError when it cannot be run."""
        return self.runner(argv, timeout, cwd)

    def run_ok(self, argv: Sequence[str], timeout: float = 120, cwd: str | None = None) -> str:
        """stdout of `argv`; raises CollectorError naming the command when it exits non-zero."""
        done = self.run(argv, timeout, cwd)
        if done.returncode != 0:
            detail = (done.stderr.strip() or done.stdout.strip())[-300:]
            raise CollectorError(f"{' '.join(argv[:3])} exited with status {done.returncode}: {detail}")
        return done.stdout
