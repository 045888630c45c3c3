"""Boot one lab host: give it its own /proc, /sys, /dev and /run, pivot into its root and exec its init.

Run by fleet.py as PID 1 of fresh PID, mount, UTS and IPC namespaces inside the host's network namespace:
`ip netns exec pdt-hN unshare --mount --uts --ipc --pid --fork --propagation private python3 hostboot.py ROOT NAME`.
Standard library only; every command is an argv list.
"""

from __future__ import annotations

import ctypes
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

INIT = "/usr/local/sbin/pdt-lab-init"
MNT_DETACH = 2
# (name, major, minor): the character devices a minimal host needs, as in a container's /dev.
DEVICES = (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0))
LINKS = (
    ("ptmx", "pts/ptmx"),
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
)


def mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True)


def mount_kernel_filesystems(root: Path) -> None:
    mount("-t", "proc", "-o", "nosuid,nodev,noexec", "proc", str(root / "proc"))
    # Read-only /proc/sys and sysrq-trigger: a package running `sysctl --system` (procps) must not change
    # the machine's kernel settings, and nothing in a host may poke sysrq.
    for entry in ("sys", "sysrq-trigger"):
        path = str(root / "proc" / entry)
        if os.path.exists(path):
            mount("--bind", path, path)
            mount("-o", "remount,bind,ro", path)
    mount("-t", "sysfs", "-o", "ro,nosuid,nodev,noexec", "sysfs", str(root / "sys"))


def make_dev(root: Path) -> None:
    dev = root / "dev"
    mount("-t", "tmpfs", "-o", "mode=0755,nosuid,size=16m", "tmpfs", str(dev))
    for name, major, minor in DEVICES:
        os.mknod(dev / name, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
        os.chmod(dev / name, 0o666)  # noqa: S103 (as on any Linux system)
    (dev / "pts").mkdir()
    (dev / "shm").mkdir()
    mount("-t", "devpts", "-o", "newinstance,ptmxmode=0666,mode=0620,gid=5", "devpts", str(dev / "pts"))
    mount("-t", "tmpfs", "-o", "mode=1777,nosuid,nodev", "tmpfs", str(dev / "shm"))
    for name, target in LINKS:
        (dev / name).symlink_to(target)


def pivot_into(root: Path) -> None:
    os.chdir(root)
    subprocess.run(["pivot_root", ".", "."], check=True)
    # The old root now sits on top of the new one; detach it so the machine's tree is gone from this host.
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.umount2(b".", MNT_DETACH) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"umount2 of the old root failed: {os.strerror(errno)}")
    os.chdir("/")


def main(argv: list[str]) -> None:
    root, name = Path(argv[1]), argv[2]
    mount_kernel_filesystems(root)
    make_dev(root)
    mount("-t", "tmpfs", "-o", "mode=0755,nosuid,nodev,size=64m", "tmpfs", str(root / "run"))
    (root / "run" / "lock").mkdir()
    os.chmod(root / "run" / "lock", 0o1777)  # noqa: S103 (sticky, as in Debian)
    socket.sethostname(name)
    pivot_into(root)
    os.execv(INIT, [INIT])  # noqa: S606 (a fixed path, no arguments)


if __name__ == "__main__":
    main(sys.argv)
