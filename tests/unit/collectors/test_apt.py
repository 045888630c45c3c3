"""apt's pending updates over recorded output of a real Debian 12 host, and over hostile output."""

from __future__ import annotations

import pytest

from patchday.collectors import CollectorError
from patchday.collectors.apt import (
    collect_pending,
    parse_list_upgradable,
    parse_policy,
    parse_show,
    parse_simulation,
    with_codenames,
)
from patchday.collectors.host import CommandResult, Host
from tests.unit.collectors.host_fakes import FakeRunner, fixture_text, ok

SIMULATION = "apt-get-s-dist-upgrade-debian12-2026-11-28.txt.gz"
POLICY = "apt-cache-policy-debian12-2026-11-28.txt"
SHOW = "apt-cache-show-debian12-2026-11-28.txt"


def test_simulation_of_a_real_host_gives_every_upgrade() -> None:
    text = fixture_text(SIMULATION)
    updates = parse_simulation(text)
    assert len(updates) == text.count("\nInst ") == 120
    by_name = {u.name: u for u in updates}
    gcrypt = by_name["libgcrypt20"]  # in both the point release and the security archive
    assert (gcrypt.installed, gcrypt.candidate, gcrypt.arch) == ("1.10.1-3", "1.10.1-3+deb12u1", "amd64")
    assert (gcrypt.origin, gcrypt.suite, gcrypt.security) == ("Debian-Security", "oldstable-security", True)
    bash = by_name["bash"]
    assert (bash.origin, bash.suite, bash.security) == ("Debian", "oldstable", False)
    assert by_name["libpam-modules-bin"].candidate == "1.5.2-6+deb12u2"  # a line with trailing [..] groups
    assert sum(u.security for u in updates) == 76


def test_policy_maps_archives_to_codenames() -> None:
    releases = parse_policy(fixture_text(POLICY))
    assert {(r.archive, r.codename, r.label) for r in releases} == {
        ("oldstable-security", "bookworm-security", "Debian-Security"),
        ("oldstable-updates", "bookworm-updates", "Debian"),
        ("oldstable", "bookworm", "Debian"),
    }
    updates = with_codenames(parse_simulation(fixture_text(SIMULATION)), releases)
    assert {u.suite for u in updates} == {"bookworm", "bookworm-security"}


def test_list_upgradable_of_a_real_host() -> None:
    updates = parse_list_upgradable(fixture_text("apt-list-upgradable-debian12-2026-11-28.txt.gz"))
    assert len(updates) == 136
    assert sum(u.security for u in updates) == 83  # as ../shared/data/README.md counts them
    krb5 = next(u for u in updates if u.name == "krb5-locales")
    assert (krb5.suite, krb5.security, krb5.installed) == ("oldstable-security", True, "1.20.1-2+deb12u3")


def test_show_gives_candidate_sources_and_sizes() -> None:
    candidates = parse_show(fixture_text(SHOW))
    assert candidates[("bash", "5.2.15-2+b13")].source_version == "5.2.15-2"  # a binNMU
    assert candidates[("libgnutlsxx30", "3.7.9-2+deb12u7")].source == "gnutls28"
    assert candidates[("libnss3", "2:3.87.1-1+deb12u4")].source_version == "2:3.87.1-1+deb12u4"
    assert candidates[("base-files", "12.4+deb12u15")].size > 0


@pytest.mark.parametrize(
    ("parse", "text", "says"),
    [
        (parse_simulation, "Reading package lists...\nInst broken [1.0 (2.0\n", "line 2: unreadable Inst line"),
        (parse_simulation, "<html>proxy error</html>\n", "is not apt-get output"),
        (parse_list_upgradable, "Listing...\nbash 5.2 amd64\n", "line 2"),
        (parse_policy, "E: no cache\n", "not apt-cache policy output"),
        (parse_show, "Package: x\n", "stanza without Package: or Version:"),
    ],
)
def test_garbage_output_is_refused_naming_the_input(parse, text: str, says: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CollectorError, match=says):
        parse(text)


def test_truncated_simulation_is_refused() -> None:
    text = fixture_text(SIMULATION)
    cut = text[: text.index("Inst bash") + len("Inst bash [5.2.15-2+b8] (5.2")]
    with pytest.raises(CollectorError, match="unreadable Inst line"):
        parse_simulation(cut)


def test_collect_pending_runs_argv_lists_and_fills_sources() -> None:
    runner = FakeRunner(
        {
            ("apt-get", "-s"): ok(fixture_text(SIMULATION)),
            ("apt-cache", "policy"): ok(fixture_text(POLICY)),
            ("apt-cache", "show"): ok(fixture_text(SHOW)),
        }
    )
    problems: list[str] = []
    updates, candidates = collect_pending(Host("/", runner), problems)
    by_name = {u.name: u for u in updates}
    assert (by_name["bash"].source, by_name["bash"].source_version, by_name["bash"].suite) == (
        "bash",
        "5.2.15-2",
        "bookworm",
    )
    assert by_name["libaom3"].suite == "bookworm-security"
    show = next(call for call in runner.calls if call[:2] == ["apt-cache", "show"])
    assert show[:4] == ["apt-cache", "show", "--no-all-versions", "--"]
    assert "bash=5.2.15-2+b13" in show
    assert any("did not name the source" in p for p in problems)  # the fixture covers five candidates only
    assert ("bash", "5.2.15-2+b13") in candidates


def test_hostile_package_names_stay_data() -> None:
    hostile = (
        "Reading package lists...\n"
        "Inst $(touch${IFS}/tmp/pwned) [1.0] (2.0 Debian:12/stable [amd64])\n"
        "Inst <script>alert(1)</script> [1.0] (2.0 Debian:12/stable [amd64])\n"
        "Inst -oDir=/tmp [1.0] (2.0 Debian:12/stable [amd64])\n"
        "Inst ok-pkg [1.0] (2.0 Debian-Security:12/stable-security [amd64])\n"
    )
    runner = FakeRunner(
        {
            ("apt-get", "-s"): ok(hostile),
            ("apt-cache", "policy"): CommandResult(100, "", "E: broken"),
            ("apt-cache", "show"): ok("Package: ok-pkg\nVersion: 2.0\nSource: ok\n"),
        }
    )
    problems: list[str] = []
    updates, _ = collect_pending(Host("/", runner), problems)
    assert [u.name for u in updates] == [
        "$(touch${IFS}/tmp/pwned)",
        "<script>alert(1)</script>",
        "-oDir=/tmp",
        "ok-pkg",
    ]
    show = next(call for call in runner.calls if call[:2] == ["apt-cache", "show"])
    assert show[4:] == ["ok-pkg=2.0"]  # only a valid name goes back to apt, after "--"
    assert any("unexpected names" in p and "$(touch" in p for p in problems)
    assert any("suite codenames unknown" in p for p in problems)
