"""The operating system's identity from os-release(5)."""

from __future__ import annotations

import shlex

from patchday.collectors import CollectorError

PATHS = ("etc/os-release", "usr/lib/os-release")


def parse_os_release(text: str, origin: str = "os-release") -> dict[str, str]:
    """KEY=value pairs of an os-release file (quotes removed); raises CollectorError without ID."""
    values: dict[str, str] = {}
    for line_no, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, raw = line.partition("=")
        if not sep or not key.isidentifier():
            raise CollectorError(f"{origin} line {line_no}: expected KEY=value, got {line[:60]!r}")
        try:
            parts = shlex.split(raw, posix=True)
        except ValueError as exc:
            raise CollectorError(f"{origin} line {line_no}: {exc}") from None
        values[key] = parts[0] if parts else ""
    if "ID" not in values:
        raise CollectorError(f"{origin} has no ID= line; is it an os-release file?")
    return values
