"""user@host[:port] parsing: what operators write is accepted, hostile input is rejected naming the field."""

from __future__ import annotations

import pytest

from patchday.connectors.ssh import TargetAddress, parse_target
from patchday.core.errors import InvalidInput


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("root@db1", TargetAddress("root", "db1", 22)),
        ("deploy@db1.example.com:2222", TargetAddress("deploy", "db1.example.com", 2222)),
        ("ops@DB1.Example.COM.", TargetAddress("ops", "db1.example.com", 22)),
        ("a_b.c-d@10.77.0.11", TargetAddress("a_b.c-d", "10.77.0.11", 22)),
        ("root@10.77.0.11:65535", TargetAddress("root", "10.77.0.11", 65535)),
        ("root@[::1]", TargetAddress("root", "::1", 22)),
        ("root@[2001:db8::1]:2200", TargetAddress("root", "2001:db8::1", 2200)),
        ("_svc@h-1", TargetAddress("_svc", "h-1", 22)),
    ],
)
def test_targets_operators_write_are_parsed(text: str, expected: TargetAddress) -> None:
    assert parse_target(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "db1",  # no user
        "@db1",
        "root@",
        "root@:22",
        "root@db1:",
        "root@db1:0",
        "root@db1:65536",
        "root@db1:22x",
        "root@db1:-22",
        "root@db1:+22",
        "root@db1:２２",  # fullwidth digits  # noqa: RUF001
        "root@db1:22:23",
        "a@b@c",
        # option injection: nothing may start with '-' where an ssh command line would read an option
        "-oProxyCommand=touch /tmp/pwned@db1",
        "root@-oProxyCommand=sh",
        "root@-db1",
        "-l@db1",
        "root@db1 -oProxyCommand=id",
        # shell metacharacters
        "root@db1;reboot",
        "root@db1&&id",
        "root@db1|id",
        "root@$(id)",
        "root@`id`",
        "root@db1>/etc/passwd",
        "ro'ot@db1",
        'root@db1"',
        "root@db1\\",
        "root@*",
        "root@db1/../../etc",
        "$USER@db1",
        # whitespace, newlines and control characters
        "root@db1\nProxyCommand id",
        "root@db1\r",
        "root@db1\t",
        "root @db1",
        "root@db1\x00",
        "root@db1\x1b[31m",
        # not a host
        "root@db_1",
        "root@db..1",
        "root@.db1",
        "root@db1-",
        "root@" + "a" * 64,
        "root@" + ".".join(["a" * 60] * 5),
        "root@999.1.1.1",
        "root@10.0.0",
        "root@::1",  # IPv6 without brackets
        "root@[::1",
        "root@[::1]22",
        "root@[::1]:",
        "root@[db1]",
        "root@[::1%eth0]",
        "root@dб1",  # a Cyrillic letter in the host  # noqa: RUF001
        # not a user
        "1root@db1",
        "r" * 33 + "@db1",
        "x" * 400,
    ],
)
def test_hostile_or_malformed_targets_are_rejected(text: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_target(text)
    assert raised.value.field == "target"


def test_the_rejection_names_the_offending_part() -> None:
    with pytest.raises(InvalidInput, match="port '70000'"):
        parse_target("root@db1:70000")
    with pytest.raises(InvalidInput, match="user name '-oProxyCommand=x'"):
        parse_target("-oProxyCommand=x@db1")
