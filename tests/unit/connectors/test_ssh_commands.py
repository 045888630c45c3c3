"""Remote commands are argv quoted word by word; the reduced document and host-key checks, without a network."""

from __future__ import annotations

import ast
import io
import shlex
import subprocess
import zipfile
from datetime import UTC, datetime

import asyncssh
import pytest

from patchday.connectors.ssh import (
    FALLBACK_COMMANDS,
    REDUCED_MESSAGE,
    CommandOutput,
    HostKey,
    _PinningClient,
    collector_argv,
    collector_program,
    collectors_zip,
    host_key_algorithms,
    reduced_document,
    remote_command,
)
from patchday.core.errors import InvalidInput

HOSTILE_WORDS = [
    "plain",
    "two words",
    "semi;colon",
    "$(touch /tmp/pwned)",
    "`id`",
    "a'b",
    'a"b',
    "back\\slash",
    "new\nline",
    "tab\there",
    "-oProxyCommand=sh",
    "*",
    "~root",
    "$HOME",
    "${Package}\\n",
    "a|b&c>d<e",
    "",
    "ünïcödé",
    "!event",
    "#comment",
]


def test_each_word_reaches_the_remote_program_unchanged() -> None:
    argv = ["printf", "%s\\0", *HOSTILE_WORDS]
    line = remote_command(argv)
    assert shlex.split(line) == argv
    # What a POSIX shell on the host does with the line: the exact words arrive, nothing runs.
    done = subprocess.run(["/bin/sh", "-c", line], capture_output=True, check=True)
    assert done.stdout.decode().split("\0")[:-1] == HOSTILE_WORDS


def test_a_nul_in_a_word_is_refused() -> None:
    with pytest.raises(ValueError, match="NUL"):
        remote_command(["echo", "a\0b"])
    with pytest.raises(ValueError, match="empty"):
        remote_command([])


def test_the_collectors_run_isolated_and_sudo_never_prompts() -> None:
    assert collector_argv("/usr/bin/python3", False) == ["/usr/bin/python3", "-I", "-"]
    assert collector_argv("/usr/bin/python3", True) == ["sudo", "-n", "--", "/usr/bin/python3", "-I", "-"]
    # a python path found on the host is data: it is quoted like any other word
    assert remote_command(collector_argv("/opt/my python/bin/python3", True)) == (
        "sudo -n -- '/opt/my python/bin/python3' -I -"
    )


def test_fallback_commands_are_quoted_so_dpkg_query_sees_its_format_verbatim() -> None:
    argv = dict(FALLBACK_COMMANDS)["dpkg"]
    line = remote_command(argv)
    assert "'Package: ${Package}" in line  # single-quoted: the shell expands nothing
    assert shlex.split(line) == list(argv)


def test_the_bundle_carries_a_minimal_patchday_and_every_collector() -> None:
    with zipfile.ZipFile(io.BytesIO(collectors_zip())) as bundle:
        names = bundle.namelist()
        init = bundle.read("patchday/__init__.py").decode()
    assert "patchday/collectors/__init__.py" in names
    assert "patchday/collectors/dpkg.py" in names
    assert all(n.startswith("patchday/") and n.endswith(".py") for n in names)
    assert "import" not in init  # nothing of the server comes along
    assert collectors_zip() == collectors_zip()


def test_the_program_sent_to_python3_is_valid_python_39() -> None:
    tree = ast.parse(collector_program(), feature_version=(3, 9))
    assert any(isinstance(node, ast.Assign) and node.targets[0].id == "PAYLOAD" for node in tree.body)  # type: ignore[attr-defined]
    assert "--changelogs" in collector_program(changelogs=True)


DPKG_OUTPUT = """\
Package: libssl3
Status: install ok installed
Version: 3.0.15-1~deb12u1
Architecture: amd64
Source: openssl (3.0.15-1~deb12u1)

Package: bash
Status: install ok installed
Version: 5.2.15-2+b7
Architecture: amd64
Source: bash (5.2.15-2)

Package: old-removed
Status: deinstall ok config-files
Version: 1.0
Architecture: all
Source: old-removed (1.0)

"""
OS_RELEASE = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n'
NOW = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)


def ok(text: str) -> CommandOutput:
    return CommandOutput(0, text, "")


MISSING = CommandOutput(127, "", "sh: 1: rpm: not found")


def test_a_debian_host_without_python_gives_a_reduced_document_of_the_same_shape() -> None:
    outputs = {
        "dpkg": ok(DPKG_OUTPUT),
        "rpm": MISSING,
        "apk": CommandOutput(1, "", "cat: /lib/apk/db/installed: No such file or directory"),
        "os-release": ok(OS_RELEASE),
        "kernel": ok("6.1.0-27-amd64\n"),
        "architecture": ok("x86_64\n"),
        "hostname": ok("h1\n"),
        "machine-id": ok("4c4c4544004e3510804fc2c04f4b4d32\n"),
    }
    doc = reduced_document(outputs, NOW)
    assert doc["format"] == 1
    assert doc["collected_at"] == "2026-11-28T09:30:00Z"
    assert doc["hostname"] == "h1"
    assert doc["machine_id"] == "4c4c4544004e3510804fc2c04f4b4d32"
    assert doc["os"]["id"] == "debian"
    assert doc["os"]["version_id"] == "12"
    assert doc["os"]["pretty_name"] == "Debian GNU/Linux 12 (bookworm)"
    assert doc["kernel"] == {"running": "6.1.0-27-amd64", "installed": []}
    assert doc["packages"] == [
        {
            "manager": "dpkg",
            "name": "libssl3",
            "version": "3.0.15-1~deb12u1",
            "arch": "amd64",
            "source": "openssl",
            "source_version": "3.0.15-1~deb12u1",
        },
        {
            "manager": "dpkg",
            "name": "bash",
            "version": "5.2.15-2+b7",
            "arch": "amd64",
            "source": "bash",
            "source_version": "5.2.15-2",
        },
    ]
    assert doc["errors"][0] == {"collector": "ssh", "message": REDUCED_MESSAGE}
    expected_keys = {
        "format",
        "collector",
        "collected_at",
        "machine_id",
        "hostname",
        "fqdn",
        "addresses",
        "os",
        "architecture",
        "kernel",
        "boot_time",
        "uptime_seconds",
        "hardware",
        "packages",
        "python_packages",
        "pending_updates",
        "reboot",
        "errors",
    }
    assert set(doc) == expected_keys


def test_the_reduced_document_passes_the_servers_document_check() -> None:
    from patchday.inventory.document import parse_document

    outputs = {"dpkg": ok(DPKG_OUTPUT), "os-release": ok(OS_RELEASE), "hostname": ok("h1\n")}
    parsed = parse_document(reduced_document(outputs, NOW))
    assert [p.name for p in parsed.packages] == ["libssl3", "bash"]


def test_an_rpm_host_gets_epochs_and_source_package_names() -> None:
    rpm = (
        "bash\t0\t5.1.8\t9.el9\tx86_64\tbash-5.1.8-9.el9.src.rpm\n"
        "perl-IO\t1\t1.43\t481.el9\tx86_64\tperl-5.32.1-481.el9.src.rpm\n"
    )
    outputs = {"dpkg": MISSING, "rpm": ok(rpm), "os-release": ok("ID=rocky\nVERSION_ID=9.4\n")}
    packages = reduced_document(outputs, NOW)["packages"]
    assert [(p["name"], p["version"], p["source"]) for p in packages] == [
        ("bash", "5.1.8-9.el9", "bash"),
        ("perl-IO", "1:1.43-481.el9", "perl"),
    ]


def test_unreadable_facts_are_empty_with_a_line_in_errors() -> None:
    outputs = {
        "dpkg": CommandOutput(2, "", "dpkg-query: error: parsing file '/var/lib/dpkg/status'"),
        "rpm": MISSING,
        "kernel": CommandOutput(None, "", ""),
        "hostname": ok("h1\n"),
    }
    doc = reduced_document(outputs, NOW, reason="python3 3.7 is older than 3.9: reduced inventory")
    collectors = [e["collector"] for e in doc["errors"]]
    assert doc["errors"][0]["message"].startswith("python3 3.7")
    assert "dpkg" in collectors
    assert "os-release" in collectors
    assert "kernel" in collectors
    assert doc["packages"] == []
    assert doc["kernel"]["running"] == ""


def test_garbage_from_a_hostile_host_is_reported_not_raised() -> None:
    outputs = {"dpkg": ok("this is not\na status file"), "os-release": ok("$(reboot)\n"), "hostname": ok("h1")}
    doc = reduced_document(outputs, NOW)
    assert doc["packages"] == []
    assert {"dpkg", "os-release"} <= {e["collector"] for e in doc["errors"]}


ED25519 = asyncssh.generate_private_key("ssh-ed25519")
OTHER = asyncssh.generate_private_key("ssh-ed25519")


def test_first_contact_accepts_and_reports_the_key() -> None:
    client = _PinningClient(None)
    assert client.validate_host_public_key("h1", "10.0.0.1", 22, ED25519.convert_to_public())
    assert client.presented == HostKey.of(ED25519)
    assert not client.mismatch


def test_a_pinned_host_must_present_the_same_key() -> None:
    pinned = HostKey.of(ED25519)
    same = _PinningClient(pinned)
    assert same.validate_host_public_key("h1", "10.0.0.1", 22, ED25519.convert_to_public())
    assert not same.mismatch
    other = _PinningClient(pinned)
    assert not other.validate_host_public_key("h1", "10.0.0.1", 22, OTHER.convert_to_public())
    assert other.mismatch
    assert other.presented == HostKey.of(OTHER)


def test_host_keys_are_stored_as_openssh_lines_with_sha256_fingerprints() -> None:
    key = HostKey.of(ED25519)
    assert key.line.startswith("ssh-ed25519 AAAA")
    assert key.fingerprint.startswith("SHA256:")
    assert HostKey.parse(key.line + " comment") == key
    with pytest.raises(InvalidInput):
        HostKey.parse("ssh-ed25519 not-base64;rm -rf /")


def test_the_pinned_key_type_is_asked_for_first() -> None:
    rsa = HostKey.of(asyncssh.generate_private_key("ssh-rsa", key_size=2048))
    assert host_key_algorithms(rsa)[0].startswith("rsa-sha2")
    assert host_key_algorithms(None)[0] == "ssh-ed25519"
    assert not any("cert" in alg for alg in host_key_algorithms(None))
