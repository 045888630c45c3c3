"""The inventory document (format 1, docs/inventory.md) of a host, assembled from every collector, and its digest."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any, TypeVar

from patchday.collectors import CollectorError, system
from patchday.collectors import apk as apk_collector
from patchday.collectors import apt as apt_collector
from patchday.collectors import changelog as changelog_collector
from patchday.collectors import dnf as dnf_collector
from patchday.collectors import dpkg as dpkg_collector
from patchday.collectors import rpm as rpm_collector
from patchday.collectors.host import Host, Runner, run_command
from patchday.collectors.os_release import PATHS as OS_RELEASE_PATHS
from patchday.collectors.os_release import parse_os_release
from patchday.collectors.python_packages import collect_python_packages
from patchday.collectors.reboot import check_reboot
from patchday.collectors.updates import PendingUpdate

FORMAT = 1
COLLECTOR = "patchday-collectors 0.1.0"
VOLATILE_KEYS = ("collected_at", "uptime_seconds", "boot_time", "errors")
OS_KEYS = ("id", "version_id", "version_codename", "pretty_name", "id_like")
RPM_DB_PATHS = ("var/lib/rpm", "usr/lib/sysimage/rpm")
T = TypeVar("T")


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: UP017 - 3.9 has no datetime.UTC


def empty_document(now: datetime) -> dict[str, Any]:
    """A document with every key present and nothing known."""
    return {
        "format": FORMAT,
        "collector": COLLECTOR,
        "collected_at": _timestamp(now),
        "machine_id": "",
        "hostname": "",
        "fqdn": "",
        "addresses": [],
        "os": dict.fromkeys(OS_KEYS, ""),
        "architecture": "",
        "kernel": {"running": "", "installed": []},
        "boot_time": None,
        "uptime_seconds": None,
        "hardware": dict.fromkeys(system.DMI_FIELDS, ""),
        "packages": [],
        "python_packages": [],
        "pending_updates": [],
        "reboot": {"required": None, "reasons": [], "packages": []},
        "errors": [],
    }


class _Run:
    """Runs collectors so that a failing one becomes an `errors` entry and never stops the others."""

    def __init__(self) -> None:
        self.errors: list[dict[str, str]] = []

    def error(self, collector: str, message: str) -> None:
        self.errors.append({"collector": collector, "message": message})

    def attempt(self, collector: str, action: Callable[[], T]) -> T | None:
        try:
            return action()
        except CollectorError as exc:
            self.error(collector, str(exc))
        except Exception as exc:  # one broken collector must not lose the others' facts
            self.error(collector, f"unexpected {type(exc).__name__}: {exc}")
        return None

    def with_problems(self, collector: str, action: Callable[[list[str]], T]) -> T | None:
        problems: list[str] = []
        result = self.attempt(collector, lambda: action(problems))
        for problem in problems:
            self.error(collector, problem)
        return result


def _read_os(host: Host) -> dict[str, str]:
    for path in OS_RELEASE_PATHS:
        if host.exists(path):
            values = parse_os_release(host.read_text(path), host.path(path))
            return {key: values.get(key.upper(), "") for key in OS_KEYS}
    raise CollectorError(f"neither {host.path(OS_RELEASE_PATHS[0])} nor {host.path(OS_RELEASE_PATHS[1])} exists")


def _srpm_name_version(source_rpm: str) -> tuple[str, str]:
    base = source_rpm[: -len(".src.rpm")] if source_rpm.endswith(".src.rpm") else source_rpm
    parts = base.rsplit("-", 2)
    if len(parts) != 3:
        return base, ""
    return parts[0], f"{parts[1]}-{parts[2]}"


def _has_rpm_db(host: Host) -> bool:
    return any(host.listdir(path) for path in RPM_DB_PATHS)


def _package_managers(host: Host) -> list[str]:
    managers = []
    if host.exists(dpkg_collector.STATUS_PATH):
        managers.append("dpkg")
    if _has_rpm_db(host):
        managers.append("rpm")
    if host.exists(apk_collector.INSTALLED_PATH):
        managers.append("apk")
    return managers


def collect(
    root: str = "/",
    *,
    changelogs: bool = False,
    runner: Runner = run_command,
    cache_dir: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The inventory document of the host whose file system is at `root` ("/": this machine).

    Commands run through `runner` (argv lists, LC_ALL=C). With `changelogs`, candidate .debs are
    fetched into `cache_dir` (a temporary directory when None) to read the CVEs their changelogs
    name. Never raises for a host's problems: each becomes an `errors` entry.
    """
    host = Host(root, runner)
    document = empty_document(now or datetime.now(timezone.utc))  # noqa: UP017 - Python 3.9
    run = _Run()

    document["machine_id"] = run.attempt("machine-id", lambda: system.read_machine_id(host)) or ""
    document["hostname"] = run.attempt("hostname", lambda: system.read_hostname(host)) or ""
    document["fqdn"] = run.attempt("fqdn", lambda: system.read_fqdn(host, document["hostname"])) or ""
    document["addresses"] = run.attempt("addresses", lambda: system.read_addresses(host)) or []
    document["os"] = run.attempt("os-release", lambda: _read_os(host)) or document["os"]
    document["architecture"] = run.attempt("architecture", system.read_architecture) or ""
    running_kernel = run.attempt("kernel", lambda: system.read_running_kernel(host)) or ""
    uptime = run.attempt("uptime", lambda: system.parse_uptime(host.read_text("proc/uptime"), host.path("proc/uptime")))
    document["uptime_seconds"] = int(uptime) if uptime is not None else None
    boot = run.attempt("uptime", lambda: system.parse_boot_time(host.read_text("proc/stat"), host.path("proc/stat")))
    document["boot_time"] = _timestamp(boot) if boot is not None else None
    dmi = run.with_problems("dmi", lambda problems: _dmi(host, problems))
    if dmi is not None:
        document["hardware"] = dmi

    managers = run.attempt("packages", lambda: _package_managers(host)) or []
    if not managers:
        run.error("packages", f"no dpkg, rpm or apk database below {host.root}")
    packages: list[dict[str, str]] = []
    kernels: list[str] = []
    dpkg_packages = run.attempt("dpkg", lambda: _dpkg(host)) if "dpkg" in managers else None
    rpm_packages = run.attempt("rpm", lambda: rpm_collector.collect_installed(host)) if "rpm" in managers else None
    apk_packages = run.attempt("apk", lambda: _apk(host)) if "apk" in managers else None
    for d in dpkg_packages or []:
        packages.append(_package("dpkg", d.name, d.version, d.architecture, d.source, d.source_version))
    kernels += system.kernel_releases_from_packages([d.name for d in dpkg_packages or []])
    for r in rpm_packages or []:
        source, source_version = _srpm_name_version(r.source_rpm)
        if source_version and r.epoch:
            source_version = f"{r.epoch}:{source_version}"
        packages.append(_package("rpm", r.name, r.evr, r.architecture, source, source_version))
        release = system.kernel_release_from_rpm(r.name, r.version, r.release, r.architecture)
        if release:
            kernels.append(release)
    for a in apk_packages or []:
        packages.append(_package("apk", a.name, a.version, a.architecture, a.origin, a.version))
    document["packages"] = sorted(packages, key=lambda p: (p["manager"], p["name"], p["arch"], p["version"]))

    on_disk = run.attempt("kernel", lambda: system.kernel_releases_on_disk(host)) or []
    installed_kernels = system.sort_kernel_releases(kernels + on_disk)
    document["kernel"] = {"running": running_kernel, "installed": installed_kernels}

    python = run.with_problems("python", lambda problems: collect_python_packages(host, problems)) or []
    document["python_packages"] = [
        {"name": p.name, "version": p.version, "interpreter": p.interpreter, "location": p.location} for p in python
    ]

    pending: list[PendingUpdate] = []
    if dpkg_packages is not None:
        installed_sources = {d.name: d.source_version for d in dpkg_packages}
        pending += (
            run.with_problems(
                "apt", lambda problems: _apt(host, changelogs, installed_sources, cache_dir, problems, run)
            )
            or []
        )
    if rpm_packages is not None:
        installed_evr = {f"{r.name}.{r.architecture}": r.evr for r in rpm_packages}
        pending += (
            run.with_problems("dnf", lambda problems: dnf_collector.collect_pending(host, installed_evr, problems))
            or []
        )
    if apk_packages is not None:
        pending += run.attempt("apk-updates", lambda: apk_collector.collect_pending(host, apk_packages or [])) or []
    pending.sort(key=lambda u: (u.manager, u.name, u.arch))
    document["pending_updates"] = [u.as_document() for u in pending]

    reboot = run.with_problems(
        "reboot",
        lambda problems: check_reboot(host, running_kernel, installed_kernels, rpm_packages is not None, problems),
    )
    if reboot is not None:
        document["reboot"] = {"required": reboot.required, "reasons": reboot.reasons, "packages": reboot.packages}

    document["errors"] = run.errors
    return document


def _package(manager: str, name: str, version: str, arch: str, source: str, source_version: str) -> dict[str, str]:
    return {
        "manager": manager,
        "name": name,
        "version": version,
        "arch": arch,
        "source": source,
        "source_version": source_version,
    }


def _dmi(host: Host, problems: list[str]) -> dict[str, str]:
    values, unread = system.read_dmi(host)
    problems.extend(unread)
    return values


def _dpkg(host: Host) -> list[dpkg_collector.DpkgPackage]:
    path = dpkg_collector.STATUS_PATH
    return dpkg_collector.parse_status(host.read_text(path), host.path(path))


def _apk(host: Host) -> list[apk_collector.ApkPackage]:
    path = apk_collector.INSTALLED_PATH
    return apk_collector.parse_installed(host.read_text(path), host.path(path))


def _apt(
    host: Host,
    changelogs: bool,
    installed_sources: dict[str, str],
    cache_dir: str | None,
    problems: list[str],
    run: _Run,
) -> list[PendingUpdate]:
    updates, candidates = apt_collector.collect_pending(host, problems)
    if not changelogs:
        return updates

    def read_changelogs(changelog_problems: list[str]) -> list[PendingUpdate]:
        if cache_dir is not None:
            os.makedirs(cache_dir, exist_ok=True)
            return changelog_collector.with_changelog_cves(
                host, updates, installed_sources, candidates, cache_dir, changelog_problems
            )
        with tempfile.TemporaryDirectory(prefix="patchday-debs-") as directory:
            return changelog_collector.with_changelog_cves(
                host, updates, installed_sources, candidates, directory, changelog_problems
            )

    return run.with_problems("changelog", read_changelogs) or updates


def digest(document: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the document without its volatile keys, as canonical JSON (docs/inventory.md, "Digest")."""
    stable = {key: value for key, value in document.items() if key not in VOLATILE_KEYS}
    text = json.dumps(stable, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
