"""Whether the host needs a reboot to run what is installed, and why."""

from __future__ import annotations

from dataclasses import dataclass, field

from patchday.collectors import CollectorError
from patchday.collectors.debversion import kernel_release_key
from patchday.collectors.host import Host

REBOOT_REQUIRED = "run/reboot-required"
REBOOT_REQUIRED_PKGS = "run/reboot-required.pkgs"
KERNEL_REASON = "running kernel older than installed"
NEEDS_RESTARTING_REASON = "needs-restarting -r"


@dataclass(frozen=True)
class RebootState:
    """`required` is None when no check could be made; `reasons` name the checks that said yes."""

    required: bool | None
    reasons: list[str] = field(default_factory=list)
    packages: list[str] = field(default_factory=list)


def parse_reboot_required_pkgs(text: str) -> list[str]:
    """Distinct package names of /run/reboot-required.pkgs (one a line), in file order."""
    return list(dict.fromkeys(line.strip() for line in text.splitlines() if line.strip()))


def is_kernel_outdated(running: str, installed: list[str]) -> bool:
    """True when an installed kernel release sorts after the running one (see debversion.kernel_release_key).

    Only releases of the running kernel's flavour count (the text after the ABI number: "-amd64",
    "-cloud-amd64", ".x86_64"), so an installed -rt kernel does not make a generic one look old.
    """
    flavour = _flavour(running)
    newer = [k for k in installed if _flavour(k) == flavour and kernel_release_key(k) > kernel_release_key(running)]
    return bool(newer)


def _flavour(release: str) -> str:
    parts = release.split("-")
    tail = [p for p in parts[1:] if not p[:1].isdigit()]
    if tail:
        return "-".join(tail)
    return release.rsplit(".", 1)[-1] if "." in release and not release.rsplit(".", 1)[-1].isdigit() else ""


def check_reboot(
    host: Host, running_kernel: str, installed_kernels: list[str], rpm_based: bool, problems: list[str]
) -> RebootState:
    """Reboot state from /run/reboot-required(.pkgs), `needs-restarting -r` (RHEL family, live root only)
    and the running kernel against the installed ones.

    A check that fails is appended to `problems`; raises CollectorError only when no check could run.
    """
    reasons: list[str] = []
    packages: list[str] = []
    checks = 0
    failed: list[str] = []
    if host.exists(REBOOT_REQUIRED):
        reasons.append("/" + REBOOT_REQUIRED)
        if host.exists(REBOOT_REQUIRED_PKGS):
            try:
                packages = parse_reboot_required_pkgs(host.read_text(REBOOT_REQUIRED_PKGS))
            except CollectorError as exc:
                failed.append(str(exc))
    if host.exists("run") or host.exists("var/lib/dpkg"):
        checks += 1  # on Debian/Ubuntu a missing flag file is an answer: no package asked for a reboot
    if rpm_based and host.is_live:
        try:
            done = host.run(["needs-restarting", "-r"], 120, None)
            if done.returncode == 1:
                reasons.append(NEEDS_RESTARTING_REASON)
                checks += 1
            elif done.returncode == 0:
                checks += 1
            else:
                failed.append(f"needs-restarting -r exited with status {done.returncode}")
        except CollectorError as exc:
            failed.append(str(exc))
    if running_kernel and installed_kernels:
        checks += 1
        if is_kernel_outdated(running_kernel, installed_kernels):
            reasons.append(KERNEL_REASON)
    if checks == 0:
        raise CollectorError("; ".join(failed) or "no reboot check applies to this host")
    problems.extend(failed)
    return RebootState(bool(reasons), reasons, packages)
