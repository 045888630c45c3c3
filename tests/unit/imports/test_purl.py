"""purl -> OSV ecosystem, name and version, for every purl type patchday maps and for garbage."""

from __future__ import annotations

import pytest

from patchday.connectors.imports.purl import Distro, UnusablePurl, normalize_pypi_name, parse_distro, read_purl


@pytest.mark.parametrize(
    ("purl", "ecosystem", "name", "version"),
    [
        (
            "pkg:deb/debian/openssl@3.0.20-1~deb12u2?arch=amd64&distro=debian-12",
            "Debian:12",
            "openssl",
            "3.0.20-1~deb12u2",
        ),
        (
            "pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&distro=debian-12.5",
            "Debian:12",
            "libssl3",
            "3.0.11-1~deb12u2",
        ),
        ("pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?distro=bookworm", "Debian:12", "zlib1g", "1:1.2.13.dfsg-1"),
        ("pkg:deb/ubuntu/bash@5.1-6ubuntu1?arch=amd64&distro=ubuntu-22.04", "Ubuntu:22.04:LTS", "bash", "5.1-6ubuntu1"),
        ("pkg:deb/ubuntu/bash@5.2.21-2ubuntu4?distro=noble", "Ubuntu:24.04:LTS", "bash", "5.2.21-2ubuntu4"),
        (
            "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64&upstream=musl&distro=alpine-3.18.4",
            "Alpine:v3.18",
            "musl",
            "1.2.4-r2",
        ),
        ("pkg:apk/alpine/musl@1.2.2-r7?arch=x86_64&distro=3.15.0", "Alpine:v3.15", "musl", "1.2.2-r7"),
        (
            "pkg:rpm/rocky/openssl-libs@3.0.7-24.el9?arch=x86_64&epoch=1&distro=rocky-9.3",
            "Rocky Linux:9",
            "openssl-libs",
            "1:3.0.7-24.el9",
        ),
        ("pkg:rpm/almalinux/bash@5.1.8-6.el9?distro=almalinux-9.2", "AlmaLinux:9", "bash", "5.1.8-6.el9"),
        ("pkg:rpm/redhat/bash@5.1.8-6.el9?distro=redhat-9.3", "Red Hat", "bash", "5.1.8-6.el9"),
        ("pkg:rpm/centos/bash@4.2.46-31.el7?arch=x86_64&distro=centos-7.6.1810", "", "bash", "4.2.46-31.el7"),
        ("pkg:pypi/Django@5.2.19", "PyPI", "django", "5.2.19"),
        ("pkg:pypi/zope.interface@7.0", "PyPI", "zope-interface", "7.0"),
        ("pkg:npm/%40angular/core@17.0.1", "npm", "@angular/core", "17.0.1"),
        ("pkg:npm/lodash@4.17.21", "npm", "lodash", "4.17.21"),
        ("pkg:golang/github.com/gorilla/mux@v1.8.0", "Go", "github.com/gorilla/mux", "1.8.0"),
        ("pkg:golang/stdlib@go1.21.0", "Go", "stdlib", "1.21.0"),
        ("pkg:cargo/serde@1.0.190", "crates.io", "serde", "1.0.190"),
        (
            "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1",
            "Maven",
            "org.apache.logging.log4j:log4j-core",
            "2.14.1",
        ),
        ("pkg:gem/rails@7.1.2", "RubyGems", "rails", "7.1.2"),
        ("pkg:nuget/Newtonsoft.Json@13.0.1", "NuGet", "Newtonsoft.Json", "13.0.1"),
        ("pkg:composer/laravel/framework@v7.12.0", "Packagist", "laravel/framework", "v7.12.0"),
    ],
)
def test_purls_map_to_osv_ecosystems(purl: str, ecosystem: str, name: str, version: str) -> None:
    found = read_purl(purl)
    assert (found.ecosystem, found.name, found.version) == (ecosystem, name, version)


def test_distribution_purls_without_a_distro_take_the_sboms_os() -> None:
    debian = Distro("debian", "12")
    assert read_purl("pkg:deb/debian/bash@5.2.15-2", os_hint=debian).ecosystem == "Debian:12"
    assert read_purl("pkg:deb/debian/bash@5.2.15-2").ecosystem == "Debian"  # the family when nothing says more
    # An OS of another family is no hint for this package.
    assert read_purl("pkg:deb/ubuntu/bash@5.1-6", os_hint=debian).ecosystem == "Ubuntu"


def test_source_packages_come_from_the_upstream_qualifier() -> None:
    bash = read_purl("pkg:deb/debian/bash@5.2.15-2%2Bb8?arch=amd64&distro=debian-12&upstream=bash%405.2.15-2")
    assert (bash.version, bash.source_name, bash.source_version, bash.arch) == (
        "5.2.15-2+b8",
        "bash",
        "5.2.15-2",
        "amd64",
    )
    libc = read_purl("pkg:deb/debian/libc6@2.36-9%2Bdeb12u14?distro=debian-12&upstream=glibc")
    assert (libc.source_name, libc.source_version) == ("glibc", "2.36-9+deb12u14")
    rpm = read_purl(
        "pkg:rpm/rocky/openssl-libs@3.0.7-24.el9?epoch=1&upstream=openssl-3.0.7-24.el9.src.rpm&distro=rocky-9.3"
    )
    assert (rpm.source_name, rpm.source_version) == ("openssl", "1:3.0.7-24.el9")


def test_pypi_names_are_normalised_per_pep_503() -> None:
    assert normalize_pypi_name("Foo__Bar.baz-Qux") == "foo-bar-baz-qux"


@pytest.mark.parametrize(
    ("qualifier", "namespace", "expected"),
    [
        ("debian-12", "debian", Distro("debian", "12")),
        ("bookworm", "debian", Distro("debian", "12")),
        ("3.15.0", "alpine", Distro("alpine", "3.15.0")),
        ("redhat-9.3", "redhat", Distro("rhel", "9.3")),
        ("opensuse-leap-15.5", "opensuse", Distro("opensuse-leap", "15.5")),
        ("", "debian", None),
    ],
)
def test_distro_qualifiers(qualifier: str, namespace: str, expected: Distro | None) -> None:
    assert parse_distro(qualifier, namespace) == expected


@pytest.mark.parametrize(
    ("purl", "reason"),
    [
        ("garbage", "malformed"),
        ("pkg:", "malformed"),
        ("pkg:pypi/@1.0", "malformed"),
        ("pkg:generic/openssl@3.0", "no OSV ecosystem"),
        ("pkg:github/actions/checkout@v4", "no OSV ecosystem"),
        ("pkg:pypi/requests", "no version"),
        ("pkg:deb/debian/bash@5%0A2", "control characters"),
        ("pkg:npm/" + "a" * 300 + "@1.0", "longer than 255"),
    ],
)
def test_unusable_purls_say_why(purl: str, reason: str) -> None:
    with pytest.raises(UnusablePurl, match=reason):
        read_purl(purl)


def test_hostile_names_are_kept_as_data() -> None:
    html = read_purl("pkg:npm/%3Cscript%3Ealert(1)%3C%2Fscript%3E@1.0.0")
    assert html.name == "<script>alert(1)</script>"
    shell = read_purl("pkg:deb/debian/%24(rm%20-rf%20%2F)%3B%60id%60@1.0?distro=debian-12")
    assert shell.name == "$(rm -rf /);`id`"
    traversal = read_purl("pkg:npm/..%2F..%2F..%2Fetc%2Fpasswd@1.0.0")
    assert traversal.name == "../../../etc/passwd"
