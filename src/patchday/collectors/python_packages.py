"""Python distributions installed for the system's interpreters, read from their metadata files (never imported).

Interpreters are the /usr/bin and /usr/local/bin `python3` and `python3.N` executables. For each
`python3.N` the usual site directories are scanned: <prefix>/lib/python3/dist-packages (Debian's
shared one), <prefix>/lib/python3.N/{dist,site}-packages and <prefix>/lib64/python3.N/site-packages,
for the prefixes /usr and /usr/local. Packages in a virtualenv are not the system's and are not read.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from email.parser import HeaderParser

from patchday.collectors import CollectorError
from patchday.collectors.host import Host

INTERPRETER_DIRS = ("usr/bin", "usr/local/bin")
PREFIXES = ("usr", "usr/local")
_INTERPRETER = re.compile(r"python3(?:\.\d+)?")
_VERSIONED = re.compile(r"python(?P<version>3\.\d+)")
_MAX_METADATA = 1024 * 1024


@dataclass(frozen=True)
class PythonPackage:
    """One distribution: PEP 503-normalised name, version, the interpreter it serves and its site directory."""

    name: str
    version: str
    interpreter: str
    location: str


def normalize_name(name: str) -> str:
    """The PEP 503 form of a distribution name ("Foo_Bar.baz" -> "foo-bar-baz")."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_metadata(text: str, origin: str = "METADATA") -> tuple[str, str]:
    """(Name, Version) of a core-metadata file (METADATA or PKG-INFO); raises CollectorError without them."""
    headers = HeaderParser().parsestr(text, headersonly=True)
    name, version = headers.get("Name", "").strip(), headers.get("Version", "").strip()
    if not name or not version:
        raise CollectorError(f"{origin} has no Name: and Version: headers")
    return name, version


def interpreters(host: Host) -> dict[str, str]:
    """Host path of each distinct system interpreter -> its `3.N` version."""
    found: dict[str, str] = {}
    seen_targets: set[str] = set()
    for directory in INTERPRETER_DIRS:
        for name in host.listdir(directory):
            if not _INTERPRETER.fullmatch(name):
                continue
            local = host.path(f"{directory}/{name}")
            target = os.path.realpath(local)
            versioned = _VERSIONED.fullmatch(os.path.basename(target))
            if versioned is None or not os.path.isfile(target) or target in seen_targets:
                continue
            seen_targets.add(target)
            found[f"/{directory}/{os.path.basename(target)}"] = versioned.group("version")
    return found


def site_directories(version: str) -> list[str]:
    """Root-relative site directories a Debian, RHEL or Alpine `python3.N` reads."""
    directories = []
    for prefix in PREFIXES:
        directories += [
            f"{prefix}/lib/python3/dist-packages",
            f"{prefix}/lib/python{version}/dist-packages",
            f"{prefix}/lib/python{version}/site-packages",
            f"{prefix}/lib64/python{version}/site-packages",
        ]
    return directories


def _metadata_file(host: Host, directory: str, entry: str) -> str | None:
    if entry.endswith(".dist-info"):
        return f"{directory}/{entry}/METADATA"
    if entry.endswith(".egg-info"):
        path = f"{directory}/{entry}"
        return f"{path}/PKG-INFO" if os.path.isdir(host.path(path)) else path
    return None


def scan_site_directory(host: Host, directory: str, interpreter: str, problems: list[str]) -> list[PythonPackage]:
    """Distributions in one site directory; an unreadable metadata file is appended to `problems`."""
    packages = []
    for entry in host.listdir(directory):
        metadata = _metadata_file(host, directory, entry)
        if metadata is None:
            continue
        try:
            raw = host.read_bytes(metadata)
            if len(raw) > _MAX_METADATA:
                raw = raw[:_MAX_METADATA]  # the headers come first; long descriptions are not needed
            name, version = parse_metadata(raw.decode("utf-8", "replace"), host.path(metadata))
        except CollectorError as exc:
            problems.append(str(exc))
            continue
        packages.append(PythonPackage(normalize_name(name), version, interpreter, "/" + directory))
    return packages


def collect_python_packages(host: Host, problems: list[str]) -> list[PythonPackage]:
    """Distributions of every system interpreter, sorted by interpreter, name and location."""
    packages: list[PythonPackage] = []
    for interpreter, version in sorted(interpreters(host).items()):
        seen: set[str] = set()
        for directory in site_directories(version):
            real = os.path.realpath(host.path(directory))
            if real in seen or not os.path.isdir(real):
                continue
            seen.add(real)
            packages += scan_site_directory(host, directory, interpreter, problems)
    return sorted(set(packages), key=lambda p: (p.interpreter, p.name, p.location, p.version))
