"""The lab fleet for humans: `sudo .venv/bin/python -m tests.lab up 3`, then `... ssh h1`, `... down`.

    up [N] [--packages hN=pkg,pkg ...]   converge to hosts h1..hN (default 3), building the base if needed
    down [--purge]                        stop everything; --purge also deletes the base, caches and key
    status                                hosts, addresses, init PIDs, the files to point ssh or patchday at
    ssh hN [command ...]                  log in as root with the lab key and the pinned host key
    exec hN command ...                   run a command inside the host's namespaces (no ssh)
    reset hN | restart hN                 a fresh unpatched hN | a "reboot" that keeps hN's changes
    base                                  only build (or unpack) the base root

PATCHDAY_LAB_DIR (default /tmp/patchday-lab) and PATCHDAY_LAB_CACHE (default /var/cache/patchday-lab)
choose where state and the cached base live.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from tests.lab.fleet import Lab, LabError, guest_env


def parse_packages(specs: list[str]) -> dict[str, list[str]]:
    packages: dict[str, list[str]] = {}
    for spec in specs:
        name, _, names = spec.partition("=")
        if not names:
            raise LabError(f"--packages takes hN=pkg[,pkg...], not {spec!r}")
        packages.setdefault(name, []).extend(n for n in names.split(",") if n)
    return packages


def print_status(lab: Lab) -> None:
    print(f"{'HOST':<5} {'ADDRESS':<12} {'NETNS':<8} {'INIT':<8} ROOT")
    for host, pid in lab.status():
        print(f"{host.name:<5} {host.address:<12} {host.netns:<8} {pid or '-'!s:<8} {host.root_dir}")
    print(f"ssh config:  {lab.ssh_config}\nknown_hosts: {lab.known_hosts}\nkey:         {lab.key_path}")
    print(f"inventory:   {lab.lab_dir / 'inventory.json'}\napt proxy:   {lab.proxy_url} (log {lab.proxy_log})")
    left = lab.leftovers()
    if left and not lab.status():
        print(f"leftovers: {left}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.lab", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up")
    up.add_argument("n", nargs="?", type=int, default=3)
    up.add_argument("--packages", action="append", default=[], metavar="hN=PKG,PKG")
    down = commands.add_parser("down")
    down.add_argument("--purge", action="store_true")
    commands.add_parser("status")
    commands.add_parser("base")
    for name in ("ssh", "exec"):
        sub = commands.add_parser(name)
        sub.add_argument("host")
        sub.add_argument("argv", nargs=argparse.REMAINDER, metavar="command")
    for name in ("reset", "restart"):
        commands.add_parser(name).add_argument("host")
    options = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[lab %(asctime)s] %(message)s", datefmt="%H:%M:%S")

    lab = Lab()
    try:
        if options.command in ("status", "ssh", "exec"):
            look_or_enter(lab, options)
        else:
            with lab.session(wait=0):  # refuse while a pytest session is using the lab
                change(lab, options)
    except LabError as exc:
        logging.getLogger("patchday.lab").error("%s", exc)
        return 1
    if lab.timings:
        logging.getLogger("patchday.lab").info("timings (s): %s", lab.timings)
    return 0


def change(lab: Lab, options: argparse.Namespace) -> None:
    if options.command == "up":
        lab.up(options.n, parse_packages(options.packages))
        print_status(lab)
    elif options.command == "down":
        lab.down(purge=options.purge)
    elif options.command == "base":
        lab.ensure_base()
    elif options.command == "reset":
        lab.reset(options.host)
    elif options.command == "restart":
        lab.restart(options.host)


def look_or_enter(lab: Lab, options: argparse.Namespace) -> None:
    if options.command == "status":
        print_status(lab)
        return
    if not options.argv and options.command == "exec":
        raise LabError("exec needs a command")
    if options.command == "ssh":
        argv = lab.ssh_target(options.host).argv(*options.argv)
        os.execvp(argv[0], argv)  # noqa: S606 (an argv list; replaces this process, as ssh would)
    argv = lab.enter_argv(options.host, options.argv)
    os.execvpe(argv[0], argv, guest_env())  # noqa: S606 (an argv list; output streams to the terminal)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
