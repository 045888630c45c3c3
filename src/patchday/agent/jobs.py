"""The host side of deployment jobs: validate a job spec, change packages step by step, report what happened.

The agent runs jobs it pulls at check-in; the server pushes the same code over SSH. Either way the
input is one job spec (JSON) and the output one result document (JSON); see docs/agent.md, "Jobs".

A deploy job simulates the install to learn every package it will touch, records their installed
versions, keeps their exact current package files under `root_dir/<job_id>/` (with a
`manifest.json`) and fails before changing anything when a file cannot be kept: exact rollback is a
promise. Then it runs the snapshot hook, the pre-scripts, the install, checks the host reports each
target at exactly its version, runs the post-scripts, the health checks, the second snapshot hook,
and schedules a reboot when the policy says so. A rollback job puts back the versions its spec
names from the files a deploy job kept, and removes what that job newly installed.

Every command is an argv list (never a shell), bounded in time, its output captured and cut to its
last 8 KiB. As a command: `python3 -m patchday.agent.jobs [--root-dir DIR] < spec.json` prints the
result and exits 0 (also when the job failed), or 2 with `{"status": "invalid", "error": ...}` for
a spec it refuses.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from patchday.agent.packages import (
    MANAGERS,
    Change,
    Installed,
    JobSpecError,
    deb_fields_argv,
    deb_file_name,
    download_argv,
    find_installed,
    install_argv,
    installed_versions_argv,
    parse_apt_simulation,
    parse_deb_fields,
    parse_installed,
    rollback_argv,
    simulate_argv,
    validate_arch,
    validate_name,
    validate_version,
)

DEFAULT_ROOT_DIR = "/var/lib/patchday/jobs"
APT_ARCHIVES = "/var/cache/apt/archives"
REBOOT_REQUIRED_FILE = "/var/run/reboot-required"
OUTPUT_TAIL = 8192  # bytes kept of each command's stdout and stderr
MAX_SPEC_BYTES = 1 << 20
MAX_TIMEOUT = 86400
DEFAULT_STEP_TIMEOUT = 1800
KINDS = ("deploy", "rollback")
REBOOT_POLICIES = ("never", "if_required", "always")
GUEST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# What a non-interactive upgrade needs: no debconf questions, needrestart restarts services itself, no pager.
INSTALL_ENV = {"DEBIAN_FRONTEND": "noninteractive", "NEEDRESTART_MODE": "a", "APT_LISTCHANGES_FRONTEND": "none"}
_PASSED_ENV = ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")
_SPEC_KEYS = {
    "job_id",
    "kind",
    "manager",
    "targets",
    "restore",
    "rollback_of",
    "reboot",
    "pre_scripts",
    "post_scripts",
    "health_checks",
    "snapshot",
    "step_timeout",
}
_STEP_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


# The zipapp's own __main__ runs the agent's command line; this runs the job runner from the same file:
# `python3 -I -c ZIPAPP_BOOTSTRAP /path/to/patchday-agent.pyz [--root-dir DIR] < spec.json`.
ZIPAPP_BOOTSTRAP = (
    "import runpy, sys; sys.path.insert(0, sys.argv[1]); del sys.argv[1]; "
    "runpy.run_module('patchday.agent.jobs', run_name='__main__', alter_sys=True)"
)


def zipapp_argv(pyz_path: str, python: str = "python3", root_dir: str | None = None) -> list[str]:
    """argv that runs the job runner of the agent zipapp at `pyz_path` (isolated: no PYTHONPATH, no user site).

    The job spec goes on its standard input; the result comes on its standard output.
    """
    return [python, "-I", "-c", ZIPAPP_BOOTSTRAP, pyz_path, *(["--root-dir", root_dir] if root_dir else [])]


# -- the spec ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A package to bring to exactly `version`."""

    name: str
    version: str


@dataclass(frozen=True)
class Restore:
    """A package to put back at `version`; None means the deploy job installed it and it is removed."""

    name: str
    version: str | None
    arch: str


@dataclass(frozen=True)
class Script:
    """A command run as a pre-script, post-script or health check: exit status 0 is success."""

    name: str
    argv: tuple[str, ...]
    timeout: int


@dataclass(frozen=True)
class HttpCheck:
    """A health check that GETs `url` (no redirects followed, no proxy) and expects `expect_status`."""

    name: str
    url: str
    expect_status: int
    timeout: int


@dataclass(frozen=True)
class Snapshot:
    """Hooks run before the first and after the last change (a file-system or VM snapshot, say)."""

    before: tuple[str, ...] | None = None
    after: tuple[str, ...] | None = None
    timeout: int = 600


@dataclass(frozen=True)
class JobSpec:
    """A validated job spec; build it with `parse_spec`."""

    job_id: int
    kind: str
    manager: str
    targets: tuple[Target, ...] = ()
    restore: tuple[Restore, ...] = ()
    rollback_of: int | None = None
    reboot: str = "never"
    pre_scripts: tuple[Script, ...] = ()
    post_scripts: tuple[Script, ...] = ()
    health_checks: tuple[Script | HttpCheck, ...] = ()
    snapshot: Snapshot = field(default_factory=Snapshot)
    step_timeout: int = DEFAULT_STEP_TIMEOUT


def _int(value: object, where: str, low: int = 1, high: int = 2**53) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise JobSpecError(f"{where} must be an integer from {low} to {high}, not {value!r}")
    return value


def _str(value: object, where: str, choices: Sequence[str] = ()) -> str:
    if not isinstance(value, str):
        raise JobSpecError(f"{where} must be a string, not {type(value).__name__}")
    if choices and value not in choices:
        raise JobSpecError(f"{where} must be one of {', '.join(choices)}, not {value[:60]!r}")
    return value


def _object(value: object, where: str, required: set[str], optional: Collection[str] = ()) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise JobSpecError(f"{where} must be an object")
    unknown = sorted(str(k)[:40] for k in value.keys() - required - set(optional))
    if unknown:
        raise JobSpecError(f"{where} has unknown keys: {', '.join(unknown)}")
    missing = sorted(required - value.keys())
    if missing:
        raise JobSpecError(f"{where} lacks {', '.join(missing)}")
    return value


def _list(value: object, where: str, most: int) -> list[Any]:
    if not isinstance(value, list):
        raise JobSpecError(f"{where} must be a list")
    if len(value) > most:
        raise JobSpecError(f"{where} has {len(value)} items; at most {most}")
    return value


def _step_name(value: object, where: str) -> str:
    name = _str(value, where)
    if not 1 <= len(name) <= 64 or not set(name) <= _STEP_NAME_CHARS or name[0] in "-.":
        raise JobSpecError(f"{where} {name[:70]!r} must be 1-64 letters, digits, '_', '.', '-'")
    return name


def _argv(value: object, where: str) -> tuple[str, ...]:
    words = _list(value, where, 256)
    if not words:
        raise JobSpecError(f"{where} must not be empty")
    for index, word in enumerate(words):
        _str(word, f"{where}[{index}]")
        if "\x00" in word or len(word) > 4096:
            raise JobSpecError(f"{where}[{index}] contains NUL or is longer than 4096 characters")
    if not words[0]:
        raise JobSpecError(f"{where}[0] must name a program")
    return tuple(words)


def _scripts(value: object, where: str) -> tuple[Script, ...]:
    scripts = []
    for index, item in enumerate(_list(value, where, 32)):
        at = f"{where}[{index}]"
        item = _object(item, at, {"name", "argv", "timeout"})
        scripts.append(
            Script(
                _step_name(item["name"], f"{at}.name"),
                _argv(item["argv"], f"{at}.argv"),
                _int(item["timeout"], f"{at}.timeout", 1, MAX_TIMEOUT),
            )
        )
    return tuple(scripts)


def _health_checks(value: object, where: str) -> tuple[Script | HttpCheck, ...]:
    checks: list[Script | HttpCheck] = []
    for index, item in enumerate(_list(value, where, 32)):
        at = f"{where}[{index}]"
        if isinstance(item, dict) and "url" in item:
            item = _object(item, at, {"name", "url", "expect_status", "timeout"})
            url = _str(item["url"], f"{at}.url")
            parts = urlsplit(url)
            if (
                parts.scheme not in ("http", "https")
                or not parts.hostname
                or len(url) > 2048
                or any(c.isspace() or ord(c) < 32 for c in url)
            ):
                raise JobSpecError(f"{at}.url {url[:80]!r} must be an http:// or https:// URL")
            checks.append(
                HttpCheck(
                    _step_name(item["name"], f"{at}.name"),
                    url,
                    _int(item["expect_status"], f"{at}.expect_status", 100, 599),
                    _int(item["timeout"], f"{at}.timeout", 1, 3600),
                )
            )
        else:
            checks.extend(_scripts([item], where))
    return tuple(checks)


def _snapshot(value: object) -> Snapshot:
    if value is None:
        return Snapshot()
    item = _object(value, "snapshot", {"timeout"}, {"before", "after"})
    before, after = item.get("before"), item.get("after")
    return Snapshot(
        None if before is None else _argv(before, "snapshot.before"),
        None if after is None else _argv(after, "snapshot.after"),
        _int(item["timeout"], "snapshot.timeout", 1, MAX_TIMEOUT),
    )


def parse_spec(document: object) -> JobSpec:
    """The JobSpec of a decoded job spec document; JobSpecError naming the first bad key or value.

    Unknown keys are refused everywhere, types are checked exactly (a bool is not an integer),
    and package names and versions must pass `packages.validate_name`/`validate_version`.
    """
    kind_known = isinstance(document, dict) and document.get("kind") in KINDS
    required = {"job_id", "kind", "manager"}
    if kind_known and isinstance(document, dict):
        required |= {"targets"} if document["kind"] == "deploy" else {"restore", "rollback_of"}
    spec = _object(document, "job spec", required, _SPEC_KEYS)
    job_id = _int(spec["job_id"], "job_id")
    kind = _str(spec["kind"], "kind", KINDS)
    manager = _str(spec["manager"], "manager", MANAGERS)
    targets: list[Target] = []
    seen: set[str] = set()
    for index, item in enumerate(_list(spec.get("targets", []), "targets", 1000)):
        item = _object(item, f"targets[{index}]", {"name", "version"})
        name = validate_name(manager, _str(item["name"], f"targets[{index}].name"))
        version = validate_version(manager, _str(item["version"], f"targets[{index}].version"))
        if name in seen:
            raise JobSpecError(f"targets name {name} twice")
        seen.add(name)
        targets.append(Target(name, version))
    restore: list[Restore] = []
    for index, item in enumerate(_list(spec.get("restore", []), "restore", 1000)):
        item = _object(item, f"restore[{index}]", {"name", "version", "arch"})
        name = validate_name(manager, _str(item["name"], f"restore[{index}].name"))
        raw = item["version"]
        wanted = None if raw is None else validate_version(manager, _str(raw, f"restore[{index}].version"))
        if name in seen:
            raise JobSpecError(f"restore names {name} twice")
        seen.add(name)
        restore.append(Restore(name, wanted, validate_arch(_str(item["arch"], f"restore[{index}].arch"))))
    rollback_of = spec.get("rollback_of")
    if kind == "deploy":
        if not targets:
            raise JobSpecError("a deploy job needs at least one target")
        if restore or rollback_of is not None:
            raise JobSpecError("a deploy job takes no restore list and no rollback_of")
    else:
        if not restore:
            raise JobSpecError("a rollback job needs at least one restore entry")
        if targets:
            raise JobSpecError("a rollback job takes no targets")
        rollback_of = _int(rollback_of, "rollback_of")
    return JobSpec(
        job_id=job_id,
        kind=kind,
        manager=manager,
        targets=tuple(targets),
        restore=tuple(restore),
        rollback_of=rollback_of,
        reboot=_str(spec.get("reboot", "never"), "reboot", REBOOT_POLICIES),
        pre_scripts=_scripts(spec.get("pre_scripts", []), "pre_scripts"),
        post_scripts=_scripts(spec.get("post_scripts", []), "post_scripts"),
        health_checks=_health_checks(spec.get("health_checks", []), "health_checks"),
        snapshot=_snapshot(spec.get("snapshot")),
        step_timeout=_int(spec.get("step_timeout", DEFAULT_STEP_TIMEOUT), "step_timeout", 1, MAX_TIMEOUT),
    )


# -- running commands ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """How a command ended: `exit_code` is None when it was killed (a timeout, a signal)."""

    exit_code: int | None
    stdout: str
    stderr: str
    timed_out: bool = False


class Runner(Protocol):
    """Runs argv (no shell) with this environment and working directory, for at most `timeout` seconds."""

    def __call__(
        self, argv: Sequence[str], *, timeout: float, env: Mapping[str, str], cwd: str | None = None
    ) -> Outcome: ...


def tail(data: bytes | str, limit: int = OUTPUT_TAIL) -> str:
    """The last `limit` bytes of `data` as text (undecodable bytes replaced)."""
    raw = data.encode("utf-8", "replace") if isinstance(data, str) else data
    return raw[-limit:].decode("utf-8", "replace")


def run_subprocess(argv: Sequence[str], *, timeout: float, env: Mapping[str, str], cwd: str | None = None) -> Outcome:
    """The default Runner: its own process group, killed whole on timeout (maintainer scripts included)."""
    try:
        process = subprocess.Popen(  # noqa: S603 - an argv list built from validated values, no shell
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,
        )
    except OSError as exc:
        return Outcome(127, "", f"cannot run {argv[0]}: {exc.strerror or exc}")
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            stdout, stderr = process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate()
        return Outcome(None, tail(stdout), tail(stderr), timed_out=True)
    return Outcome(process.returncode, tail(stdout), tail(stderr))


def http_status(url: str, timeout: float) -> int:
    """The HTTP status a GET of `url` answers (redirects not followed, no proxy); OSError when there is none."""

    class _NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)
    try:
        with opener.open(url, timeout=timeout) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def needs_reboot(policy: str, required: bool) -> bool:
    """Whether a job with reboot `policy` reboots the host, given whether the host says a reboot is required."""
    if policy == "always":
        return True
    if policy == "if_required":
        return required
    if policy == "never":
        return False
    raise JobSpecError(f"unknown reboot policy {policy!r}")


# -- running a job -------------------------------------------------------------------------------


class StepFailed(Exception):
    """A step of a job failed; the message names the step. Caught by run_job, never seen outside."""


def _iso(timestamp: float) -> str:
    moment = datetime.fromtimestamp(timestamp, timezone.utc)  # noqa: UP017 - Python 3.9 has no datetime.UTC
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _base_env() -> dict[str, str]:
    env = {"PATH": GUEST_PATH, "LC_ALL": "C", "LANG": "C", "HOME": os.environ.get("HOME") or "/root"}
    env.update({key: os.environ[key] for key in _PASSED_ENV if key in os.environ})
    return env


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def empty_result(job_id: int | None, kind: str | None) -> dict[str, Any]:
    """The result document of a job that has not run a step yet (status "failed" until it succeeds)."""
    return {
        "job_id": job_id,
        "kind": kind,
        "status": "failed",
        "error": "",
        "steps": [],
        "before": {},
        "after": {},
        "kept_files": [],
        "reboot_required": False,
        "reboot_scheduled": False,
        "health": [],
    }


class _Job:
    """One run of one job: the steps taken so far and the result document being built."""

    def __init__(
        self,
        spec: JobSpec,
        root_dir: Path,
        runner: Runner,
        clock: Callable[[], float],
        http: Callable[[str, float], int],
        apt_archives: Path,
        reboot_required_file: Path,
    ) -> None:
        self.spec = spec
        self.root_dir = root_dir
        self.job_dir = root_dir / str(spec.job_id)
        self.runner = runner
        self.clock = clock
        self.http = http
        self.apt_archives = apt_archives
        self.reboot_required_file = reboot_required_file
        self.env = {**_base_env(), "PATCHDAY_JOB_ID": str(spec.job_id), "PATCHDAY_JOB_KIND": spec.kind}
        self.result = empty_result(spec.job_id, spec.kind)

    # one command
    def run(
        self,
        name: str,
        argv: Sequence[str],
        timeout: float,
        *,
        ok: Sequence[int] = (0,),
        check: bool = True,
        extra_env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> Outcome:
        """Run one step; with `check`, raise StepFailed naming it unless it exits with a status in `ok`."""
        started = self.clock()
        outcome = self.runner(
            list(argv), timeout=timeout, env={**self.env, **(extra_env or {})}, cwd=str(cwd) if cwd else None
        )
        self.result["steps"].append(
            {
                "name": name,
                "argv": list(argv),
                "exit_code": outcome.exit_code,
                "stdout": tail(outcome.stdout),
                "stderr": tail(outcome.stderr),
                "started_at": _iso(started),
                "finished_at": _iso(self.clock()),
                "timed_out": outcome.timed_out,
            }
        )
        if check and (outcome.timed_out or outcome.exit_code not in ok):
            raise StepFailed(f"step {name} failed: {self.describe(argv, outcome, timeout)}")
        return outcome

    @staticmethod
    def describe(argv: Sequence[str], outcome: Outcome, timeout: float) -> str:
        if outcome.timed_out:
            return f"{argv[0]} timed out after {timeout:g} s"
        reason = _last_line(outcome.stderr) or _last_line(outcome.stdout)
        return f"{argv[0]} exited with {outcome.exit_code}" + (f": {reason}" if reason else "")

    def installed(self, step: str, names: Sequence[str]) -> list[Installed]:
        # dpkg-query exits 1 when some of the names are unknown to it: they are simply not installed.
        argv = installed_versions_argv(self.spec.manager, names)
        outcome = self.run(step, argv, self.spec.step_timeout, ok=(0, 1))
        return parse_installed(self.spec.manager, outcome.stdout)

    def scripts(self, prefix: str, scripts: Sequence[Script]) -> None:
        for script in scripts:
            self.run(f"{prefix}:{script.name}", script.argv, script.timeout)

    def hook(self, name: str, argv: Sequence[str] | None) -> None:
        if argv is not None:
            self.run(name, argv, self.spec.snapshot.timeout)

    def health(self) -> None:
        failed = []
        for check in self.spec.health_checks:
            if isinstance(check, HttpCheck):
                try:
                    status = self.http(check.url, check.timeout)
                    passed, detail = status == check.expect_status, f"HTTP {status}"
                except (OSError, ValueError) as exc:
                    passed, detail = False, f"GET {check.url} failed: {exc}"[:300]
                if not passed and detail.startswith("HTTP"):
                    detail += f", expected {check.expect_status}"
            else:
                outcome = self.run(f"health:{check.name}", check.argv, check.timeout, check=False)
                passed = outcome.exit_code == 0 and not outcome.timed_out
                detail = "exit 0" if passed else self.describe(check.argv, outcome, check.timeout)
            self.result["health"].append({"name": check.name, "ok": passed, "detail": detail})
            if not passed:
                failed.append(check.name)
        if failed:
            raise StepFailed(f"step health failed: {', '.join(failed)}")

    def reboot(self) -> None:
        required = self.reboot_required_file.exists()
        self.result["reboot_required"] = required
        if needs_reboot(self.spec.reboot, required):
            self.run("reboot", ["shutdown", "-r", "+1", f"patchday job {self.spec.job_id}"], 60)
            self.result["reboot_scheduled"] = True

    def finish_changes(self) -> None:
        self.scripts("post", self.spec.post_scripts)
        self.health()
        self.hook("snapshot-after", self.spec.snapshot.after)
        self.reboot()

    @staticmethod
    def state(row: Installed | None, arch: str) -> dict[str, str | None]:
        return {"version": row.version if row else None, "arch": row.arch if row else arch}


# -- deploy --------------------------------------------------------------------------------------


def _manifest_path(job_dir: Path) -> Path:
    return job_dir / "manifest.json"


def _write_manifest(job_dir: Path, manifest: Mapping[str, Any]) -> None:
    """Replace manifest.json atomically (0600): a crash leaves the old one or the new one."""
    path = _manifest_path(job_dir)
    temporary = path.with_name(".manifest.json.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(manifest, handle, indent=1, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def read_manifest(job_dir: Path) -> dict[str, Any]:
    """The manifest a deploy job wrote: {"job_id", "manager", "packages": {name: {"version", "arch", "file"}}}.

    Raises StepFailed when there is none or it cannot be read.
    """
    path = _manifest_path(job_dir)
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StepFailed(f"step manifest failed: cannot read {path}: {exc}") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("packages"), dict):
        raise StepFailed(f"step manifest failed: {path} has no packages")
    return manifest


def _keep_file(job: _Job, name: str, version: str, arch: str) -> str:
    """An absolute path under the job directory to the .deb of exactly name/version/arch; StepFailed if none."""
    file_name = deb_file_name(name, version, arch)
    kept = job.job_dir / file_name
    bare = name.partition(":")[0]

    def matches(path: Path) -> bool:
        outcome = job.run(f"verify:{name}", deb_fields_argv(str(path)), job.spec.step_timeout, check=False)
        fields = parse_deb_fields(outcome.stdout) if outcome.exit_code == 0 else {}
        return (fields.get("Package"), fields.get("Version"), fields.get("Architecture")) == (bare, version, arch)

    if kept.is_file() and matches(kept):
        return str(kept)
    cached = job.apt_archives / file_name
    if cached.is_file():
        shutil.copyfile(cached, kept)
        if matches(kept):
            return str(kept)
    done = job.run(
        f"download:{name}", download_argv("apt", name, version), job.spec.step_timeout, check=False, cwd=job.job_dir
    )
    if done.exit_code == 0 and kept.is_file() and matches(kept):
        return str(kept)
    # The version is gone from every mirror (a superseded security update): repack what is installed.
    done = job.run(f"repack:{name}", ["dpkg-repack", "--", name], job.spec.step_timeout, check=False, cwd=job.job_dir)
    if done.exit_code == 0:
        for candidate in sorted(job.job_dir.glob(f"{bare}_*_{arch}.deb")):
            if matches(candidate):
                return str(candidate)
    raise StepFailed(
        f"step keep failed: no package file of {name} {version} ({arch}): not in {job.apt_archives},"
        " apt-get download and dpkg-repack did not give one; nothing was changed"
    )


def _deploy(job: _Job) -> None:
    spec = job.spec
    targets = [(t.name, t.version) for t in spec.targets]
    simulation = job.run("simulate", simulate_argv(spec.manager, targets), spec.step_timeout)
    try:
        changes = parse_apt_simulation(simulation.stdout)
        for change in changes:
            validate_name("apt", change.name)
            validate_arch(change.arch)
            for version in (change.old, change.new):
                if version is not None:
                    validate_version("apt", version)
    except JobSpecError as exc:
        raise StepFailed(f"step simulate failed: {exc}") from None
    touched: dict[str, Change] = {}
    for change in changes:
        if change.name in touched:
            raise StepFailed(f"step simulate failed: apt changes {change.name} twice")
        touched[change.name] = change
    names = sorted(set(touched) | {name for name, _ in targets})
    rows = job.installed("installed-before", names)

    # A retried job keeps what its first attempt recorded: that is the state before any change.
    previous = read_manifest(job.job_dir)["packages"] if _manifest_path(job.job_dir).exists() else {}
    packages: dict[str, dict[str, Any]] = dict(previous)
    arch_of = {name: change.arch for name, change in touched.items()}
    for name in names:
        if name not in packages:
            row = find_installed(rows, name, arch_of.get(name, ""))
            packages[name] = {**job.state(row, arch_of.get(name, "")), "file": None}
    job.result["before"] = {
        name: {"version": packages[name]["version"], "arch": packages[name]["arch"]} for name in names
    }
    for name in sorted(touched):
        entry = packages[name]
        if entry["version"] is not None and entry["file"] is None:
            entry["file"] = _keep_file(job, name, entry["version"], entry["arch"])
            _write_manifest(job.job_dir, {"job_id": spec.job_id, "manager": spec.manager, "packages": packages})
    _write_manifest(job.job_dir, {"job_id": spec.job_id, "manager": spec.manager, "packages": packages})
    job.result["kept_files"] = sorted(e["file"] for e in packages.values() if e["file"])

    job.hook("snapshot-before", spec.snapshot.before)
    job.scripts("pre", spec.pre_scripts)

    def record_after() -> None:
        rows = job.installed("installed-after", names)
        job.result["after"] = {
            name: job.state(find_installed(rows, name, arch_of.get(name, "")), packages[name]["arch"]) for name in names
        }

    try:
        job.run("install", install_argv(spec.manager, targets), spec.step_timeout, extra_env=INSTALL_ENV)
    except StepFailed:
        with contextlib.suppress(StepFailed):  # the server must know where a failed install left the host
            record_after()
        raise
    record_after()
    after = job.result["after"]
    wrong = [
        f"host reports {name} at {after[name]['version'] or 'not installed'}, asked for {version}"
        for name, version in targets
        if after[name]["version"] != version
    ]
    if wrong:
        raise StepFailed("step verify failed: " + "; ".join(wrong))
    job.finish_changes()


# -- rollback ------------------------------------------------------------------------------------


def _record_after(job: _Job, names: Sequence[str]) -> None:
    rows = job.installed("installed-after", names)
    job.result["after"] = {r.name: job.state(find_installed(rows, r.name, r.arch), r.arch) for r in job.spec.restore}


def _rollback(job: _Job) -> None:
    spec = job.spec
    assert spec.rollback_of is not None  # parse_spec guarantees it for a rollback
    kept = read_manifest(job.root_dir / str(spec.rollback_of))["packages"]
    names = [r.name for r in spec.restore]
    rows = job.installed("installed-before", names)
    job.result["before"] = {r.name: job.state(find_installed(rows, r.name, r.arch), r.arch) for r in spec.restore}
    files, remove = [], []
    for entry in spec.restore:
        current = job.result["before"][entry.name]["version"]
        if current == entry.version:
            continue  # already there: a retried rollback, or the deploy never changed it
        if entry.version is None:
            remove.append(entry.name)
            continue
        record = kept.get(entry.name) or {}
        if (record.get("version"), record.get("arch")) != (entry.version, entry.arch) or not record.get("file"):
            raise StepFailed(
                f"step manifest failed: job {spec.rollback_of} kept no file of {entry.name} {entry.version}"
                f" ({entry.arch}); nothing was changed"
            )
        path = str(record["file"])
        if not Path(path).is_file():
            raise StepFailed(f"step manifest failed: the kept file {path} is gone; nothing was changed")
        files.append(path)
    job.result["kept_files"] = sorted(files)
    if files or remove:
        simulation = job.run("simulate", rollback_argv(spec.manager, files, remove, simulate=True), spec.step_timeout)
        try:
            changes = parse_apt_simulation(simulation.stdout)
        except JobSpecError as exc:
            raise StepFailed(f"step simulate failed: {exc}") from None
        wanted = {r.name: r.version for r in spec.restore}
        stray = [
            f"{c.name} {c.old or '-'} -> {c.new or 'removed'}"
            for c in changes
            if c.name.partition(":")[0] not in wanted or wanted[c.name.partition(":")[0]] != c.new
        ]
        if stray:
            raise StepFailed(f"step simulate failed: the rollback would also change {', '.join(stray)[:500]}")
        job.hook("snapshot-before", spec.snapshot.before)
        job.scripts("pre", spec.pre_scripts)
        try:
            job.run("rollback", rollback_argv(spec.manager, files, remove), spec.step_timeout, extra_env=INSTALL_ENV)
        except StepFailed:
            with contextlib.suppress(StepFailed):
                _record_after(job, names)
            raise
    _record_after(job, names)
    wrong = [
        f"host reports {r.name} at {job.result['after'][r.name]['version'] or 'not installed'},"
        f" asked for {r.version or 'not installed'}"
        for r in spec.restore
        if job.result["after"][r.name]["version"] != r.version
    ]
    if wrong:
        raise StepFailed("step verify failed: " + "; ".join(wrong))
    job.finish_changes()


@contextlib.contextmanager
def _exclusive(root_dir: Path) -> Iterator[None]:
    """One job at a time on this host (the server leases jobs, this guards against a second agent)."""
    with (root_dir / ".lock").open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StepFailed(f"step lock failed: another job is running ({root_dir / '.lock'})") from None
        yield


def run_job(
    spec: JobSpec | Mapping[str, Any],
    *,
    root_dir: str | os.PathLike[str] = DEFAULT_ROOT_DIR,
    runner: Runner = run_subprocess,
    clock: Callable[[], float] = time.time,
    http: Callable[[str, float], int] = http_status,
    apt_archives: str | os.PathLike[str] = APT_ARCHIVES,
    reboot_required_file: str | os.PathLike[str] = REBOOT_REQUIRED_FILE,
) -> dict[str, Any]:
    """Run one job and return its result document; never raises for a failed job (status "failed").

    `spec` is a JobSpec or the decoded spec document (validated here; an invalid one fails at the
    step "validate" without running anything). `runner`, `clock` and `http` run commands, read the
    time and GET health-check URLs; tests replace them.
    """
    if not isinstance(spec, JobSpec):
        document = dict(spec)
        try:
            spec = parse_spec(document)
        except JobSpecError as exc:
            job_id, kind = document.get("job_id"), document.get("kind")
            return {
                **empty_result(job_id if isinstance(job_id, int) else None, kind if kind in KINDS else None),
                "error": f"step validate failed: {exc}",
            }
    job = _Job(spec, Path(root_dir), runner, clock, http, Path(apt_archives), Path(reboot_required_file))
    try:
        if spec.manager != "apt":
            raise StepFailed(f"step validate failed: this agent runs jobs on apt hosts only, not {spec.manager}")
        job.root_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        with _exclusive(job.root_dir):
            if spec.kind == "deploy":
                job.job_dir.mkdir(mode=0o700, exist_ok=True)
                _deploy(job)
            else:
                _rollback(job)
        job.result["status"] = "succeeded"
    except StepFailed as exc:
        job.result["error"] = str(exc)
    except Exception as exc:  # the one place a job's unexpected failure becomes its result
        job.result["error"] = f"internal error: {type(exc).__name__}: {exc}"[:1000]
    return job.result


# -- command line --------------------------------------------------------------------------------


def _print(document: Mapping[str, Any]) -> None:
    # UTF-8 whatever the locale says (LC_ALL=C over SSH); one JSON document, then a newline.
    sys.stdout.buffer.write((json.dumps(document, ensure_ascii=False) + "\n").encode("utf-8"))
    sys.stdout.flush()


def simulate(request: Mapping[str, Any], runner: Runner = run_subprocess) -> dict[str, Any]:
    """A plan preview's simulated run on this host: what the package manager would change to install the
    targets (dependencies included), changing nothing. `request` is {"plan_host", "manager", "targets"};
    the answer {"plan_host", "changes": [{"name", "arch", "from", "to", "action"}], "error"}."""
    plan_host = request.get("plan_host")
    answer: dict[str, Any] = {"plan_host": plan_host, "changes": [], "error": ""}
    try:
        manager = _str(request.get("manager"), "manager", MANAGERS)
        targets = []
        for index, item in enumerate(_list(request.get("targets"), "targets", 1000)):
            item = _object(item, f"targets[{index}]", {"name", "version"})
            targets.append(
                (
                    validate_name(manager, _str(item["name"], f"targets[{index}].name")),
                    validate_version(manager, _str(item["version"], f"targets[{index}].version")),
                )
            )
        if manager != "apt":
            raise JobSpecError(f"this agent simulates apt only, not {manager}")
        outcome = runner(simulate_argv(manager, targets), timeout=600, env=_base_env())
        if outcome.timed_out or outcome.exit_code != 0:
            raise JobSpecError(f"apt-get -s exited with {outcome.exit_code}: {_last_line(outcome.stderr)}")
        answer["changes"] = [
            {"name": c.name, "arch": c.arch, "from": c.old, "to": c.new, "action": c.action}
            for c in parse_apt_simulation(outcome.stdout)
        ]
    except JobSpecError as exc:
        answer["error"] = str(exc)[:2000]
    return answer


def main(argv: list[str] | None = None) -> int:
    """Read one job spec (JSON) on stdin, run it, print the result; 0 when it ran (even failed), 2 for a bad spec."""
    parser = argparse.ArgumentParser(prog="python3 -m patchday.agent.jobs", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--root-dir", default=DEFAULT_ROOT_DIR, help=f"where jobs keep files (default {DEFAULT_ROOT_DIR})"
    )
    args = parser.parse_args(argv)
    raw = sys.stdin.buffer.read(MAX_SPEC_BYTES + 1)
    try:
        if len(raw) > MAX_SPEC_BYTES:
            raise JobSpecError(f"the job spec is larger than {MAX_SPEC_BYTES} bytes")
        try:
            document = json.loads(raw.decode("utf-8"))
        except ValueError as exc:
            raise JobSpecError(f"the job spec is not JSON: {exc}") from None
        spec = parse_spec(document)
    except JobSpecError as exc:
        _print({"status": "invalid", "error": str(exc)})
        return 2
    _print(run_job(spec, root_dir=args.root_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
