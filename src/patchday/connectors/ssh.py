"""Agentless collection over SSH: pinned host keys, bounded concurrency, the collectors run on the host.

This module talks to hosts and nothing else: it takes plain `ConnectSpec` values and returns
`RemoteResult` values, and never touches the database (services.py loads targets, saves pins and
stores documents). Every remote command is an argv list joined with shlex.quote; no data is ever
interpolated into a command unquoted.

How one host is collected:
1. connect (asyncssh), checking the host key in `_PinningClient.validate_host_public_key`: on first
   contact any key is accepted and reported, later only the pinned one (a different key is refused
   before authentication and reported as a mismatch);
2. find the host's python3 (`command -v python3`); when it is there, send a small program on its
   standard input (`python3 -I -`, optionally under `sudo -n`) that carries the collectors as a zip,
   unpacks it into a fresh temporary directory, runs `patchday.collectors` and removes the directory;
3. without python3 (or with one older than 3.9), run plain commands (`dpkg-query`, `rpm`, `cat
   /etc/os-release`, `uname`) and build a reduced document of the same shape with the collectors'
   own parsers.
"""

from __future__ import annotations

import asyncio
import base64
import io
import ipaddress
import json
import re
import shlex
import zipfile
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

import asyncssh

import patchday
from patchday.collectors import CollectorError
from patchday.collectors.apk import INSTALLED_PATH as APK_INSTALLED_PATH
from patchday.collectors.apk import parse_installed as parse_apk_installed
from patchday.collectors.dpkg import parse_status
from patchday.collectors.os_release import parse_os_release
from patchday.collectors.rpm import QUERY_FORMAT as RPM_QUERY_FORMAT
from patchday.collectors.rpm import parse_query as parse_rpm_query
from patchday.core.errors import InvalidInput

DEFAULT_PORT: Final = 22
MIN_PYTHON: Final = (3, 9)  # what the collectors support
MAX_OUTPUT: Final = 64 * 1024 * 1024  # a document larger than this is not an inventory
MAX_STDERR: Final = 64 * 1024
COMMAND_NOT_FOUND: Final = 127  # POSIX shells' exit status for a command that is not there
SUDO: Final = ("sudo", "-n", "--")  # -n: never prompt; fail at once when a password would be needed
REDUCED_MESSAGE: Final = "python3 not found: reduced inventory"

# user@host[:port]. Hosts are DNS names, IPv4 or bracketed IPv6 addresses; nothing may start with '-'
# (no `-oProxyCommand=...` reaching an ssh command line), and no whitespace or shell metacharacter passes.
_USER = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}\Z")
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)\Z")
_PORT = re.compile(r"[0-9]{1,5}\Z")
MAX_TARGET_LENGTH: Final = 300

# Host key algorithms in the order we ask for them on first contact (strongest, most common first).
_PREFERRED_HOST_KEY_ALGS: Final = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "rsa-sha2-512",
    "rsa-sha2-256",
)


# -- targets -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TargetAddress:
    """Where to log in: `address` is a DNS name or an IP address (IPv6 without brackets)."""

    username: str
    address: str
    port: int = DEFAULT_PORT


def parse_target(text: str) -> TargetAddress:
    """`user@host[:port]` (IPv6 as `user@[::1]:22`); raises InvalidInput(field="target") naming the problem."""
    if not isinstance(text, str) or not text:
        raise InvalidInput("target is empty; expected user@host[:port]", field="target")
    if len(text) > MAX_TARGET_LENGTH:
        raise InvalidInput(f"target is longer than {MAX_TARGET_LENGTH} characters", field="target")
    if not text.isascii() or not text.isprintable() or any(c.isspace() for c in text):
        raise InvalidInput(f"target {text!r} contains whitespace or control characters", field="target")
    user, at, rest = text.partition("@")
    if not at or "@" in rest:
        raise InvalidInput(f"target {text!r} is not user@host[:port]", field="target")
    if not _USER.match(user):
        raise InvalidInput(
            f"user name {user!r} is not a login name (letters, digits, '_', '.', '-'; not starting with '-')",
            field="target",
        )
    port_text = ""
    if rest.startswith("["):
        host, bracket, tail = rest[1:].partition("]")
        if not bracket or (tail and not tail.startswith(":")):
            raise InvalidInput(f"target {text!r}: an IPv6 address goes in brackets, [::1]:22", field="target")
        port_text = tail[1:] if tail else ""
        if tail == ":":
            raise InvalidInput(f"target {text!r} has an empty port", field="target")
        try:
            parsed = ipaddress.IPv6Address(host)
            if parsed.scope_id is not None:  # `%eth0` would carry an arbitrary interface name along
                raise ValueError("scoped address")
            address = str(parsed)
        except ValueError:
            raise InvalidInput(f"target {text!r}: {host!r} is not an IPv6 address", field="target") from None
    else:
        host, colon, port_text = rest.partition(":")
        if colon and not port_text:
            raise InvalidInput(f"target {text!r} has an empty port", field="target")
        address = _host_name_or_ipv4(host, text)
    port = DEFAULT_PORT
    if port_text:
        if not _PORT.match(port_text) or not 1 <= int(port_text) <= 65535:
            raise InvalidInput(f"port {port_text!r} is not a number from 1 to 65535", field="target")
        port = int(port_text)
    return TargetAddress(user, address, port)


def _host_name_or_ipv4(host: str, text: str) -> str:
    if not host:
        raise InvalidInput(f"target {text!r} has no host", field="target")
    try:
        return str(ipaddress.IPv4Address(host))
    except ValueError:
        pass
    name = host[:-1] if host.endswith(".") else host
    labels = name.split(".")
    if len(name) > 253 or not all(_LABEL.match(label) for label in labels) or labels[-1].isdigit():
        raise InvalidInput(
            f"host {host!r} is not a DNS name or an IP address (letters, digits, '-' and '.' only)", field="target"
        )
    return name.lower()


# -- commands ------------------------------------------------------------------------------------


def remote_command(argv: Sequence[str]) -> str:
    """The command line that makes the remote shell run exactly `argv` (each word quoted with shlex.quote)."""
    if not argv:
        raise ValueError("an empty command")
    for word in argv:
        if "\x00" in word:
            raise ValueError(f"a command word contains NUL: {word!r}")
    return shlex.join(argv)


def collector_argv(python: str, use_sudo: bool) -> list[str]:
    """argv that runs the program on standard input with the host's python3 in isolated mode (-I)."""
    return [*(SUDO if use_sudo else ()), python, "-I", "-"]


FIND_PYTHON: Final = ("command", "-v", "python3")
PYTHON_VERSION_CHECK: Final = (
    "import sys; print('%d.%d' % sys.version_info[:2]); sys.exit(0 if sys.version_info >= (3, 9) else 3)"
)

# Reduced inventory when there is no usable python3: each entry is (name, argv). LC_ALL=C keeps output unlocalised.
DPKG_QUERY_FORMAT: Final = (
    "Package: ${Package}\\nStatus: ${Status}\\nVersion: ${Version}\\nArchitecture: ${Architecture}\\n"
    "Source: ${source:Package} (${source:Version})\\n\\n"
)
FALLBACK_COMMANDS: Final[tuple[tuple[str, tuple[str, ...]], ...]] = (
    ("dpkg", ("env", "LC_ALL=C", "dpkg-query", "-W", "-f", DPKG_QUERY_FORMAT)),
    ("rpm", ("env", "LC_ALL=C", "rpm", "-qa", "--queryformat", RPM_QUERY_FORMAT)),
    ("apk", ("cat", "/" + APK_INSTALLED_PATH)),
    ("os-release", ("cat", "/etc/os-release")),
    ("os-release-usr", ("cat", "/usr/lib/os-release")),
    ("kernel", ("uname", "-r")),
    ("architecture", ("uname", "-m")),
    ("hostname", ("uname", "-n")),
    ("machine-id", ("cat", "/etc/machine-id")),
)


# -- the collectors, shipped as one zip ------------------------------------------------------------


@lru_cache(maxsize=1)
def collectors_zip() -> bytes:
    """patchday/__init__.py (minimal) and patchday/collectors/**.py as a zip, built in memory once."""
    return _bundle(("collectors",), "patchday collectors.")


def _bundle(packages: Sequence[str], title: str) -> bytes:
    """A minimal patchday/__init__.py and every module of `packages` (under patchday/) as one zip.

    Fixed timestamps make the bytes depend on the sources only.
    """
    root = Path(__file__).resolve().parents[1]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        _add(bundle, "patchday/__init__.py", f'"""{title}"""\n__version__ = "{patchday.__version__}"\n')
        for package in packages:
            for path in sorted((root / package).rglob("*.py")):
                relative = path.relative_to(root / package).as_posix()
                _add(bundle, f"patchday/{package}/{relative}", path.read_text("utf-8"))
    return buffer.getvalue()


def _add(bundle: zipfile.ZipFile, name: str, text: str) -> None:
    info = zipfile.ZipInfo(name, date_time=(2000, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    bundle.writestr(info, text)


# Runs on the host (Python 3.9+, standard library only): unpack the zip into a private temporary
# directory, run the collectors, remove the directory whatever happens.
_BOOTSTRAP: Final = """\
import base64, os, runpy, shutil, sys, tempfile
if sys.version_info < (3, 9):
    sys.stderr.write("python3 %d.%d is older than 3.9" % sys.version_info[:2])
    sys.exit(3)
workdir = tempfile.mkdtemp(prefix="patchday-ssh-")
try:
    bundle = os.path.join(workdir, "collectors.zip")
    with open(bundle, "wb") as handle:
        handle.write(base64.b64decode(PAYLOAD))
    sys.path.insert(0, bundle)
    sys.argv = ["patchday.collectors"] + ARGS
    runpy.run_module("patchday.collectors", run_name="__main__", alter_sys=True)
finally:
    shutil.rmtree(workdir, ignore_errors=True)
"""


def collector_program(changelogs: bool = False) -> str:
    """The Python program sent to the host's `python3 -I -`; it prints the inventory document."""
    payload = base64.b64encode(collectors_zip()).decode("ascii")
    args = ["--changelogs"] if changelogs else []
    return f"PAYLOAD = {payload!r}\nARGS = {args!r}\n{_BOOTSTRAP}"


# -- the reduced document -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CommandOutput:
    """What a remote command left: exit status (None when killed by a signal), output and errors."""

    exit_status: int | None
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_status == 0

    @property
    def missing(self) -> bool:
        return self.exit_status == COMMAND_NOT_FOUND


def reduced_document(
    outputs: Mapping[str, CommandOutput], now: datetime, reason: str = REDUCED_MESSAGE
) -> dict[str, Any]:
    """An inventory document (format 1) from the FALLBACK_COMMANDS' outputs, parsed by the collectors' parsers.

    Facts a command could not give are empty, each with a line in `errors`; `reason` is the first error.
    """
    errors: list[dict[str, str]] = [{"collector": "ssh", "message": reason}]
    packages: list[dict[str, str]] = []

    def failed(collector: str, output: CommandOutput) -> None:
        detail = output.stderr.strip().splitlines()[0][:300] if output.stderr.strip() else ""
        errors.append({"collector": collector, "message": f"exit status {output.exit_status}: {detail}".strip()})

    found_manager = False
    dpkg = outputs.get("dpkg")
    if dpkg is not None and not dpkg.missing:
        found_manager = True
        try:
            if not dpkg.ok:
                raise CollectorError(f"dpkg-query exited with {dpkg.exit_status}: {dpkg.stderr.strip()[:300]}")
            for d in parse_status(dpkg.stdout, "dpkg-query -W output"):
                packages.append(_package("dpkg", d.name, d.version, d.architecture, d.source, d.source_version))
        except CollectorError as exc:
            errors.append({"collector": "dpkg", "message": str(exc)})
    rpm = outputs.get("rpm")
    if rpm is not None and not rpm.missing:
        found_manager = True
        try:
            if not rpm.ok:
                raise CollectorError(f"rpm -qa exited with {rpm.exit_status}: {rpm.stderr.strip()[:300]}")
            for r in parse_rpm_query(rpm.stdout):
                packages.append(_package("rpm", r.name, r.evr, r.architecture, _srpm_name(r.source_rpm), ""))
        except CollectorError as exc:
            errors.append({"collector": "rpm", "message": str(exc)})
    apk = outputs.get("apk")
    if apk is not None and apk.ok:
        found_manager = True
        try:
            for a in parse_apk_installed(apk.stdout, "/" + APK_INSTALLED_PATH):
                packages.append(_package("apk", a.name, a.version, a.architecture, a.origin, a.version))
        except CollectorError as exc:
            errors.append({"collector": "apk", "message": str(exc)})
    if not found_manager:
        errors.append({"collector": "packages", "message": "no dpkg-query, rpm or apk database found"})

    os_info = {"id": "", "version_id": "", "version_codename": "", "pretty_name": "", "id_like": ""}
    release = next((o for o in (outputs.get("os-release"), outputs.get("os-release-usr")) if o and o.ok), None)
    if release is None:
        errors.append({"collector": "os-release", "message": "neither /etc/os-release nor /usr/lib/os-release"})
    else:
        try:
            values = parse_os_release(release.stdout)
            os_info = {key: values.get(key.upper(), "") for key in os_info}
        except CollectorError as exc:
            errors.append({"collector": "os-release", "message": str(exc)})

    def line(name: str) -> str:
        output = outputs.get(name)
        if output is None:
            return ""
        if not output.ok:
            failed(name, output)
            return ""
        return output.stdout.strip()

    return {
        "format": 1,
        "collector": f"patchday-ssh-reduced {patchday.__version__}",
        "collected_at": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine_id": line("machine-id"),
        "hostname": line("hostname"),
        "fqdn": "",
        "addresses": [],
        "os": os_info,
        "architecture": line("architecture"),
        "kernel": {"running": line("kernel"), "installed": []},
        "boot_time": None,
        "uptime_seconds": None,
        "hardware": dict.fromkeys(
            ("system_vendor", "product_name", "product_serial", "bios_vendor", "bios_version", "bios_date"), ""
        ),
        "packages": packages,
        "python_packages": [],
        "pending_updates": [],
        "reboot": {"required": None, "reasons": [], "packages": []},
        "errors": errors,
    }


def _package(manager: str, name: str, version: str, arch: str, source: str, source_version: str) -> dict[str, str]:
    return {
        "manager": manager,
        "name": name,
        "version": version,
        "arch": arch,
        "source": source,
        "source_version": source_version,
    }


def _srpm_name(source_rpm: str) -> str:
    """`bash-5.1.8-6.el9.src.rpm` -> `bash` (name-version-release.src.rpm; names may contain '-')."""
    stem = source_rpm.removesuffix(".rpm").removesuffix(".src").removesuffix(".nosrc")
    parts = stem.rsplit("-", 2)
    return parts[0] if len(parts) == 3 else ""


# -- host keys -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HostKey:
    """A server's public host key: its OpenSSH line (`ssh-ed25519 AAAA...`) and SHA256 fingerprint."""

    line: str
    fingerprint: str

    @classmethod
    def of(cls, key: asyncssh.SSHKey) -> HostKey:
        line = key.export_public_key("openssh").decode("ascii").strip()
        return cls(" ".join(line.split()[:2]), key.get_fingerprint("sha256"))

    @classmethod
    def parse(cls, line: str) -> HostKey:
        """From an OpenSSH public key line; raises InvalidInput(field="host_key") when it is not one."""
        try:
            return cls.of(asyncssh.import_public_key(line))
        except (asyncssh.KeyImportError, ValueError, UnicodeError):
            raise InvalidInput(f"not an OpenSSH public key line: {line[:80]!r}", field="host_key") from None

    @property
    def algorithms(self) -> list[str]:
        """The signature algorithms this key can prove itself with, in asyncssh's order."""
        key = asyncssh.import_public_key(self.line)
        return [alg.decode("ascii") for alg in key.sig_algorithms]


def host_key_algorithms(pinned: HostKey | None) -> list[str]:
    """Host key algorithms to offer: the pinned key's first, so a host that still has it presents it.

    Certificate algorithms are left out: patchday trusts no CA, only pinned keys.
    """
    from asyncssh.public_key import get_default_public_key_algs

    supported = [alg.decode("ascii") for alg in get_default_public_key_algs()]
    preferred = [alg for alg in _PREFERRED_HOST_KEY_ALGS if alg in supported]
    first = pinned.algorithms if pinned is not None else []
    ordered: list[str] = []
    for alg in [*first, *preferred, *supported]:
        if alg not in ordered:
            ordered.append(alg)
    return ordered


class _PinningClient(asyncssh.SSHClient):
    """Accepts the pinned host key only; with no pin (first contact) accepts any key and reports it.

    asyncssh then checks that the server holds the private key before the connection goes on.
    """

    def __init__(self, pinned: HostKey | None) -> None:
        self.pinned = pinned
        self.presented: HostKey | None = None

    def validate_host_public_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        self.presented = HostKey.of(key)
        return self.pinned is None or self.presented.line == self.pinned.line

    @property
    def mismatch(self) -> bool:
        return self.pinned is not None and self.presented is not None and self.presented.line != self.pinned.line


# -- collecting ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds allowed per host: `connect` covers TCP, the SSH handshake and authentication;
    `command` each remote command; `total` the whole collection of one host."""

    connect: float = 15.0
    command: float = 300.0
    total: float = 600.0


@dataclass(frozen=True, slots=True)
class ConnectSpec:
    """Everything needed to collect one host. `key_file` None means: authenticate with the SSH agent."""

    target_id: int
    label: str
    address: str
    port: int
    username: str
    key_file: str | None
    use_sudo: bool
    pinned: HostKey | None
    changelogs: bool = False


@dataclass(frozen=True, slots=True)
class RemoteResult:
    """What collecting one host gave.

    `document` is the parsed JSON inventory (None on failure, `error` says why). `presented` is the host
    key the server proved it holds (or, on a mismatch, the key it showed); `authenticated` says the
    connection got past authentication, which is when a first-contact key may be pinned.
    """

    target_id: int
    document: dict[str, Any] | None = None
    error: str | None = None
    presented: HostKey | None = None
    mismatch: bool = False
    authenticated: bool = False
    reduced: bool = False
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))


class _RemoteFailure(Exception):
    """One host's collection failed; the message says what, in patchday's terms."""


async def collect_many(
    specs: Sequence[ConnectSpec], *, concurrency: int = 8, timeouts: Timeouts | None = None
) -> list[RemoteResult]:
    """Collect every spec, at most `concurrency` hosts at once; one host's failure never affects another.

    Results come back in the order of `specs`.
    """
    if concurrency < 1:
        raise InvalidInput("concurrency must be at least 1", field="concurrency")
    limits = timeouts or Timeouts()
    gate = asyncio.Semaphore(concurrency)

    async def one(spec: ConnectSpec) -> RemoteResult:
        async with gate:
            return await collect_host(spec, limits)

    return list(await asyncio.gather(*(one(spec) for spec in specs)))


async def collect_host(spec: ConnectSpec, timeouts: Timeouts) -> RemoteResult:
    """Collect one host (see the module docstring); never raises for anything the host or network does."""

    async def collect(conn: Any) -> RemoteResult:
        document, reduced = await _collect_over(conn, spec, timeouts)
        return RemoteResult(spec.target_id, document=document, authenticated=True, reduced=reduced)

    return await _connected(spec, timeouts, collect, "collecting")


async def _connected(
    spec: ConnectSpec, timeouts: Timeouts, work: Callable[[Any], Awaitable[RemoteResult]], doing: str
) -> RemoteResult:
    """Connect with the pinned key, run `work` on the connection; every failure becomes a RemoteResult."""
    started = datetime.now(UTC)
    client = _PinningClient(spec.pinned)
    authenticated = False
    try:
        async with asyncio.timeout(timeouts.total):
            try:
                conn = await asyncssh.connect(
                    spec.address,
                    spec.port,
                    username=spec.username,
                    client_factory=lambda: client,
                    known_hosts=([], [], []),  # trust nothing by default: every key goes to the client
                    server_host_key_algs=host_key_algorithms(spec.pinned),
                    client_keys=[spec.key_file] if spec.key_file else (),
                    agent_path=None if spec.key_file else (),
                    config=None,  # no ~/.ssh/config: no ProxyCommand or other surprises from the environment
                    password_auth=False,
                    kbdint_auth=False,
                    connect_timeout=timeouts.connect,
                    login_timeout=timeouts.connect,
                )
            except asyncssh.HostKeyNotVerifiable as exc:
                if client.pinned is not None and client.presented is not None and client.mismatch:
                    return RemoteResult(
                        spec.target_id,
                        error=(
                            f"host key mismatch on {spec.label}: pinned {client.pinned.fingerprint}, "
                            f"presented {client.presented.fingerprint}; connection refused"
                        ),
                        presented=client.presented,
                        mismatch=True,
                        started_at=started,
                    )
                raise _RemoteFailure(f"host key of {spec.label} not verifiable: {exc.reason}") from exc
            authenticated = True
            async with conn:
                outcome = await work(conn)
    except _RemoteFailure as exc:
        return _failed(spec, str(exc), client, authenticated, started)
    except TimeoutError:
        stage = doing if authenticated else "connecting to"
        return _failed(spec, f"timed out {stage} {spec.label}", client, authenticated, started)
    except asyncssh.PermissionDenied as exc:
        return _failed(
            spec, f"authentication as {spec.username} refused by {spec.label}: {exc.reason}", client, False, started
        )
    except asyncssh.KeyImportError as exc:
        return _failed(spec, f"cannot read the key file {spec.key_file}: {exc}", client, False, started)
    except asyncssh.DisconnectError as exc:
        return _failed(spec, f"{spec.label} closed the connection: {exc.reason}", client, authenticated, started)
    except asyncssh.Error as exc:
        return _failed(spec, f"SSH error with {spec.label}: {exc}", client, authenticated, started)
    except OSError as exc:
        return _failed(spec, f"cannot connect to {spec.label}: {exc.strerror or exc}", client, False, started)
    return replace(outcome, presented=client.presented, started_at=started)


# -- deployment jobs -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JobRun:
    """What running one job over SSH gave: the executor's result (None when it could not run or answer,
    `error` says why) and the host's inventory collected right after it (None when that failed)."""

    result: dict[str, Any] | None
    document: dict[str, Any] | None
    error: str | None


@lru_cache(maxsize=1)
def executor_zip() -> bytes:
    """The collectors and the agent's job runner (patchday.agent.*) as one zip, built in memory once."""
    return _bundle(("collectors", "agent"), "patchday executor.")


# Runs on the host: like the collectors' bootstrap, with the job spec on the runner's standard input.
_JOB_BOOTSTRAP: Final = """\
import base64, io, os, runpy, shutil, sys, tempfile
if sys.version_info < (3, 9):
    sys.stderr.write("python3 %d.%d is older than 3.9" % sys.version_info[:2])
    sys.exit(3)
workdir = tempfile.mkdtemp(prefix="patchday-job-")
try:
    bundle = os.path.join(workdir, "executor.zip")
    with open(bundle, "wb") as handle:
        handle.write(base64.b64decode(PAYLOAD))
    sys.path.insert(0, bundle)
    sys.argv = ["patchday.agent.jobs"]
    sys.stdin = io.TextIOWrapper(io.BytesIO(SPEC.encode("utf-8")), encoding="utf-8")
    runpy.run_module("patchday.agent.jobs", run_name="__main__", alter_sys=True)
finally:
    shutil.rmtree(workdir, ignore_errors=True)
"""


def job_program(job_spec: Mapping[str, Any]) -> str:
    """The Python program sent to the host's `python3 -I -`: it runs the job and prints the result JSON."""
    payload = base64.b64encode(executor_zip()).decode("ascii")
    return f"PAYLOAD = {payload!r}\nSPEC = {json.dumps(dict(job_spec))!r}\n{_JOB_BOOTSTRAP}"


async def execute_job(spec: ConnectSpec, job_spec: Mapping[str, Any], timeouts: Timeouts) -> JobRun:
    """Run one job on the host, then collect its inventory; never raises for anything the host does.

    Refuses a host whose key is not pinned yet: changing a host needs to know it is that host.
    """
    if spec.pinned is None:
        return JobRun(None, None, f"{spec.label} has no pinned host key yet: collect it once before deploying")
    holder: dict[str, Any] = {}

    async def run(conn: Any) -> RemoteResult:
        found = await _run(conn, FIND_PYTHON, timeouts.command)
        python = found.stdout.strip().splitlines()[0] if found.ok and found.stdout.strip() else ""
        if not python.startswith("/"):
            raise _RemoteFailure(f"no python3 on {spec.label}: jobs need python3 3.9 or newer")
        output = await _run(conn, collector_argv(python, spec.use_sudo), timeouts.total, stdin=job_program(job_spec))
        try:
            holder["result"] = json.loads(output.stdout)
        except ValueError:
            detail = output.stderr.strip()[-500:] or "no output"
            raise _RemoteFailure(
                f"the job runner on {spec.label} gave no result (exit {output.exit_status}): {detail}"
            ) from None
        document, _ = await _collect_over(conn, spec, timeouts)
        return RemoteResult(spec.target_id, document=document, authenticated=True)

    outcome = await _connected(spec, timeouts, run, "running the job on")
    result = holder.get("result")
    return JobRun(result if isinstance(result, dict) else None, outcome.document, outcome.error)


def _failed(
    spec: ConnectSpec, message: str, client: _PinningClient, authenticated: bool, started: datetime
) -> RemoteResult:
    return RemoteResult(
        spec.target_id, error=message, presented=client.presented, authenticated=authenticated, started_at=started
    )


async def _collect_over(conn: Any, spec: ConnectSpec, timeouts: Timeouts) -> tuple[dict[str, Any], bool]:
    """The document from an authenticated connection, and whether it is the reduced one."""
    found = await _run(conn, FIND_PYTHON, timeouts.command)
    python = found.stdout.strip().splitlines()[0] if found.ok and found.stdout.strip() else ""
    reason = REDUCED_MESSAGE
    if python.startswith("/"):
        check = await _run(conn, [python, "-I", "-c", PYTHON_VERSION_CHECK], timeouts.command)
        if check.ok:
            output = await _run(
                conn,
                collector_argv(python, spec.use_sudo),
                timeouts.command,
                stdin=collector_program(spec.changelogs),
            )
            if not output.ok:
                detail = output.stderr.strip()[-500:] or "no error output"
                raise _RemoteFailure(
                    f"the collectors failed on {spec.label} (exit status {output.exit_status}): {detail}"
                )
            return _parse_document(output.stdout, spec.label), False
        reason = f"python3 {check.stdout.strip() or '(unknown version)'} is older than 3.9: reduced inventory"
    outputs = {name: await _run(conn, argv, timeouts.command) for name, argv in FALLBACK_COMMANDS}
    return reduced_document(outputs, datetime.now(UTC), reason), True


def _parse_document(stdout: str, label: str) -> dict[str, Any]:
    try:
        document = json.loads(stdout)
    except ValueError as exc:
        raise _RemoteFailure(f"the collectors' output from {label} is not JSON: {exc}") from None
    if not isinstance(document, dict) or document.get("format") != 1:
        raise _RemoteFailure(f"the collectors' output from {label} is not an inventory document (format 1)")
    return document


async def _run(conn: Any, argv: Sequence[str], timeout: float, *, stdin: str | None = None) -> CommandOutput:
    """Run argv on the host through its login shell, each word quoted; bounded in time and output size."""
    command = remote_command(argv)
    try:
        async with asyncio.timeout(timeout):
            process = await conn.create_process(command, encoding=None)
            async with process:
                if stdin is not None:
                    process.stdin.write(stdin.encode("utf-8"))
                process.stdin.write_eof()
                stdout, stderr = await asyncio.gather(
                    _read_bounded(process.stdout, MAX_OUTPUT, argv[0]), _read_bounded(process.stderr, MAX_STDERR)
                )
                await process.wait_closed()
                status = process.exit_status  # None when the command was killed by a signal
    except TimeoutError:
        raise _RemoteFailure(f"{argv[0]} did not finish within {timeout:g} s") from None
    try:
        text = stdout.decode("utf-8")
    except UnicodeDecodeError:
        raise _RemoteFailure(f"the output of {argv[0]} is not UTF-8") from None
    return CommandOutput(status, text, stderr.decode("utf-8", "replace"))


async def _read_bounded(stream: Any, limit: int, name: str | None = None) -> bytes:
    """Everything until EOF; past `limit` bytes: fail when `name` is given, else keep the first `limit`."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await stream.read(65536)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            if name is not None:
                raise _RemoteFailure(f"the output of {name} is larger than {limit // (1024 * 1024)} MiB")
            continue
        chunks.append(chunk)
