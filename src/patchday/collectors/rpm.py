"""Installed RPM packages, read with the rpm tool itself (the rpmdb format is rpm's business)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

from patchday.collectors import CollectorError
from patchday.collectors.host import Host

QUERY_FORMAT = "%{NAME}\\t%{EPOCHNUM}\\t%{VERSION}\\t%{RELEASE}\\t%{ARCH}\\t%{SOURCERPM}\\n"


@dataclass(frozen=True)
class RpmPackage:
    """One installed package; `evr` is [epoch:]version-release as advisories write fixed versions."""

    name: str
    epoch: int
    version: str
    release: str
    architecture: str
    source_rpm: str

    @property
    def evr(self) -> str:
        base = f"{self.version}-{self.release}"
        return f"{self.epoch}:{base}" if self.epoch else base


def parse_query(text: str) -> list[RpmPackage]:
    """Packages from the output of `rpm -qa --queryformat QUERY_FORMAT`."""
    packages: list[RpmPackage] = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("gpg-pubkey\t"):
            continue
        parts = line.split("\t")
        if len(parts) != 6 or not parts[1].isdigit():
            raise CollectorError(f"rpm query output line {line_no}: expected 6 tab-separated fields")
        packages.append(RpmPackage(parts[0], int(parts[1]), parts[2], parts[3], parts[4], parts[5]))
    return packages


def query_installed(root: str | None = None, timeout: float = 120) -> list[RpmPackage]:
    """Run `rpm -qa` (against `root` when given); raises CollectorError when rpm is missing or fails."""
    rpm = shutil.which("rpm")
    if rpm is None:
        raise CollectorError("the rpm tool is not installed, so the RPM database cannot be read")
    argv = [rpm, *(["--root", root] if root else []), "-qa", "--queryformat", QUERY_FORMAT]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)  # noqa: S603
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CollectorError(f"rpm -qa failed: {exc}") from None
    if done.returncode != 0:
        raise CollectorError(f"rpm -qa failed: {done.stderr.strip()[:200]}")
    return parse_query(done.stdout)


def collect_installed(host: Host) -> list[RpmPackage]:
    """Installed packages of `host` (rpm --root for a root other than "/"); raises CollectorError naming the failure."""
    argv = ["rpm", *([] if host.is_live else ["--root", host.root]), "-qa", "--queryformat", QUERY_FORMAT]
    return parse_query(host.run_ok(argv, 300))
