"""A lab fleet of real Debian 12 hosts on this machine, behind on security updates on purpose.

Each host is a bookworm minbase (openssh-server, python3, ca-certificates) bootstrapped from the
`bookworm` point-release suite only, with bookworm, bookworm-updates and bookworm-security configured,
so `apt list --upgradable` inside shows pending security updates. A host is an overlayfs clone of one
cached base, running in its own network, PID, mount, UTS and IPC namespaces under a reaping init, with
its own hostname, machine-id, SSH host keys and fixed MAC on the bridge `pdtlab0` (10.78.0.0/24). Hosts
have no default route and no DNS: apt inside a host reaches the allow-listed Debian mirrors only through
a caching proxy bound to the lab gateway.

Needs root. Not a security boundary (same kernel, no user namespace): isolation for trusted tests only.
See docs/development.md, "Lab fleet", for use, timings and the pitfalls this code works around.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import ipaddress
import json
import logging
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass
from pathlib import Path
from typing import Final, TypeVar

log = logging.getLogger("patchday.lab")
T = TypeVar("T")

RECIPE_VERSION: Final = 1  # bump when the base recipe below changes: it is part of the cache key
SUITE: Final = "bookworm"
BASE_PACKAGES: Final = ("openssh-server", "python3", "ca-certificates")
SUBNET: Final = ipaddress.IPv4Network("10.78.0.0/24")  # the reference lab uses 10.77.0.0/24; both can run
GATEWAY: Final = str(SUBNET.network_address + 1)
BRIDGE: Final = "pdtlab0"
NETNS_PREFIX: Final = "pdt-"  # netns pdt-hN; the root-side veth of host hN has the same name
HOST_NAME = re.compile(r"h([1-9][0-9]?)")
PROXY_PORT: Final = 3142
MAX_HOSTS: Final = 20
BLACKHOLE_METRIC: Final = 4242
GUEST_INIT: Final = "/usr/local/sbin/pdt-lab-init"
HERE: Final = Path(__file__).resolve().parent
SYSTEM_PYTHON: Final = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable
GUEST_PATH: Final = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_LAB_DIR: Final = Path("/tmp/patchday-lab")  # noqa: S108 (root-only tool; overridable)
DEFAULT_CACHE_DIR: Final = Path("/var/cache/patchday-lab")

# command on this machine -> the Debian package that provides it (./run test installs them all)
REQUIRED_TOOLS: Final = {
    "mmdebstrap": "mmdebstrap",
    "eatmydata": "eatmydata",
    "dpkg-architecture": "dpkg-dev",  # mmdebstrap's eatmydata hook calls it
    "zstd": "zstd",
    "ip": "iproute2",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "nsenter": "util-linux",
    "unshare": "util-linux",
    "setsid": "util-linux",
    "pivot_root": "util-linux",
    "sysctl": "procps",
    "mount": "mount",
    "umount": "mount",
    "gpg": "gpg",  # mmdebstrap infers the keyring for signed-by with it
}


class LabError(Exception):
    """The lab could not be built, started, reached or torn down; the message names the step."""


@dataclass(frozen=True, slots=True)
class LabHost:
    """One running lab host: SSH on `address:port` as root with the lab key; `root_dir` is its mounted root."""

    name: str
    address: str
    port: int = 22
    _: KW_ONLY
    netns: str
    root_dir: Path


@dataclass(frozen=True, slots=True)
class SshTarget:
    """How to log in to one host: the lab's root key, and that host's pinned host keys (known_hosts lines)."""

    name: str
    address: str
    port: int
    user: str
    key_path: Path
    known_hosts: str
    known_hosts_file: Path

    def argv(self, *command: str, known_hosts_file: Path | None = None) -> list[str]:
        """An `ssh` argv running `command` (quoted for the remote shell) on this host, strict host key checking."""
        kh = known_hosts_file or self.known_hosts_file
        options = {
            "IdentitiesOnly": "yes",
            "UserKnownHostsFile": str(kh),
            "GlobalKnownHostsFile": "/dev/null",
            "StrictHostKeyChecking": "yes",
            "BatchMode": "yes",
            "ConnectTimeout": "5",
            "LogLevel": "ERROR",
        }
        argv = ["ssh", "-F", "none", "-i", str(self.key_path), "-p", str(self.port), "-l", self.user]
        for key, value in options.items():
            argv += ["-o", f"{key}={value}"]
        argv.append(self.address)
        if command:
            argv += ["--", shlex.join(command)]
        return argv


@dataclass(frozen=True, slots=True)
class Mirrors:
    """The Debian archive and security archive URIs this machine uses (plain http, for the lab proxy)."""

    main: str
    security: str

    def hosts(self) -> tuple[str, ...]:
        return tuple(sorted({str(_url_host(self.main)), str(_url_host(self.security))}))


def _url_host(uri: str) -> str:
    match = re.match(r"http://([^/:]+)", uri)
    if not match:
        raise LabError(f"the lab proxy speaks plain http only; cannot use mirror {uri!r}")
    return match.group(1)


def _deb822_stanzas(text: str) -> Iterator[dict[str, str]]:
    stanza: dict[str, str] = {}
    key = ""
    for line in [*text.splitlines(), ""]:
        if line.startswith("#"):
            continue
        if not line.strip():
            if stanza:
                yield stanza
            stanza, key = {}, ""
        elif line[0].isspace() and key:
            stanza[key] += " " + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            key = key.strip().lower()
            stanza[key] = value.strip()


def detect_mirrors(apt_dir: Path = Path("/etc/apt"), main: str | None = None, security: str | None = None) -> Mirrors:
    """The machine's mirrors for SUITE and SUITE-security (deb822 sources first, then sources.list).

    `main` and `security` override what is found. Raises LabError without a mirror or with an https one.
    """
    found: dict[str, str] = {}
    for sources in sorted((apt_dir / "sources.list.d").glob("*.sources")):
        for stanza in _deb822_stanzas(sources.read_text()):
            if "deb" not in stanza.get("types", "").split() or stanza.get("enabled", "yes").lower() == "no":
                continue
            uris = stanza.get("uris", "").split()
            for suite in stanza.get("suites", "").split():
                if uris:
                    found.setdefault(suite, uris[0])
    legacy = apt_dir / "sources.list"
    if legacy.exists():
        for line in legacy.read_text().splitlines():
            fields = re.sub(r"\[[^]]*\]", "", line).split()
            if len(fields) >= 3 and fields[0] == "deb":
                found.setdefault(fields[2], fields[1])
    main = main or found.get(SUITE)
    security = security or found.get(f"{SUITE}-security")
    if not main or not security:
        raise LabError(
            f"no {SUITE} and {SUITE}-security mirrors in {apt_dir}; "
            "set PATCHDAY_LAB_MIRROR and PATCHDAY_LAB_SECURITY_MIRROR"
        )
    mirrors = Mirrors(main.rstrip("/"), security.rstrip("/"))
    mirrors.hosts()  # refuses https mirrors
    return mirrors


def archive_date_settings() -> tuple[str, ...]:
    """This machine's Acquire::Check-Valid-Until / Check-Date lines, copied into the hosts' apt config."""
    dump = _run(["apt-config", "dump"]).stdout
    return tuple(line for line in dump.splitlines() if re.match(r"Acquire::Check-(Valid-Until|Date) ", line))


def _run(
    argv: Sequence[str | Path],
    *,
    check: bool = True,
    timeout: float = 120,
    input: str | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    args = [str(a) for a in argv]
    try:
        result = subprocess.run(
            args,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=dict(env) if env is not None else None,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LabError(f"`{shlex.join(args)}` failed: {exc}") from exc
    if check and result.returncode != 0:
        raise LabError(f"`{shlex.join(args)}` exited {result.returncode}: {result.stderr.strip()[-2000:]}")
    return result


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    """Write a file inside a host root, replacing a symlink rather than following it out of the root."""
    if path.is_symlink():
        path.unlink()
    path.write_text(text)
    path.chmod(mode)


def _mounts() -> list[str]:
    """Mount points on this machine (octal escapes of /proc/mounts decoded)."""
    points = []
    for line in Path("/proc/mounts").read_text().splitlines():
        field = line.split()[1]
        points.append(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field))
    return points


def _is_mounted(path: Path) -> bool:
    return str(path) in _mounts()


def _pid_alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def missing_tools() -> list[str]:
    """Debian packages to install before the lab can run (empty when everything is there)."""
    return sorted({package for tool, package in REQUIRED_TOOLS.items() if shutil.which(tool) is None})


def namespaces_unavailable() -> str | None:
    """Why this machine cannot run lab hosts at all (not root, no namespaces, no overlayfs), or None."""
    if os.geteuid() != 0:
        return "the lab fleet needs root (network, PID and mount namespaces, overlayfs mounts)"
    probe = ["unshare", "--net", "--mount", "--pid", "--uts", "--ipc", "--fork", "--propagation", "private", "true"]
    try:
        result = subprocess.run(probe, capture_output=True, text=True, timeout=30, check=False)
    except FileNotFoundError:
        return None  # a missing tool is a setup error, reported by Lab.up(), not a reason to skip
    if result.returncode != 0:
        return f"namespaces are not available here: {result.stderr.strip()}"
    if "overlay" not in Path("/proc/filesystems").read_text():
        subprocess.run(["modprobe", "overlay"], capture_output=True, check=False)
        if "overlay" not in Path("/proc/filesystems").read_text():
            return "overlayfs is not available in this kernel"
    return None


@dataclass(frozen=True, slots=True)
class LabSettings:
    """Where the lab keeps state and cache, and optional mirror overrides: the only reader of PATCHDAY_LAB_*."""

    lab_dir: Path = DEFAULT_LAB_DIR
    cache_dir: Path = DEFAULT_CACHE_DIR  # keep between CI runs: the base tarball and the apt cache
    mirror: str | None = None
    security_mirror: str | None = None

    @classmethod
    def from_environment(cls) -> LabSettings:
        env = os.environ
        return cls(
            lab_dir=Path(env.get("PATCHDAY_LAB_DIR") or DEFAULT_LAB_DIR),
            cache_dir=Path(env.get("PATCHDAY_LAB_CACHE") or DEFAULT_CACHE_DIR),
            mirror=env.get("PATCHDAY_LAB_MIRROR") or None,
            security_mirror=env.get("PATCHDAY_LAB_SECURITY_MIRROR") or None,
        )


class Lab:
    """The lab on this machine: state under `lab_dir`, the base tarball and apt cache under `cache_dir`.

    Every method is idempotent and may be called from another process (the CLI, a second pytest run):
    the state lives in the file system and the kernel, not in this object. Methods raise LabError.
    """

    def __init__(self, settings: LabSettings | None = None) -> None:
        self.settings = settings or LabSettings.from_environment()
        self.lab_dir = self.settings.lab_dir
        self.cache_dir = self.settings.cache_dir
        self.base_dir = self.lab_dir / "base"
        self.hosts_dir = self.lab_dir / "hosts"
        self.ssh_dir = self.lab_dir / "ssh"
        self.run_dir = self.lab_dir / "run"
        self.timings: dict[str, float] = {}

    # ------------------------------------------------------------------ paths
    @property
    def key_path(self) -> Path:
        """The private key that logs in as root on every host."""
        return self.ssh_dir / "id_ed25519"

    @property
    def ssh_config(self) -> Path:
        """An ssh_config with `Host h1..hN` entries: `ssh -F <this> h1`."""
        return self.ssh_dir / "config"

    @property
    def known_hosts(self) -> Path:
        """Every running host's pinned host keys, under its name and its address."""
        return self.ssh_dir / "known_hosts"

    @property
    def proxy_log(self) -> Path:
        return self.run_dir / "proxy.log"

    @property
    def proxy_url(self) -> str:
        return f"http://{GATEWAY}:{PROXY_PORT}"

    def mirrors(self) -> Mirrors:
        return detect_mirrors(main=self.settings.mirror, security=self.settings.security_mirror)

    # ------------------------------------------------------------------ hosts
    @staticmethod
    def address_of(name: str) -> str:
        return str(SUBNET.network_address + 10 + _host_number(name))

    @staticmethod
    def mac_of(name: str) -> str:
        """Stable per host, like a real NIC across reboots (a new MAC each start left stale ARP entries)."""
        octets = [int(o) for o in Lab.address_of(name).split(".")]
        return "02:00:" + ":".join(f"{o:02x}" for o in octets)

    def host(self, name: str) -> LabHost:
        return LabHost(
            name,
            self.address_of(name),
            netns=NETNS_PREFIX + name,
            root_dir=self.hosts_dir / name / "root",
        )

    def hosts(self) -> list[LabHost]:
        """Hosts that have state in this lab (running or not), h1 first."""
        if not self.hosts_dir.is_dir():
            return []
        names = [d.name for d in self.hosts_dir.iterdir() if HOST_NAME.fullmatch(d.name)]
        return [self.host(name) for name in sorted(names, key=_host_number)]

    def init_pid(self, host: LabHost | str) -> int | None:
        """The host's init as a PID of this machine: the process in the host's netns whose innermost PID is 1."""
        netns = NETNS_PREFIX + _name(host)
        if netns not in self._netns_list():
            return None
        pids = _run(["ip", "netns", "pids", netns], check=False).stdout.split()
        for pid in pids:
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            nspid = next((line.split()[1:] for line in status.splitlines() if line.startswith("NSpid:")), [])
            if len(nspid) >= 2 and nspid[-1] == "1":
                return int(pid)
        return None

    def ssh_target(self, host: LabHost | str) -> SshTarget:
        lab_host = host if isinstance(host, LabHost) else self.host(host)
        return SshTarget(
            name=lab_host.name,
            address=lab_host.address,
            port=lab_host.port,
            user="root",
            key_path=self.key_path,
            known_hosts=self.known_hosts_text(lab_host),
            known_hosts_file=self.known_hosts,
        )

    def known_hosts_text(self, host: LabHost | str) -> str:
        """known_hosts lines pinning this host's keys under its name and its address."""
        lab_host = host if isinstance(host, LabHost) else self.host(host)
        patterns = f"{lab_host.name},{lab_host.address}"
        if lab_host.port != 22:
            patterns = f"[{lab_host.name}]:{lab_host.port},[{lab_host.address}]:{lab_host.port}"
        lines = []
        for public in sorted((lab_host.root_dir / "etc" / "ssh").glob("ssh_host_*_key.pub")):
            key_type, key = public.read_text().split()[:2]
            lines.append(f"{patterns} {key_type} {key}\n")
        return "".join(lines)

    # ------------------------------------------------------------------ up / down
    def up(self, n: int = 3, extra_packages: Mapping[str, Sequence[str]] | None = None) -> list[LabHost]:
        """Converge to hosts h1..hN running: build or unpack the base, start what is missing, stop hosts above N.

        `extra_packages` maps a host name to packages installed at its first boot from the point-release
        suite (`apt-get install -t bookworm`), so they are behind as well. Hosts already running are kept.
        """
        if not 1 <= n <= MAX_HOSTS:
            raise LabError(f"the lab runs 1 to {MAX_HOSTS} hosts, not {n}")
        extras = {name: tuple(packages) for name, packages in (extra_packages or {}).items()}
        unknown = set(extras) - {f"h{i}" for i in range(1, n + 1)}
        if unknown:
            raise LabError(f"extra packages for hosts that are not in h1..h{n}: {sorted(unknown)}")
        self._check_machine()
        started = time.monotonic()
        with self._locked():
            self.ensure_base()
            self._ensure_key()
            self._ensure_bridge()
            self._ensure_proxy()
            self._mount_hosts_tmpfs()
            for host in self.hosts():
                if _host_number(host.name) > n:
                    self._stop_host(host)
                    self._remove_host_state(host)
            hosts = [self._start_host(self.host(f"h{i}"), extras.get(f"h{i}", ())) for i in range(1, n + 1)]
            self._write_client_files()
        self._timed("up", started)
        log.info("lab up: %d hosts in %.1f s; ssh -F %s h1", n, self.timings["up"], self.ssh_config)
        return hosts

    def down(self, purge: bool = False) -> None:
        """Stop every host and the proxy, delete namespaces, links, routes, mounts and host state.

        Keeps the base directory, the cached tarball, the apt cache and the lab key (so the next `up` is
        fast) unless `purge`. Raises LabError if anything of the lab is still there afterwards.
        """
        started = time.monotonic()
        with self._locked():
            names = {host.name for host in self.hosts()}
            names |= {ns.removeprefix(NETNS_PREFIX) for ns in self._netns_list() if _is_lab_netns(ns)}
            for name in sorted(names, key=_host_number):
                self._stop_host(self.host(name))
            for link in self._lab_links():
                if link != BRIDGE:
                    _run(["ip", "link", "del", link], check=False)
            for point in sorted(self._lab_mounts(), reverse=True):  # overlays first, then the hosts tmpfs
                if _run(["umount", point], check=False).returncode != 0:
                    _run(["umount", "-l", point], check=False)
            self._stop_proxy()
            _run(["ip", "route", "del", "blackhole", str(SUBNET), "metric", str(BLACKHOLE_METRIC)], check=False)
            _run(["ip", "link", "del", BRIDGE], check=False)
            if self._lab_mounts():
                raise LabError(f"lab mounts remain, not deleting host state: {self._lab_mounts()}")
            shutil.rmtree(self.hosts_dir, ignore_errors=True)
            for stale in (self.ssh_config, self.known_hosts, self.lab_dir / "inventory.json"):
                stale.unlink(missing_ok=True)
            if purge:
                for path in (self.base_dir, self.lab_dir / "base.tmp", self.ssh_dir, self.run_dir):
                    shutil.rmtree(path, ignore_errors=True)
                (self.lab_dir / "base.key").unlink(missing_ok=True)
                for tarball in self.cache_dir.glob(f"base-{SUITE}-*.tar.zst"):
                    tarball.unlink()
                shutil.rmtree(self.cache_dir / "apt-proxy", ignore_errors=True)
        left = self.leftovers()
        if left:
            raise LabError(f"lab down left things behind: {left}")
        self._timed("down", started)
        log.info("lab down in %.1f s", self.timings["down"])

    def reset(self, host: LabHost | str) -> LabHost:
        """Throw away everything the host changed and boot it fresh (new identity, unpatched, same extras)."""
        lab_host = self.host(_name(host))
        with self._locked():
            extras = self._wanted_extras(lab_host)
            self._stop_host(lab_host)
            self._remove_host_state(lab_host)
            fresh = self._start_host(lab_host, extras)
            self._write_client_files()
        return fresh

    def restart(self, host: LabHost | str) -> LabHost:
        """Stop and start the host keeping its changes, like a reboot."""
        lab_host = self.host(_name(host))
        with self._locked():
            self._stop_host(lab_host)
            return self._start_host(lab_host, self._wanted_extras(lab_host))

    def exec(
        self,
        host: LabHost | str,
        argv: Sequence[str],
        *,
        check: bool = True,
        timeout: float = 600,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run argv inside the host (all its namespaces and its root, like `docker exec`), as root.

        The environment is a clean one (PATH, HOME, LANG=C.UTF-8, DEBIAN_FRONTEND) plus `env`.
        """
        return _run(self.enter_argv(host, argv), check=check, timeout=timeout, input=input, env=guest_env(env))

    def enter_argv(self, host: LabHost | str, argv: Sequence[str]) -> list[str]:
        """The nsenter argv that runs argv inside the host; run it with `guest_env()` as its environment."""
        pid = self.init_pid(host)
        if pid is None:
            raise LabError(f"{_name(host)} is not running")
        # util-linux 2.38: a bare -w (not --wd=/) or the command starts with no cwd ("getcwd() failed").
        enter = ["nsenter", "--target", str(pid), "--mount", "--uts", "--ipc", "--net", "--pid", "--root", "-w"]
        return [*enter, *argv]

    def leftovers(self) -> list[str]:
        """What of the lab is still on this machine besides the base and caches (empty after `down`)."""
        left = [f"netns {ns}" for ns in self._netns_list() if _is_lab_netns(ns)]
        left += [f"link {link}" for link in self._lab_links()]
        left += [f"mount {point}" for point in self._lab_mounts()]
        routes = _run(["ip", "-o", "route", "show", str(SUBNET)], check=False).stdout.strip()
        left += [f"route {line}" for line in routes.splitlines()]
        if self._proxy_pid() is not None:
            left.append(f"proxy pid {self._proxy_pid()}")
        return left

    def status(self) -> list[tuple[LabHost, int | None]]:
        """Each host with state, and its init PID (None when it is stopped)."""
        return [(host, self.init_pid(host)) for host in self.hosts()]

    # ------------------------------------------------------------------ base
    def base_key(self, mirrors: Mirrors, date_settings: Sequence[str]) -> str:
        """Names a base build: changes whenever an input of the recipe does."""
        recipe = [
            str(RECIPE_VERSION),
            SUITE,
            ",".join(BASE_PACKAGES),
            mirrors.main,
            mirrors.security,
            *date_settings,
            hashlib.sha256((HERE / "guest_init.py").read_bytes()).hexdigest(),
        ]
        return hashlib.sha256("\n".join(recipe).encode()).hexdigest()[:12]

    def ensure_base(self) -> Path:
        """The customised base root, unpacked from the cached tarball or built with mmdebstrap and cached."""
        mirrors = self.mirrors()
        dates = archive_date_settings()
        key = self.base_key(mirrors, dates)
        marker = self.lab_dir / "base.key"
        if self.base_dir.is_dir() and marker.exists() and marker.read_text().strip() == key:
            return self.base_dir
        # overlayfs is undefined when a lower dir changes under mounted overlays
        if any(_is_mounted(host.root_dir) for host in self.hosts()):
            raise LabError(f"base {self.base_dir} is out of date but hosts are mounted on it; run down first")
        started = time.monotonic()
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        tarball = self.cache_dir / f"base-{SUITE}-{key}.tar.zst"
        building = self.lab_dir / "base.tmp"
        shutil.rmtree(building, ignore_errors=True)
        building.mkdir(parents=True)
        tar_options = ["--numeric-owner", "--xattrs", "--xattrs-include=*", "--zstd"]
        if tarball.exists():
            log.info("unpacking the cached base %s", tarball)
            _run(["tar", "-xpf", tarball, "-C", building, *tar_options], timeout=600)
            self._timed("base_unpack", started)
        else:
            log.info("bootstrapping %s minbase from %s (about 30-60 s)", SUITE, mirrors.main)
            self._bootstrap(building, mirrors, dates)
            self._customise(building, mirrors, dates, key)
            self._timed("base_bootstrap", started)
            packing = tarball.with_name(tarball.name + ".tmp")
            _run(["tar", "-cpf", packing, "-C", building, *tar_options, "."], timeout=600)
            packing.replace(tarball)
            for superseded in self.cache_dir.glob(f"base-{SUITE}-*.tar.zst"):
                if superseded != tarball:  # an older recipe or mirror: the cache would only grow
                    superseded.unlink()
            self._timed("base_build", started)
        marker.unlink(missing_ok=True)
        if self.base_dir.exists():
            old = self.lab_dir / "base.old"
            self.base_dir.rename(old)
            shutil.rmtree(old)
        building.rename(self.base_dir)
        marker.write_text(f"{key}\n")
        log.info("base ready in %.1f s", time.monotonic() - started)
        return self.base_dir

    def _bootstrap(self, target: Path, mirrors: Mirrors, dates: Sequence[str]) -> None:
        hooks = Path("/usr/share/mmdebstrap/hooks")
        argv: list[str | Path] = [
            "mmdebstrap",
            "--quiet",
            "--mode=root",
            "--variant=minbase",
            "--format=directory",
            f"--include={','.join(BASE_PACKAGES)}",
            # eatmydata and unsafe-io: dpkg's fsyncs dominate a bootstrap (about 32 s instead of 52 s here).
            f"--hook-dir={hooks / 'eatmydata'}",
            "--dpkgopt=force-unsafe-io",
            # merged-usr set up by the hook, not by the usrmerge package (which pulls perl into the minbase).
            f"--hook-dir={hooks / 'merged-usr'}",
            *(f"--aptopt={line}" for line in dates),
            SUITE,
            target,
            f"deb {mirrors.main} {SUITE} main",
        ]
        result = _run(argv, check=False, timeout=1800)
        (self.lab_dir / "bootstrap.log").write_text(result.stdout + result.stderr)
        if result.returncode != 0:
            raise LabError(f"mmdebstrap failed ({result.returncode}); see {self.lab_dir / 'bootstrap.log'}")

    def _customise(self, root: Path, mirrors: Mirrors, dates: Sequence[str], key: str) -> None:
        (root / "etc/apt/sources.list").unlink(missing_ok=True)
        sources = (
            f"Types: deb\nURIs: {mirrors.main}\nSuites: {SUITE} {SUITE}-updates\nComponents: main\n"
            "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
            f"Types: deb\nURIs: {mirrors.security}\nSuites: {SUITE}-security\nComponents: main\n"
            "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
        )
        _write(root / "etc/apt/sources.list.d/debian.sources", sources)
        # mmdebstrap leaves its --aptopt and --dpkgopt behind; hosts should fsync like real ones.
        (root / "etc/apt/apt.conf.d/99mmdebstrap").unlink(missing_ok=True)
        (root / "etc/dpkg/dpkg.cfg.d/99mmdebstrap").unlink(missing_ok=True)
        if dates:
            # This machine tolerates its mirror's Release dates (a frozen mirror is "expired"); so must hosts.
            _write(root / "etc/apt/apt.conf.d/99patchday-lab-archive-dates", "".join(f"{d}\n" for d in dates))
        # Clones must not share an identity: host keys and machine-id are made per host at first boot.
        for host_key in (root / "etc/ssh").glob("ssh_host_*"):
            host_key.unlink()
        _write(root / "etc/machine-id", "", 0o444)
        (root / "var/lib/dbus/machine-id").unlink(missing_ok=True)
        (root / "etc/ssh/sshd_config.d").mkdir(exist_ok=True)
        _write(
            root / "etc/ssh/sshd_config.d/patchday-lab.conf",
            "# patchday lab: key-only root login\nPermitRootLogin prohibit-password\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUseDNS no\n",
        )
        for index in (root / "var/lib/apt/lists").glob("*"):
            if index.is_file() and index.name != "lock":
                index.unlink()
        for deb in (root / "var/cache/apt/archives").glob("*.deb"):
            deb.unlink()
        for cache in (root / "var/cache/apt").glob("*.bin"):
            cache.unlink()
        # No systemd: a reaping PID 1 that runs /etc/rc2.d (an openssh upgrade restarting sshd must not
        # kill the host). invoke-rc.d blocks restarts without /sbin/init and skips them when `runlevel` fails.
        init = root / GUEST_INIT.lstrip("/")
        init.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(HERE / "guest_init.py", init)
        init.chmod(0o755)
        (root / "usr/sbin/init").unlink(missing_ok=True)
        (root / "usr/sbin/init").symlink_to("../local/sbin/pdt-lab-init")
        _write(
            root / "usr/sbin/runlevel",
            '#!/bin/sh\n# patchday lab host: PID 1 is pdt-lab-init, which runs /etc/rc2.d\necho "N 2"\n',
            0o755,
        )
        _write(
            root / "etc/patchday-lab-base",
            f"suite={SUITE}\nmirror={mirrors.main}\nsecurity={mirrors.security}\nrecipe={RECIPE_VERSION}\n"
            f"key={key}\nbuilt={time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n",
        )

    # ------------------------------------------------------------------ machine
    def _check_machine(self) -> None:
        reason = namespaces_unavailable()
        if reason:
            raise LabError(reason)
        missing = missing_tools()
        if missing:
            raise LabError(f"missing host tools; run `apt-get install {' '.join(missing)}` (or ./run test)")

    @contextlib.contextmanager
    def session(self, wait: float = 1800) -> Iterator[None]:
        """Hold the lab for one user (a pytest session, a CLI command) for the duration of the block.

        The lab's names and addresses are machine-wide, so a second user would tear down the first one's
        hosts: it waits up to `wait` seconds instead, then raises LabError naming the holder's PID.
        """
        self.lab_dir.mkdir(parents=True, exist_ok=True)
        with (self.lab_dir / "session.lock").open("a+") as lock:
            deadline = time.monotonic() + wait
            while True:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    lock.seek(0)
                    holder = lock.read().strip() or "?"
                    if time.monotonic() >= deadline:
                        raise LabError(f"the lab in {self.lab_dir} is in use by pid {holder}") from None
                    log.warning("waiting for the lab: pid %s is using it", holder)
                    time.sleep(min(10.0, max(0.1, deadline - time.monotonic())))
            lock.truncate(0)
            lock.write(f"{os.getpid()}\n")
            lock.flush()
            yield

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One lab operation at a time on this lab dir (a CLI and a pytest run may share it)."""
        self.lab_dir.mkdir(parents=True, exist_ok=True)
        with (self.lab_dir / "lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _timed(self, step: str, started: float) -> None:
        self.timings[step] = round(time.monotonic() - started, 2)

    def _ensure_key(self) -> None:
        self.ssh_dir.mkdir(parents=True, exist_ok=True)
        self.ssh_dir.chmod(0o700)
        if not self.key_path.exists():
            _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "patchday-lab", "-f", self.key_path])

    @staticmethod
    def _netns_list() -> list[str]:
        return [line.split()[0] for line in _run(["ip", "netns", "list"]).stdout.splitlines() if line.strip()]

    @staticmethod
    def _lab_links() -> list[str]:
        links = []
        for line in _run(["ip", "-o", "link", "show"]).stdout.splitlines():
            name = line.split(":")[1].strip().split("@")[0]
            if name == BRIDGE or _is_lab_netns(name):
                links.append(name)
        return links

    def _lab_mounts(self) -> list[str]:
        return [point for point in _mounts() if point.startswith(f"{self.hosts_dir}/") or point == str(self.hosts_dir)]

    def _ensure_bridge(self) -> None:
        prefix = str(SUBNET.network_address).rsplit(".", 1)[0] + "."
        for line in _run(["ip", "-o", "-4", "addr", "show"]).stdout.splitlines():
            if f" inet {prefix}" in line and line.split()[1] != BRIDGE:
                raise LabError(f"{SUBNET} is already used on this machine ({line.split()[1]}); the lab needs it")
        for line in _run(["ip", "-o", "route", "show"]).stdout.splitlines():
            if line.startswith(prefix) and f" dev {BRIDGE} " not in f"{line} ":
                raise LabError(f"{SUBNET} is already routed on this machine ({line}); the lab needs it")
        if BRIDGE not in self._lab_links():
            _run(["ip", "link", "add", BRIDGE, "type", "bridge"])
        _sysctl(f"net/ipv6/conf/{BRIDGE}/disable_ipv6", "1")
        # Never forward what hosts send: the gateway only answers (the proxy), it does not route.
        _sysctl(f"net/ipv4/conf/{BRIDGE}/forwarding", "0")
        _run(["ip", "addr", "replace", f"{GATEWAY}/{SUBNET.prefixlen}", "dev", BRIDGE])
        _run(["ip", "link", "set", BRIDGE, "up"])
        # Safety net: if the bridge goes away, lab addresses hit a blackhole, not this machine's default route.
        _run(["ip", "route", "replace", "blackhole", str(SUBNET), "metric", str(BLACKHOLE_METRIC)])

    def _mount_hosts_tmpfs(self) -> None:
        # Host upper dirs live in RAM: deleting a few hundred MB on this disk (ext4, discard) took 10-30 s
        # and stalled the writes after it; a tmpfs goes away at once with its umount.
        self.hosts_dir.mkdir(parents=True, exist_ok=True)
        if not _is_mounted(self.hosts_dir):
            _run(["mount", "-t", "tmpfs", "-o", "mode=0755", "patchday-lab-hosts", self.hosts_dir])

    # ------------------------------------------------------------------ proxy
    def _proxy_pid(self) -> int | None:
        try:
            pid = int((self.run_dir / "proxy.pid").read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return None
        if any(arg.endswith(b"apt_proxy.py") for arg in cmdline) and GATEWAY.encode() in cmdline:
            return pid
        return None

    def _ensure_proxy(self) -> None:
        if self._proxy_pid() is not None:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._prune_apt_cache()
        pidfile = self.run_dir / "proxy.pid"
        pidfile.unlink(missing_ok=True)
        argv = [SYSTEM_PYTHON, str(HERE / "apt_proxy.py"), "--listen", GATEWAY, "--port", str(PROXY_PORT)]
        argv += ["--cache", str(self.cache_dir / "apt-proxy"), "--pidfile", str(pidfile)]
        for mirror_host in self.mirrors().hosts():
            argv += ["--allow", mirror_host]
        with self.proxy_log.open("a") as out:
            # setsid --fork: the proxy outlives this process (the CLI) and gets no terminal signals.
            subprocess.run(["setsid", "--fork", *argv], stdin=subprocess.DEVNULL, stdout=out, stderr=out, check=True)
        deadline = time.monotonic() + 10
        while self._proxy_pid() is None:
            if time.monotonic() > deadline:
                raise LabError(f"the apt proxy did not start; see {self.proxy_log}")
            time.sleep(0.05)

    def _prune_apt_cache(self, max_age_days: int = 30) -> None:
        """Drop cached files unused for a month (the proxy touches a file on each hit): indexes come and go."""
        cutoff = time.time() - max_age_days * 86400
        for cached in (self.cache_dir / "apt-proxy").rglob("*"):
            if cached.is_file() and cached.stat().st_mtime < cutoff:
                cached.unlink()

    def _stop_proxy(self) -> None:
        pid = self._proxy_pid()
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            if not _wait_gone(pid, 5):
                os.kill(pid, signal.SIGKILL)
                _wait_gone(pid, 5)
        (self.run_dir / "proxy.pid").unlink(missing_ok=True)

    # ------------------------------------------------------------------ one host
    def _wanted_extras(self, host: LabHost) -> tuple[str, ...]:
        wanted = self.hosts_dir / host.name / "extra-packages.json"
        return tuple(json.loads(wanted.read_text())) if wanted.exists() else ()

    def _provision(self, host: LabHost) -> None:
        """First boot only: hostname, hosts, no DNS, a fresh machine-id and SSH host keys, the proxy, the key."""
        root = host.root_dir
        _write(root / "etc/hostname", f"{host.name}\n")
        lines = [f"127.0.0.1\tlocalhost\n127.0.1.1\t{host.name}\n", f"{GATEWAY}\tgateway\n"]
        lines += [f"{self.address_of(f'h{i}')}\th{i}\n" for i in range(1, MAX_HOSTS + 1)]
        _write(root / "etc/hosts", "".join(lines))
        _write(root / "etc/resolv.conf", f"# patchday lab host: no DNS; apt goes through the proxy on {GATEWAY}\n")
        _write(root / "etc/machine-id", f"{secrets.token_hex(16)}\n", 0o444)
        _write(root / "etc/apt/apt.conf.d/00patchday-lab-proxy", f'Acquire::http::Proxy "{self.proxy_url}";\n')
        _run(["ssh-keygen", "-A", "-f", root])  # writes <root>/etc/ssh/ssh_host_{rsa,ecdsa,ed25519}_key
        ssh = root / "root/.ssh"
        ssh.mkdir(mode=0o700, exist_ok=True)
        _write(ssh / "authorized_keys", self.key_path.with_suffix(".pub").read_text(), 0o600)

    def _start_host(self, host: LabHost, extras: Sequence[str]) -> LabHost:
        state = self.hosts_dir / host.name
        if self.init_pid(host) is not None:
            return host
        started = time.monotonic()
        for sub in ("upper", "work", "root"):
            (state / sub).mkdir(parents=True, exist_ok=True)
        if not _is_mounted(host.root_dir):
            layers = f"lowerdir={self.base_dir},upperdir={state / 'upper'},workdir={state / 'work'}"
            _run(["mount", "-t", "overlay", f"patchday-lab-{host.name}", "-o", layers, host.root_dir])
        if not (state / "provisioned").exists():
            self._provision(host)
            (state / "extra-packages.json").write_text(json.dumps(list(extras)))
            (state / "provisioned").touch()
        self._plug(host)
        console = state / "console.log"
        boot = ["ip", "netns", "exec", host.netns, "unshare", "--mount", "--uts", "--ipc", "--pid", "--fork"]
        boot += ["--propagation", "private", SYSTEM_PYTHON, str(HERE / "hostboot.py"), str(host.root_dir), host.name]
        with console.open("a") as out:
            # setsid --fork: the host outlives this process and Ctrl-C in a terminal does not reach it.
            subprocess.run(["setsid", "--fork", *boot], stdin=subprocess.DEVNULL, stdout=out, stderr=out, check=True)
        pid = _poll(lambda: self.init_pid(host), 10)
        if pid is None:
            raise LabError(f"{host.name}: init did not start; see {console}")
        self._check_route(host)
        if not _poll(lambda: _port_open(host.address, host.port) or not _pid_alive(pid), 30) or not _pid_alive(pid):
            raise LabError(f"{host.name}: no sshd on {host.address}:{host.port}; see {console}")
        if extras and not (state / "extras-installed").exists():
            log.info("%s: installing %s from %s (unpatched)", host.name, " ".join(extras), SUITE)
            self.exec(host, ["apt-get", "update", "-qq"])
            self.exec(host, ["apt-get", "install", "-y", "-qq", "-t", SUITE, *extras])
            (state / "extras-installed").touch()
        self._timed(f"start_{host.name}", started)
        log.info("%s up at %s (netns %s, init pid %d)", host.name, host.address, host.netns, pid)
        return host

    def _plug(self, host: LabHost) -> None:
        """The host's netns with a veth into the bridge: fixed MAC, its /24 address, no default route, no IPv6."""
        if host.netns not in self._netns_list():
            _run(["ip", "netns", "add", host.netns])
        if host.netns not in self._lab_links():
            _run(["ip", "link", "add", host.netns, "type", "veth", "peer", "name", "eth0", "netns", host.netns])
        _run(["ip", "-n", host.netns, "link", "set", "eth0", "address", self.mac_of(host.name)])
        _sysctl(f"net/ipv6/conf/{host.netns}/disable_ipv6", "1")
        _run(["ip", "link", "set", host.netns, "master", BRIDGE, "up"])
        no_ipv6 = ["net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"]
        _run(["ip", "netns", "exec", host.netns, "sysctl", "-qw", *no_ipv6])
        _run(["ip", "-n", host.netns, "link", "set", "lo", "up"])
        _run(["ip", "-n", host.netns, "addr", "replace", f"{host.address}/{SUBNET.prefixlen}", "dev", "eth0"])
        _run(["ip", "-n", host.netns, "link", "set", "eth0", "up"])
        # Forget a neighbour entry from an earlier life of this address (a stale one cost 25-50 s per restart).
        _run(["ip", "neigh", "flush", "to", host.address, "dev", BRIDGE], check=False)

    @staticmethod
    def _check_route(host: LabHost) -> None:
        route = _run(["ip", "-o", "route", "get", host.address]).stdout
        if f" dev {BRIDGE} " not in route:
            raise LabError(f"the route to {host.address} does not go via {BRIDGE} ({route.strip()}); refusing it")

    def _stop_host(self, host: LabHost) -> None:
        pid = self.init_pid(host)
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            if not _wait_gone(pid, 10):
                log.warning("%s: init %d ignored SIGTERM for 10 s; SIGKILL", host.name, pid)
                os.kill(pid, signal.SIGKILL)  # PID 1 dying takes its whole PID namespace with it
                _wait_gone(pid, 5)
        if host.netns in self._netns_list():
            # Anything still in the host's netns was started by the lab for this host.
            for _ in range(20):
                pids = [int(p) for p in _run(["ip", "netns", "pids", host.netns], check=False).stdout.split()]
                if not pids:
                    break
                for leftover in pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(leftover, signal.SIGKILL)
                time.sleep(0.1)
            _run(["ip", "netns", "del", host.netns])
        _run(["ip", "link", "del", host.netns], check=False)
        if _is_mounted(host.root_dir) and _run(["umount", host.root_dir], check=False).returncode != 0:
            _run(["umount", "-l", host.root_dir])
        log.info("%s stopped", host.name)

    def _remove_host_state(self, host: LabHost) -> None:
        if _is_mounted(host.root_dir):
            raise LabError(f"{host.root_dir} is still mounted; not deleting {host.name}'s state")
        shutil.rmtree(self.hosts_dir / host.name, ignore_errors=True)

    def _write_client_files(self) -> None:
        running = [host for host in self.hosts() if self.init_pid(host) is not None]
        config = "".join(f"Host {h.name}\n  HostName {h.address}\n  Port {h.port}\n" for h in running)
        config += (
            f"Host h*\n  User root\n  IdentityFile {self.key_path}\n  IdentitiesOnly yes\n"
            f"  UserKnownHostsFile {self.known_hosts}\n  GlobalKnownHostsFile /dev/null\n"
            "  StrictHostKeyChecking yes\n  BatchMode yes\n  ConnectTimeout 5\n"
        )
        _write(self.ssh_config, config, 0o600)
        _write(self.known_hosts, "".join(self.known_hosts_text(h) for h in running))
        inventory = {
            "hosts": [
                {
                    "name": h.name,
                    "address": h.address,
                    "port": h.port,
                    "user": "root",
                    "identity_file": str(self.key_path),
                    "known_hosts": self.known_hosts_text(h),
                    "netns": h.netns,
                    "root_dir": str(h.root_dir),
                }
                for h in running
            ],
            "ssh_config": str(self.ssh_config),
            "known_hosts_file": str(self.known_hosts),
            "apt_proxy": self.proxy_url,
        }
        _write(self.lab_dir / "inventory.json", json.dumps(inventory, indent=2) + "\n")


def guest_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A clean environment for commands inside a host: nothing of this machine's leaks in."""
    env = {"PATH": GUEST_PATH, "HOME": "/root", "LANG": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive"}
    env.update(extra or {})
    return env


def _name(host: LabHost | str) -> str:
    return host.name if isinstance(host, LabHost) else host


def _host_number(name: str) -> int:
    match = HOST_NAME.fullmatch(name)
    if not match or int(match.group(1)) > MAX_HOSTS:
        raise LabError(f"lab hosts are h1..h{MAX_HOSTS}, not {name!r}")
    return int(match.group(1))


def _is_lab_netns(name: str) -> bool:
    return name.startswith(NETNS_PREFIX) and HOST_NAME.fullmatch(name.removeprefix(NETNS_PREFIX)) is not None


def _sysctl(key: str, value: str) -> None:
    Path("/proc/sys", key).write_text(value)


def _port_open(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=1):
            return True
    except OSError:
        return False


def _poll(probe: Callable[[], T | None], seconds: float) -> T | None:
    deadline = time.monotonic() + seconds
    while True:
        value = probe()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def _wait_gone(pid: int, seconds: float) -> bool:
    return _poll(lambda: not _pid_alive(pid), seconds) or False
