"""Package-manager drivers: hostile names never reach an argv, argv lists are exact, parsers read recorded output."""

from __future__ import annotations

from pathlib import Path

import pytest

from patchday.agent.packages import (
    Change,
    Installed,
    JobSpecError,
    deb_file_name,
    download_argv,
    find_installed,
    install_argv,
    installed_versions_argv,
    parse_apt_simulation,
    parse_deb_fields,
    parse_dnf_assumeno,
    parse_installed,
    rollback_argv,
    simulate_argv,
    validate_name,
    validate_version,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "jobs"
HOSTILE = [
    "-oAPT::Get::AllowUnauthenticated=1",
    "-",
    "a;rm",
    "a;rm -rf /",
    "$(x)",
    "`id`",
    "a b",
    "a\tb",
    "a\nb",
    "pkg|cat",
    "pkg&",
    "pkg>x",
    "../etc",
    "a/b",
    "pkgé",
    "\uff50\uff4b\uff47",  # fullwidth "pkg"
    "x" * 500,
    "",
    "pkg\x00",
    "'quoted'",
    '"q"',
    "*",
    "pkg?",
]


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


@pytest.mark.parametrize("manager", ["apt", "dnf", "zypper", "apk"])
@pytest.mark.parametrize("hostile", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_names_and_versions_are_refused_by_every_manager(manager: str, hostile: str) -> None:
    with pytest.raises(JobSpecError):
        validate_name(manager, hostile)
    with pytest.raises(JobSpecError):
        validate_version(manager, hostile)
    with pytest.raises(JobSpecError):
        install_argv(manager, [(hostile, "1.0-1")])
    with pytest.raises(JobSpecError):
        install_argv(manager, [("openssl", hostile)])


def test_the_error_names_the_bad_value() -> None:
    with pytest.raises(JobSpecError, match="a;rm"):
        validate_name("apt", "a;rm")
    with pytest.raises(JobSpecError, match=r"1\.0 2"):
        validate_version("apt", "1.0 2")


@pytest.mark.parametrize(
    ("manager", "name", "version"),
    [
        ("apt", "libexpat1", "2.5.0-1+deb12u5"),
        ("apt", "libcap2", "1:2.66-4+deb12u3+b1"),
        ("apt", "g++", "4:12.2.0-3"),
        ("apt", "tzdata", "2026f-0+deb12u1"),
        ("apt", "ca-certificates", "20250419~deb12u2"),
        ("apt", "libc6:i386", "2.36-9+deb12u14"),
        ("dnf", "openssl-libs", "1:3.0.7-25.el9_3"),
        ("dnf", "python3.11", "3.11.5-1.el9_3"),
        ("zypper", "libopenssl3", "3.1.4-150600.5.7.1"),
        ("apk", "musl", "1.2.4-r2"),
        ("apk", "busybox", "1.36.1_git20230717-r1"),
    ],
)
def test_real_names_and_versions_pass(manager: str, name: str, version: str) -> None:
    assert validate_name(manager, name) == name
    assert validate_version(manager, version) == version


def test_debian_names_follow_policy() -> None:
    for bad in ("A", "a", "Libfoo", "_x", "+x", ".x", "x_y"):
        with pytest.raises(JobSpecError):
            validate_name("apt", bad)
    for bad in ("a2.5", "1:", ":1", "1:a", "1.0_1", "1.0/2"):
        with pytest.raises(JobSpecError):
            validate_version("apt", bad)


def test_unknown_manager_is_refused() -> None:
    with pytest.raises(JobSpecError, match="pacman"):
        install_argv("pacman", [("a", "1")])


def test_install_argv_per_manager() -> None:
    targets = [("libexpat1", "2.5.0-1+deb12u5"), ("libcap2", "1:2.66-4+deb12u3+b1")]
    assert install_argv("apt", targets) == [
        "apt-get",
        "install",
        "-y",
        "-q",
        "--only-upgrade",
        "--no-install-recommends",
        "-o",
        "Dpkg::Options::=--force-confdef",
        "-o",
        "Dpkg::Options::=--force-confold",
        "-o",
        "DPkg::Lock::Timeout=300",
        "--",
        "libexpat1=2.5.0-1+deb12u5",
        "libcap2=1:2.66-4+deb12u3+b1",
    ]
    assert install_argv("dnf", [("openssl", "1:3.0.7-25.el9_3")]) == [
        "dnf",
        "-y",
        "upgrade",
        "--",
        "openssl-1:3.0.7-25.el9_3",
    ]
    assert install_argv("zypper", [("libopenssl3", "3.1.4-1.1")]) == [
        "zypper",
        "--non-interactive",
        "install",
        "--oldpackage",
        "--",
        "libopenssl3=3.1.4-1.1",
    ]
    assert install_argv("apk", [("musl", "1.2.4-r2")]) == ["apk", "add", "--", "musl=1.2.4-r2"]
    with pytest.raises(JobSpecError, match="no target"):
        install_argv("apt", [])


def test_simulate_argv_changes_nothing() -> None:
    assert simulate_argv("apt", [("jq", "1.6-2.1+deb12u3")]) == [
        "apt-get",
        "-s",
        "-q",
        "-o",
        "Debug::NoLocking=1",
        "install",
        "--only-upgrade",
        "--no-install-recommends",
        "--",
        "jq=1.6-2.1+deb12u3",
    ]
    assert simulate_argv("dnf", [("openssl", "3.0.7-25.el9_3")])[:3] == ["dnf", "--assumeno", "upgrade"]
    assert "--dry-run" in simulate_argv("zypper", [("a", "1-1")])
    assert "--simulate" in simulate_argv("apk", [("musl", "1.2.4-r2")])


def test_rollback_argv_is_one_apt_transaction_of_absolute_files_and_removals() -> None:
    files = ["/var/lib/patchday/jobs/7/libexpat1_2.5.0-1+deb12u2_amd64.deb"]
    argv = rollback_argv("apt", files, ["libnew1"])
    assert argv[:5] == ["apt-get", "-y", "-q", "install", "--allow-downgrades"]
    assert argv[-3:] == ["--", files[0], "libnew1-"]
    assert "DPkg::Lock::Timeout=300" in argv
    simulated = rollback_argv("apt", files, ["libnew1"], simulate=True)
    assert simulated[:2] == ["apt-get", "-s"]
    assert "-y" not in simulated
    for bad in ("relative.deb", "./x.deb", "/srv/kept/a b.deb", "/etc/passwd", "-o.deb"):
        with pytest.raises(JobSpecError):
            rollback_argv("apt", [bad], [])
    with pytest.raises(JobSpecError):
        rollback_argv("apt", [], ["$(x)"])
    with pytest.raises(JobSpecError, match="nothing"):
        rollback_argv("apt", [], [])
    with pytest.raises(JobSpecError, match="dnf"):
        rollback_argv("dnf", files, [])


def test_installed_versions_argv() -> None:
    assert installed_versions_argv("apt", ["jq", "libjq1"]) == [
        "dpkg-query",
        "-W",
        "-f",
        "${Package}\\t${Version}\\t${Architecture}\\t${Status}\\n",
        "--",
        "jq",
        "libjq1",
    ]
    assert installed_versions_argv("dnf", ["openssl"])[:3] == ["rpm", "-q", "--qf"]
    with pytest.raises(JobSpecError):
        installed_versions_argv("apt", ["-a"])


def test_download_argv_and_file_names() -> None:
    assert download_argv("apt", "libcap2", "1:2.66-4+deb12u2+b2") == [
        "apt-get",
        "download",
        "-q",
        "--",
        "libcap2=1:2.66-4+deb12u2+b2",
    ]
    assert deb_file_name("libcap2", "1:2.66-4+deb12u2+b2", "amd64") == "libcap2_1%3a2.66-4+deb12u2+b2_amd64.deb"
    assert deb_file_name("libc6:i386", "2.36-9", "i386") == "libc6_2.36-9_i386.deb"


def test_parse_apt_simulation_of_a_recorded_upgrade() -> None:
    changes = parse_apt_simulation(fixture("apt-simulate-upgrade.txt"))
    assert [c.name for c in changes] == ["libcap2", "jq", "libjq1", "libpam-cap", "libcap2-bin"]
    assert changes[0] == Change("libcap2", "amd64", "1:2.66-4+deb12u2+b2", "1:2.66-4+deb12u3+b1", "upgrade")
    assert changes[1] == Change("jq", "amd64", "1.6-2.1+deb12u1", "1.6-2.1+deb12u3", "upgrade")  # trailing "[]"


def test_parse_apt_simulation_of_recorded_new_installs() -> None:
    changes = parse_apt_simulation(fixture("apt-simulate-install.txt"))
    assert changes == [
        Change("libtext-charwidth-perl", "amd64", None, "0.04-11", "install"),
        Change("cowsay", "all", None, "3.03+dfsg2-8", "install"),
        Change("sl", "amd64", None, "5.02-1+b1", "install"),
    ]


def test_parse_apt_simulation_of_a_recorded_rollback_with_downgrades_and_a_removal() -> None:
    changes = parse_apt_simulation(fixture("apt-simulate-rollback.txt"))
    assert changes == [
        Change("tzdata", "", "2026b-0+deb12u1", None, "remove"),
        Change("liblzma5", "amd64", "5.4.1-1+deb12u2", "5.4.1-1+deb12u1", "downgrade"),
        Change("libexpat1", "amd64", "2.5.0-1+deb12u5", "2.5.0-1+deb12u2", "downgrade"),
    ]


def test_parse_apt_simulation_refuses_what_is_not_apt() -> None:
    with pytest.raises(JobSpecError, match="not apt-get output"):
        parse_apt_simulation("bash: apt-get: command not found\n")
    with pytest.raises(JobSpecError, match="line 2"):
        parse_apt_simulation("Reading package lists...\nInst garbage\n")
    assert parse_apt_simulation("Reading package lists...\nBuilding dependency tree...\n") == []


def test_parse_dnf_assumeno_of_the_written_sample() -> None:
    changes = parse_dnf_assumeno(fixture("dnf-assumeno.txt"))
    assert changes == [
        Change("openssl", "x86_64", None, "1:3.0.7-25.el9_3", "upgrade"),
        Change("openssl-libs", "x86_64", None, "1:3.0.7-25.el9_3", "upgrade"),
        Change("python3-very-long-package-name-that-wraps", "noarch", None, "2.4.1-3.el9", "install"),
        Change("oldthing", "x86_64", "0.9-1.el9", None, "remove"),
    ]


def test_parse_installed_of_recorded_dpkg_query_output() -> None:
    rows = parse_installed("apt", fixture("dpkg-query.txt"))
    assert Installed("libexpat1", "2.5.0-1+deb12u1", "amd64", "installed") in rows
    assert all(r.is_installed for r in rows)
    assert find_installed(rows, "tzdata") == Installed("tzdata", "2025b-0+deb12u2", "all", "installed")
    assert find_installed(rows, "nosuch") is None


def test_find_installed_skips_removed_packages_and_tells_arches_apart() -> None:
    rows = parse_installed(
        "apt",
        "libc6\t2.36-9\tamd64\tinstall ok installed\n"
        "libc6\t2.36-9\ti386\tinstall ok installed\n"
        "oldpkg\t1.0-1\tamd64\tdeinstall ok config-files\n"
        "gone\t\tamd64\tunknown ok not-installed\n",
    )
    assert find_installed(rows, "oldpkg") is None
    assert find_installed(rows, "gone") is None
    row = find_installed(rows, "libc6:i386")
    assert row is not None
    assert row.arch == "i386"
    row = find_installed(rows, "libc6", "amd64")
    assert row is not None
    assert row.arch == "amd64"


def test_parse_deb_fields() -> None:
    text = "Package: libexpat1\nVersion: 2.5.0-1+deb12u2\nArchitecture: amd64\n"
    assert parse_deb_fields(text) == {"Package": "libexpat1", "Version": "2.5.0-1+deb12u2", "Architecture": "amd64"}
