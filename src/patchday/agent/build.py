"""The agent as one file: a deterministic zipapp, and the POSIX sh script that installs it.

The zipapp holds a minimal `patchday/__init__.py`, `patchday/agent/**` and `patchday/collectors/**`
(never the rest of patchday, so it cannot import Django) and a `__main__.py` that runs the agent's
command line. Entries are sorted, stamped 1980-01-01 and given mode 0644, so a given source tree
(and zlib) always gives the same bytes and the same SHA-256.
"""

from __future__ import annotations

import io
import os
import re
import shlex
import zipapp
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

from patchday.agent import AGENT_VERSION
from patchday.agent.errors import ConfigError
from patchday.agent.transport import check_server_url

ZIPAPP_NAME = "patchday-agent.pyz"
INTERPRETER = "/usr/bin/env python3"
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry
_PACKAGE_INIT = (
    '"""patchday, as packed into the agent zipapp: only patchday.agent and patchday.collectors are here."""\n'
    "\n"
    f'__version__ = "{AGENT_VERSION}"\n'
)
_MAIN = (
    '"""Entry point of the patchday agent zipapp."""\n'
    "\n"
    "from patchday.agent.cli import main\n"
    "\n"
    "raise SystemExit(main())\n"
)
# One or more PEM certificates and nothing else: no line of it can end the heredoc or run anything.
_PEM_BUNDLE = re.compile(r"(?:-----BEGIN CERTIFICATE-----\n(?:[A-Za-z0-9+/=]{1,76}\n)+-----END CERTIFICATE-----\n+)+")


def _package_dir(module_file: str | None, name: str) -> Path:
    if module_file is None:
        raise ConfigError(f"cannot find the source of {name}")
    directory = Path(module_file).resolve().parent
    if not directory.is_dir():  # running from inside a zipapp: there is no tree to pack
        raise ConfigError(f"{name} is not in a source tree ({directory}); build the agent from an installed patchday")
    return directory


def zipapp_entries() -> list[tuple[str, bytes]]:
    """(archive name, content) of every file the zipapp holds, sorted by name."""
    import patchday.agent
    import patchday.collectors

    entries = {"patchday/__init__.py": _PACKAGE_INIT.encode(), "__main__.py": _MAIN.encode()}
    for package, name in ((patchday.agent, "agent"), (patchday.collectors, "collectors")):
        root = _package_dir(package.__file__, package.__name__)
        for path in root.rglob("*.py"):
            relative = path.relative_to(root)
            if "__pycache__" in relative.parts:
                continue
            entries[f"patchday/{name}/{relative.as_posix()}"] = path.read_bytes()
    return sorted(entries.items())


def zipapp_archive() -> bytes:
    """The zip archive (without the #! line) built from `zipapp_entries()`."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in zipapp_entries():
            info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, whatever platform builds it
            info.external_attr = 0o100644 << 16
            archive.writestr(info, content, compresslevel=9)
    return buffer.getvalue()


def build_zipapp(target_path: str | os.PathLike[str]) -> Path:
    """Write the agent zipapp to `target_path` (atomically, mode 0755) and return its path."""
    target = Path(target_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.tmp")
    try:
        # zipapp copies an existing archive behind a #! line; it marks a str target executable.
        zipapp.create_archive(io.BytesIO(zipapp_archive()), str(temporary), interpreter=INTERPRETER)
        os.chmod(temporary, 0o755)  # noqa: S103 - a program file: world-readable, executable
        os.replace(temporary, target)
    finally:
        if temporary.exists():
            temporary.unlink()
    return target


def install_script(
    server_url: str,
    ca_pem: str | None = None,
    *,
    pyz_sha256: str | None = None,
    insecure_http: bool = False,
) -> str:
    """A POSIX sh script that downloads the agent from `server_url`, checks it, and runs its `install`.

    The enrollment secret is not in the script: the admin passes it as the first argument or in
    PATCHDAY_ENROLL_SECRET, and the script hands it to the agent in the environment (not argv,
    which `ps` shows). `ca_pem` (PEM certificates) is embedded and used for every download and by
    the agent; `pyz_sha256` makes the script refuse a download with another digest. Every value
    from outside is shell-quoted. Raises ConfigError for a URL the agent would not use, a
    `ca_pem` that is not PEM certificates, or a malformed digest.
    """
    server = check_server_url(server_url, insecure_http)
    https = urlsplit(server).scheme == "https"
    if ca_pem is not None:
        ca_pem = ca_pem.replace("\r\n", "\n").strip() + "\n"
        if not _PEM_BUNDLE.fullmatch(ca_pem):
            raise ConfigError("ca_pem must be one or more PEM certificates")
    if pyz_sha256 is not None and not re.fullmatch(r"[0-9a-f]{64}", pyz_sha256):
        raise ConfigError("pyz_sha256 must be 64 lowercase hex digits")
    insecure_flag = " --insecure-http" if insecure_http and not https else ""
    lines = [
        "#!/bin/sh",
        "# Installs the patchday agent from the patchday server below, enrolls this host and starts it.",
        "# Usage (as root):  sh install.sh ENROLL_SECRET   or   PATCHDAY_ENROLL_SECRET=... sh install.sh",
        "set -eu",
        f"server={shlex.quote(server)}",
        f"expected_sha256={shlex.quote(pyz_sha256 or '')}",
        f"https={'1' if https else '0'}",
        'secret="${1:-${PATCHDAY_ENROLL_SECRET:-}}"',
        'if [ -z "$secret" ]; then',
        '  echo "usage: sh install.sh ENROLL_SECRET (or set PATCHDAY_ENROLL_SECRET)" >&2',
        "  exit 2",
        "fi",
        'if [ "$(id -u)" != 0 ]; then',
        '  echo "patchday agent install: run this as root" >&2',
        "  exit 1",
        "fi",
        "if ! command -v python3 >/dev/null 2>&1 ||"
        " ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 9))'; then",
        '  echo "patchday agent install: python3 3.9 or newer is needed" >&2',
        "  exit 1",
        "fi",
        'workdir="$(mktemp -d)"',
        "trap 'rm -rf \"$workdir\"' EXIT",
        'pyz="$workdir/patchday-agent.pyz"',
        'url="$server/agent/patchday-agent.pyz"',
        'cafile=""',
    ]
    if ca_pem is not None:
        lines += [
            'cafile="$workdir/ca.pem"',
            "cat >\"$cafile\" <<'PATCHDAY_CA_PEM'",  # quoted delimiter: the heredoc is taken literally
            ca_pem.rstrip("\n"),
            "PATCHDAY_CA_PEM",
        ]
    lines += [
        "# Download with certificate verification: curl, else GNU wget, else python3 itself.",
        "if command -v curl >/dev/null 2>&1; then",
        '  set -- --fail --silent --show-error --max-time 300 --output "$pyz"',
        '  if [ "$https" = 1 ]; then set -- "$@" --proto =https --tlsv1.2; fi',
        '  if [ -n "$cafile" ]; then set -- "$@" --cacert "$cafile"; fi',
        '  curl "$@" "$url"',
        "elif command -v wget >/dev/null 2>&1 && wget --version 2>/dev/null | grep -q 'GNU Wget'; then",
        '  set -- --quiet --max-redirect=0 --timeout=60 --output-document="$pyz"',
        '  if [ "$https" = 1 ]; then set -- "$@" --https-only; fi',
        '  if [ -n "$cafile" ]; then set -- "$@" --ca-certificate="$cafile"; fi',
        '  wget "$@" "$url"',
        "else",
        '  python3 -I - "$url" "$pyz" "$cafile" <<\'PATCHDAY_DOWNLOAD\'',
        "import shutil, ssl, sys, urllib.request",
        "url, target, cafile = sys.argv[1:4]",
        "context = ssl.create_default_context(cafile=cafile or None)",
        "class NoRedirect(urllib.request.HTTPRedirectHandler):",
        "    def redirect_request(self, *args):",
        "        return None",
        "opener = urllib.request.build_opener(NoRedirect, urllib.request.HTTPSHandler(context=context))",
        "with opener.open(url, timeout=300) as answer, open(target, 'wb') as out:",
        "    shutil.copyfileobj(answer, out)",
        "PATCHDAY_DOWNLOAD",
        "fi",
        'if [ -n "$expected_sha256" ]; then',
        "  actual=\"$(python3 -I -c 'import hashlib, sys;"
        ' print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())\' "$pyz")"',
        '  if [ "$actual" != "$expected_sha256" ]; then',
        '    echo "patchday agent install: the download has SHA-256 $actual, expected $expected_sha256" >&2',
        "    exit 1",
        "  fi",
        "fi",
        'set -- install --server "$server"' + insecure_flag,
        'if [ -n "$cafile" ]; then set -- "$@" --ca-file "$cafile"; fi',
        'PATCHDAY_AGENT_ENROLL_SECRET="$secret" python3 -I "$pyz" "$@"',
        "",
    ]
    return "\n".join(lines)
