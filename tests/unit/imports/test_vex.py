"""VEX imports over real OpenVEX and CycloneDX documents (trivy, vexctl, CycloneDX examples), hostile ones, export."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from patchday.connectors.imports.purl import UnusablePurl, purl_for, read_purl
from patchday.connectors.imports.vex import (
    CYCLONEDX_JUSTIFICATIONS,
    CYCLONEDX_STATES,
    DEFAULT_ACTION,
    FALSE_POSITIVE_IMPACT,
    VexJustification,
    VexProduct,
    VexStatement,
    VexStatus,
    openvex_document,
    parse_vex,
    read_vex,
    suppresses,
    vex_product,
)
from patchday.core.errors import InvalidImport, InvalidInput

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "vex"
NOW = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)
SCHEMA = json.loads((FIXTURES / "openvex_json_schema.json").read_text())


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def schema_errors(document: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    return [error.message for error in validator.iter_errors(document)]


def openvex(*statements: dict[str, Any], **extra: Any) -> bytes:
    document = {
        "@context": "https://openvex.dev/ns/v0.2.0",
        "@id": "https://example.com/vex/1",
        "author": "security@example.com",
        "timestamp": "2026-11-01T10:00:00Z",
        "version": 1,
        "statements": list(statements),
        **extra,
    }
    return json.dumps(document).encode()


def not_affected(
    purl: str = "pkg:deb/debian/openssl@3.0.11-1~deb12u2?distro=debian-12", **extra: Any
) -> dict[str, Any]:
    return {
        "vulnerability": {"name": "CVE-2023-5678"},
        "products": [{"@id": purl}],
        "status": "not_affected",
        "justification": "vulnerable_code_not_in_execute_path",
        **extra,
    }


def cyclonedx(vulnerabilities: list[dict[str, Any]], spec: str = "1.6", **extra: Any) -> bytes:
    return json.dumps(
        {"bomFormat": "CycloneDX", "specVersion": spec, "version": 1, "vulnerabilities": vulnerabilities, **extra}
    ).encode()


def cdx_vulnerability(ref: str = "pkg:pypi/django@5.2.19", **analysis: Any) -> dict[str, Any]:
    return {
        "id": "CVE-2025-1111",
        "analysis": analysis or {"state": "not_affected", "justification": "code_not_present"},
        "affects": [{"ref": ref}],
    }


def rejected(data: bytes, source: str = "vex.json") -> InvalidImport:
    with pytest.raises(InvalidImport) as caught:
        parse_vex(data, source=source)
    assert caught.value.source == source
    assert str(caught.value).startswith(f"{source}")
    assert isinstance(caught.value, InvalidInput)  # answered 422 by the API's one table
    return caught.value


# -- real documents -----------------------------------------------------------------------------------------


def test_trivy_nested_openvex_keeps_the_subcomponent_within_its_product() -> None:
    (statement,) = parse_vex(fixture_bytes("trivy-openvex-nested.json"))
    assert statement.vulnerability == "CVE-2024-0001"
    assert (statement.status, statement.justification) == (
        VexStatus.NOT_AFFECTED,
        VexJustification.VULNERABLE_CODE_NOT_IN_EXECUTE_PATH,
    )
    assert statement.products == (
        VexProduct(
            ecosystem="Go",
            name="github.com/aquasecurity/go-transitive",
            version="4.0.0",
            purl="pkg:golang/github.com/aquasecurity/go-transitive@4.0.0",
            within="pkg:golang/github.com/aquasecurity/go-direct1@2.0.0",
        ),
    )
    assert statement.source_format == "OpenVEX 0.2.0"
    assert statement.timestamp == datetime(2023, 1, 17, 1, 7, 16, 853479, tzinfo=UTC)  # the document's, in UTC


def test_trivy_multiple_statements_in_document_order_with_their_own_timestamps() -> None:
    affected, later = parse_vex(fixture_bytes("trivy-openvex-multiple.json"))  # the unversioned context
    assert (affected.status, later.status) == (VexStatus.AFFECTED, VexStatus.NOT_AFFECTED)
    assert affected.timestamp == datetime(2023, 1, 15, 7, 2, 3, 853479, tzinfo=UTC)
    product = affected.products[0]
    assert (product.ecosystem, product.name, product.version) == (
        "Maven",
        "org.springframework.boot:spring-boot",
        "2.6.0",
    )


def test_a_debian_purl_without_distro_names_the_family_and_the_id_may_be_the_vulnerability() -> None:
    (statement,) = parse_vex(fixture_bytes("trivy-repo-openssl-vex.json"))
    assert statement.vulnerability == "CVE-2023-1234"  # only vulnerability.@id is given
    assert [(p.ecosystem, p.name, p.version) for p in statement.products] == [("Debian", "openssl", "1.1.1t-r0")]


def test_cyclonedx_examples_vex_resolves_a_bom_link_and_maps_onto_openvex_terms() -> None:
    (statement,) = parse_vex(fixture_bytes("cyclonedx-bom-examples-vex.trimmed.json"))
    assert statement.vulnerability == "CVE-2020-25649"
    assert statement.aliases == ("SNYK-JAVA-COMFASTERXMLJACKSONCORE-1048302",)  # references[].id
    assert statement.status is VexStatus.NOT_AFFECTED
    assert statement.justification is VexJustification.VULNERABLE_CODE_NOT_IN_EXECUTE_PATH  # code_not_reachable
    assert statement.impact_statement.startswith("Automated dataflow analysis")  # analysis.detail
    assert statement.action_statement.startswith("Upgrade com.fasterxml.jackson.core")  # recommendation
    assert statement.source_format == "CycloneDX 1.4"
    (product,) = statement.products
    assert (product.ecosystem, product.name, product.version) == (
        "Maven",
        "com.fasterxml.jackson.core:jackson-databind",
        "2.10.0",
    )


@pytest.mark.parametrize(
    ("name", "field", "reason"),
    [
        ("vexctl-v020-2-wolfi.json", "statements[0].products[0].@id", "unknown product 'pkg:apk/wolfi/git@2.41.0-1'"),
        ("vexctl-oci-template.json", "statements[0].products[0].@id", "purl type 'oci' has no OSV ecosystem"),
        ("trivy-openvex-v0.0.1-strings.json", "statements[0].vulnerability", "OpenVEX 0.0.1"),
        ("trivy-cyclonedx.json", "vulnerabilities[1].affects[0].versions[0].status", "contradicts the analysis"),
        ("cyclonedx-cisa-case1-not_affected.trimmed.json", "vulnerabilities[0].affects[0].ref", "has no purl"),
    ],
)
def test_real_documents_patchday_cannot_use_are_refused_naming_statement_and_field(
    name: str, field: str, reason: str
) -> None:
    error = rejected(fixture_bytes(name), source=name)
    assert error.field == field
    assert f"{name}: {field}: " in str(error)
    assert reason in str(error)


# -- OpenVEX details ----------------------------------------------------------------------------------------


def test_the_cve_among_name_id_and_aliases_is_the_vulnerability_in_upper_case() -> None:
    vulnerability = {
        "name": "GHSA-jfh8-c2jp-5v3q",
        "@id": "https://nvd.nist.gov/vuln/detail/cve-2021-44228",
        "aliases": ["log4shell", "GHSA-jfh8-c2jp-5v3q"],
    }
    (statement,) = parse_vex(openvex(not_affected(vulnerability=vulnerability)))
    assert statement.vulnerability == "CVE-2021-44228"
    assert statement.aliases == ("GHSA-jfh8-c2jp-5v3q", "log4shell")
    (plain,) = parse_vex(openvex(not_affected(vulnerability={"name": "GHSA-jfh8-c2jp-5v3q"})))
    assert (plain.vulnerability, plain.aliases) == ("GHSA-jfh8-c2jp-5v3q", ())  # no CVE: the id as written


def test_products_by_identifiers_purl_without_version_cover_all_versions_and_are_sorted_once() -> None:
    statement = not_affected()
    statement["products"] = [
        {"@id": "https://example.com/product/x", "identifiers": {"purl": "pkg:pypi/Django"}},
        {"@id": "pkg:deb/ubuntu/bash@5.1-6ubuntu1?distro=jammy"},
        {"@id": "pkg:pypi/django"},
    ]
    (parsed,) = parse_vex(openvex(statement))
    assert [(p.ecosystem, p.name, p.version) for p in parsed.products] == [
        ("PyPI", "django", None),
        ("PyPI", "django", None),
        ("Ubuntu:22.04:LTS", "bash", "5.1-6ubuntu1"),
    ]
    assert len({p.purl for p in parsed.products}) == 3  # the same package under two purls is kept as written


def test_an_impact_statement_alone_suffices_and_status_notes_back_a_justification() -> None:
    statement = not_affected(impact_statement="openssl is installed but no service loads it")
    del statement["justification"]
    (parsed,) = parse_vex(openvex(statement))
    assert (parsed.justification, parsed.impact_statement) == (None, "openssl is installed but no service loads it")
    (noted,) = parse_vex(openvex(not_affected(status_notes="checked by hand")))
    assert noted.impact_statement == "checked by hand"


# -- CycloneDX details --------------------------------------------------------------------------------------


def test_cyclonedx_refs_resolve_through_bom_refs_of_nested_components_and_the_subject() -> None:
    components = [
        {
            "bom-ref": "app",
            "name": "app",
            "components": [
                {"bom-ref": "ssl", "name": "libssl3", "purl": "pkg:deb/debian/libssl3@3.0.11-1?distro=debian-12"}
            ],
        }
    ]
    metadata = {
        "timestamp": "2026-10-01T00:00:00+02:00",
        "component": {"bom-ref": "me", "name": "requests", "purl": "pkg:pypi/requests@2.32.3"},
    }
    vulnerability = cdx_vulnerability("ssl", state="resolved")
    vulnerability["affects"].append({"ref": "urn:cdx:f0e1/1#me"})
    (statement,) = parse_vex(cyclonedx([vulnerability], components=components, metadata=metadata))
    assert statement.status is VexStatus.FIXED
    assert [(p.ecosystem, p.name, p.version) for p in statement.products] == [
        ("Debian:12", "libssl3", "3.0.11-1"),
        ("PyPI", "requests", "2.32.3"),
    ]
    assert statement.timestamp == datetime(2026, 9, 30, 22, 0, tzinfo=UTC)  # metadata.timestamp


@pytest.mark.parametrize(("state", "status"), sorted(CYCLONEDX_STATES.items()))
def test_every_cyclonedx_state_maps_to_an_openvex_status(state: str, status: VexStatus) -> None:
    analysis: dict[str, Any] = {"state": state, "detail": "assessed by the vendor"}
    (statement,) = parse_vex(cyclonedx([cdx_vulnerability(**analysis)], spec="1.5"))
    assert statement.status is status


@pytest.mark.parametrize(("justification", "expected"), sorted(CYCLONEDX_JUSTIFICATIONS.items()))
def test_every_cyclonedx_justification_maps_to_an_openvex_one(justification: str, expected: VexJustification) -> None:
    (statement,) = parse_vex(cyclonedx([cdx_vulnerability(state="not_affected", justification=justification)]))
    assert statement.justification is expected


def test_a_false_positive_without_detail_says_so_as_its_impact_statement() -> None:
    (statement,) = parse_vex(cyclonedx([cdx_vulnerability(state="false_positive")]))
    assert (statement.status, statement.impact_statement) == (VexStatus.NOT_AFFECTED, FALSE_POSITIVE_IMPACT)


def test_listed_versions_become_one_product_each() -> None:
    vulnerability = cdx_vulnerability("pkg:npm/lodash", state="not_affected", justification="code_not_present")
    vulnerability["affects"][0]["versions"] = [
        {"version": "4.17.20", "status": "unaffected"},
        {"version": "4.17.21"},
    ]
    (statement,) = parse_vex(cyclonedx([vulnerability]))
    assert [p.version for p in statement.products] == ["4.17.20", "4.17.21"]


# -- hostile input: rejected as a whole, naming the statement and field -------------------------------------


def test_truncated_json_names_the_line() -> None:
    data = fixture_bytes("trivy-openvex-multiple.json")
    error = rejected(data[: len(data) // 2])
    assert "not valid JSON" in str(error)
    assert error.line is not None


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        (b"[]", None, "must be a JSON object"),
        (b'{"hello": "world"}', None, "not an OpenVEX or CycloneDX VEX document"),
        (openvex(**{"@context": "https://openvex.dev/ns/v0.0.1"}), "@context", "is not supported"),
        (
            b'{"payloadType": "application/vnd.in-toto+json", "payload": "e30=", "signatures": []}',
            "payloadType",
            "does not verify",
        ),
        (
            b'{"_type": "https://in-toto.io/Statement/v0.1", "predicateType": "https://openvex.dev/ns"}',
            "predicateType",
            "signatures",
        ),
        (b'{"document": {"csaf_version": "2.0"}}', "document", "CSAF VEX is not supported"),
        (cyclonedx([cdx_vulnerability()], spec="1.3"), "specVersion", "'1.3' is not supported"),
        (b'{"bomFormat": "CycloneDX", "specVersion": "1.6", "components": []}', "vulnerabilities", "has none"),
        (openvex(statements="all of them"), "statements", "must be a list"),
    ],
)
def test_documents_of_no_known_format_are_refused(data: bytes, field: str | None, message: str) -> None:
    error = rejected(data)
    assert error.field == field
    assert message in str(error)


@pytest.mark.parametrize(
    ("statement", "field", "message"),
    [
        (
            {"products": [{"@id": "pkg:pypi/django@5.0"}], "status": "affected"},
            "statements[2].vulnerability",
            "no vulnerability",
        ),
        (not_affected(vulnerability={"name": "", "aliases": []}), "statements[2].vulnerability", "no vulnerability"),
        (not_affected(vulnerability={"name": 7}), "statements[2].vulnerability.name", "must be a string"),
        (
            {**not_affected(), "justification": None},
            "statements[2].justification",
            "needs a justification or an impact",
        ),
        (not_affected(justification="trust_me"), "statements[2].justification", "'trust_me' is not one of"),
        (not_affected(status="exploitable"), "statements[2].status", "'exploitable' is not one of"),
        (not_affected(status="affected"), "statements[2].justification", "only for not_affected"),
        (not_affected("nginx"), "statements[2].products[0].@id", "unknown product 'nginx': not a purl"),
        (not_affected("pkg:generic/openssl@3.0"), "statements[2].products[0].@id", "unknown product"),
        (not_affected("pkg:rpm/centos/bash@4.2?distro=centos-7"), "statements[2].products[0].@id", "no OSV ecosystem"),
        (not_affected("pkg:pypi/"), "statements[2].products[0].@id", "malformed purl"),
        (not_affected(products=[]), "statements[2].products", "names no product"),
        (not_affected(products=[{"subcomponents": []}]), "statements[2].products[0]", "no @id"),
        (
            not_affected(products=[{"@id": "pkg:oci/app", "subcomponents": [{"@id": "pkg:oci/base"}]}]),
            "statements[2].products[0].subcomponents[0].@id",
            "unknown product",
        ),
        (not_affected(timestamp="yesterday"), "statements[2].timestamp", "not an RFC 3339"),
        (not_affected(timestamp="2026-11-01T10:00:00"), "statements[2].timestamp", "no time zone"),
        (not_affected(impact_statement="ok\x1b[31m"), "statements[2].impact_statement", "control characters"),
        (not_affected(impact_statement="x" * 10_001), "statements[2].impact_statement", "longer than"),
        (not_affected(vulnerability={"name": "CVE-2023-5678\nCVE-1"}), "statements[2].vulnerability.name", "control"),
    ],
)
def test_one_bad_openvex_statement_refuses_the_whole_document(
    statement: dict[str, Any], field: str, message: str
) -> None:
    data = openvex(not_affected(), not_affected("pkg:pypi/django@5.2.19"), statement, not_affected())
    error = rejected(data)
    assert error.field == field
    assert f"vex.json: {field}: " in str(error)
    assert message in str(error)


@pytest.mark.parametrize(
    ("vulnerability", "field", "message"),
    [
        (
            {"affects": [{"ref": "pkg:pypi/django@5.0"}], "analysis": {"state": "exploitable"}},
            "vulnerabilities[1].id",
            "no vulnerability",
        ),
        ({**cdx_vulnerability(), "analysis": None}, "vulnerabilities[1].analysis", "must be an object"),
        (
            {"id": "CVE-2025-1", "affects": [{"ref": "pkg:pypi/django@5.0"}]},
            "vulnerabilities[1]",
            "without analysis.state",
        ),
        (
            cdx_vulnerability(state="not_affected"),
            "vulnerabilities[1].justification",
            "needs a justification or an impact",
        ),
        (cdx_vulnerability(state="wontfix"), "vulnerabilities[1].analysis.state", "'wontfix' is not one of"),
        (
            cdx_vulnerability(state="not_affected", justification="nope"),
            "vulnerabilities[1].analysis.justification",
            "not one of",
        ),
        (
            cdx_vulnerability(state="exploitable", justification="code_not_present"),
            "vulnerabilities[1].analysis.justification",
            "only for not_affected",
        ),
        (cdx_vulnerability("acme-product"), "vulnerabilities[1].affects[0].ref", "no bom-ref of this document"),
        (cdx_vulnerability("urn:cdx:abc/1#acme"), "vulnerabilities[1].affects[0].ref", "unknown product"),
        ({**cdx_vulnerability(), "affects": []}, "vulnerabilities[1].affects", "names no product"),
        (
            {
                **cdx_vulnerability(),
                "affects": [{"ref": "pkg:npm/lodash", "versions": [{"range": "vers:npm/<4.17.21"}]}],
            },
            "vulnerabilities[1].affects[0].versions[0].range",
            "ranges are not supported",
        ),
        (
            {
                **cdx_vulnerability(),
                "affects": [{"ref": "pkg:npm/lodash@4.17.21", "versions": [{"version": "4.17.20"}]}],
            },
            "vulnerabilities[1].affects[0].versions[0].version",
            "contradicts the purl's version",
        ),
        (
            cdx_vulnerability(state="not_affected", justification="code_not_present", lastUpdated="soon"),
            "vulnerabilities[1].analysis.lastUpdated",
            "not an RFC 3339",
        ),
    ],
)
def test_one_bad_cyclonedx_vulnerability_refuses_the_whole_document(
    vulnerability: dict[str, Any], field: str, message: str
) -> None:
    error = rejected(cyclonedx([cdx_vulnerability(), vulnerability]))
    assert error.field == field
    assert message in str(error)


def test_a_component_without_purl_behind_a_bom_ref_is_an_unknown_product() -> None:
    data = cyclonedx([cdx_vulnerability("lib")], components=[{"bom-ref": "lib", "name": "in-house-lib"}])
    error = rejected(data)
    assert "unknown product: 'lib' is components[0], which has no purl" in str(error)


def test_a_detached_sha256_checksum_must_match() -> None:
    data = fixture_bytes("trivy-openvex-nested.json")
    digest = hashlib.sha256(data).hexdigest()
    assert parse_vex(data, sha256=digest.upper()) == parse_vex(data)
    assert len(parse_vex(data, sha256=f"{digest}  trivy-openvex-nested.json\n")) == 1  # a sha256sum line
    with pytest.raises(InvalidImport, match="nothing was imported") as caught:
        parse_vex(data + b" ", source="nested.json", sha256=digest)
    assert caught.value.field == "sha256"
    with pytest.raises(InvalidImport, match="not 64 hexadecimal digits"):
        parse_vex(data, sha256="md5:abc")


def test_oversized_documents_are_refused_before_parsing() -> None:
    with pytest.raises(InvalidImport, match="at most 100 are accepted"):
        parse_vex(fixture_bytes("trivy-openvex-nested.json"), max_bytes=100)
    with pytest.raises(InvalidImport, match="more than 1 statements") as caught:
        parse_vex(openvex(not_affected(), not_affected()), max_statements=1)
    assert caught.value.field == "statements"


def test_read_vex_takes_an_already_decoded_document() -> None:
    document = json.loads(fixture_bytes("trivy-openvex-nested.json"))
    assert read_vex(document, source="x") == parse_vex(fixture_bytes("trivy-openvex-nested.json"))


# -- what suppresses a finding ------------------------------------------------------------------------------


def test_a_not_affected_product_suppresses_the_same_package_and_version() -> None:
    (statement,) = parse_vex(openvex(not_affected()))  # openssl 3.0.11-1~deb12u2 on Debian 12
    assert suppresses(statement, "Debian:12", "openssl", "3.0.11-1~deb12u2")
    assert suppresses(statement, "Debian:12", "openssl", "0:3.0.11-1~deb12u2")  # equal under dpkg
    assert not suppresses(statement, "Debian:12", "openssl", "3.0.11-1~deb12u3")
    assert not suppresses(statement, "Debian:11", "openssl", "3.0.11-1~deb12u2")
    assert not suppresses(statement, "Debian:12", "libssl3", "3.0.11-1~deb12u2")
    assert not suppresses(replace(statement, status=VexStatus.AFFECTED), "Debian:12", "openssl", "3.0.11-1~deb12u2")


def test_a_product_without_version_or_release_covers_every_version_and_release() -> None:
    (statement,) = parse_vex(openvex(not_affected("pkg:deb/debian/openssl")))
    assert suppresses(statement, "Debian:12", "openssl", "3.0.15-1~deb12u1")
    assert suppresses(statement, "Debian:11", "openssl", "1.1.1w-0+deb11u1")
    assert not suppresses(statement, "Ubuntu:22.04:LTS", "openssl", "3.0.2-0ubuntu1.18")


def test_a_subcomponent_of_another_product_does_not_suppress_a_host_finding() -> None:
    (statement,) = parse_vex(fixture_bytes("trivy-openvex-nested.json"))
    assert not suppresses(statement, "Go", "github.com/aquasecurity/go-transitive", "4.0.0")


# -- export -------------------------------------------------------------------------------------------------


def product_order(product: VexProduct) -> tuple[str, str, str, str, str]:
    return (product.within, product.ecosystem, product.name, product.version or "", product.purl)


def fleet_statements() -> list[VexStatement]:
    base = VexStatement(
        vulnerability="CVE-2024-6119",
        products=(vex_product("Debian:12", "libssl3", "3.0.11-1~deb12u2"),),
        status=VexStatus.NOT_AFFECTED,
        justification=VexJustification.VULNERABLE_CODE_NOT_IN_EXECUTE_PATH,
        impact_statement="",
        source_format="OpenVEX 0.2.0",
        timestamp=datetime(2026, 11, 2, 8, 0, tzinfo=UTC),
    )
    products = (
        vex_product("Alpine:v3.19", "musl", "1.2.4_git20230717-r4"),
        vex_product("AlmaLinux:9", "openssl-libs", "1:3.0.7-27.el9"),
        vex_product("Go", "stdlib", "1.21.0"),
        vex_product("Maven", "org.apache.logging.log4j:log4j-core", "2.14.1"),
        vex_product("PyPI", "django", None),
        vex_product("Rocky Linux:9", "bash", "5.1.8-9.el9"),
        vex_product("Ubuntu:22.04:LTS", "libstdc++6", "12.3.0-1ubuntu1~22.04"),
        vex_product("npm", "@angular/core", "17.0.1"),
    )
    return [
        base,
        replace(
            base,
            vulnerability="CVE-2021-44228",
            aliases=("GHSA-jfh8-c2jp-5v3q",),
            products=products,
            justification=None,
            impact_statement="JndiLookup.class is removed from the jar at build time.",
            timestamp=None,
        ),
        replace(base, impact_statement="Checked by the platform team.", aliases=("DSA-5764-1",)),
        replace(
            base,
            vulnerability="CVE-2025-0001",
            products=(
                vex_product("Go", "golang.org/x/net", "0.30.0", within="pkg:oci/app?tag=v1"),
                vex_product("Red Hat", "bash", None),
            ),
            status=VexStatus.AFFECTED,
            justification=None,
            action_statement="Upgrade to 0.33.0.",
        ),
        replace(base, vulnerability="CVE-2025-0002", status=VexStatus.FIXED, justification=None),
        replace(base, vulnerability="CVE-2025-0003", status=VexStatus.UNDER_INVESTIGATION, justification=None),
    ]


def test_export_is_a_valid_openvex_document_with_purls_from_ecosystem_name_and_version() -> None:
    document = openvex_document(fleet_statements(), "patchday@example.com", NOW, "https://patchday.example/vex/1")
    assert schema_errors(document) == []
    assert document["@context"] == "https://openvex.dev/ns/v0.2.0"
    assert document["timestamp"] == "2026-11-28T09:30:00Z"
    first = document["statements"][0]
    assert first["products"] == [{"@id": "pkg:deb/debian/libssl3@3.0.11-1~deb12u2?distro=debian-12"}]
    purls = {p["@id"] for p in document["statements"][1]["products"]}
    assert {
        "pkg:apk/alpine/musl@1.2.4_git20230717-r4?distro=alpine-3.19",
        "pkg:rpm/almalinux/openssl-libs@3.0.7-27.el9?distro=almalinux-9&epoch=1",
        "pkg:golang/stdlib@v1.21.0",
        "pkg:pypi/django",
        "pkg:deb/ubuntu/libstdc%2B%2B6@12.3.0-1ubuntu1~22.04?distro=ubuntu-22.04",
        "pkg:npm/%40angular/core@17.0.1",
    } <= purls
    nested = document["statements"][3]["products"]
    assert {"@id": "pkg:oci/app?tag=v1", "subcomponents": [{"@id": "pkg:golang/golang.org/x/net@v0.30.0"}]} in nested
    both = document["statements"][2]
    assert (both["justification"], both["status_notes"]) == (
        "vulnerable_code_not_in_execute_path",
        "Checked by the platform team.",
    )
    assert "impact_statement" not in both  # the schema allows one of justification and impact statement


def test_export_then_parse_gives_the_same_statements() -> None:
    statements = fleet_statements()
    document = openvex_document(statements, "patchday@example.com", NOW, "https://patchday.example/vex/1")
    parsed = parse_vex(json.dumps(document).encode(), source="export.json")
    expected = [
        replace(s, timestamp=s.timestamp or NOW, products=tuple(sorted(s.products, key=product_order)))
        for s in statements
    ]  # the document's time stands in for none; products come back in one order
    assert list(parsed) == expected


def test_imported_cyclonedx_statements_export_and_read_back_alike() -> None:
    imported = parse_vex(fixture_bytes("cyclonedx-bom-examples-vex.trimmed.json"))
    document = openvex_document(imported, "patchday", NOW, "urn:uuid:0b8c2a44-9a1f-4a53-9d0e-6c1bd2f3a001")
    assert schema_errors(document) == []
    (again,) = parse_vex(json.dumps(document).encode())
    product = replace(imported[0].products[0], purl="pkg:maven/com.fasterxml.jackson.core/jackson-databind@2.10.0")
    assert again == replace(imported[0], source_format="OpenVEX 0.2.0", timestamp=NOW, products=(product,))


def test_an_affected_statement_without_action_gets_the_default_one() -> None:
    (statement,) = parse_vex(fixture_bytes("trivy-repo-openssl-vex.json"))
    document = openvex_document([statement, statement], "patchday", NOW, "https://patchday.example/vex/2")
    assert schema_errors(document) == []
    assert len(document["statements"]) == 1  # identical statements once (the schema wants unique items)
    assert document["statements"][0]["action_statement"] == DEFAULT_ACTION


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"justification": None}, "without a justification or impact statement"),
        ({"status": VexStatus.FIXED}, "has a justification but is fixed"),
        ({"products": ()}, "has no products"),
    ],
)
def test_export_refuses_statements_openvex_would_not_accept(change: dict[str, Any], message: str) -> None:
    statement = replace(fleet_statements()[0], **change)
    with pytest.raises(InvalidInput, match=message):
        openvex_document([statement], "patchday", NOW, "https://patchday.example/vex/3")


def test_export_needs_statements_an_author_and_an_aware_timestamp() -> None:
    with pytest.raises(InvalidInput, match="at least one statement"):
        openvex_document([], "patchday", NOW, "https://patchday.example/vex/4")
    with pytest.raises(InvalidInput, match="timezone-aware"):
        openvex_document(fleet_statements(), "patchday", datetime(2026, 11, 28), "https://patchday.example/vex/4")
    with pytest.raises(InvalidInput, match="author"):
        openvex_document(fleet_statements(), " ", NOW, "https://patchday.example/vex/4")
    with pytest.raises(InvalidInput, match="no purl"):
        vex_product("", "bash", "5.1")


# -- scale --------------------------------------------------------------------------------------------------


def test_ten_thousand_statements_parse_quickly() -> None:
    statements = [
        not_affected(
            f"pkg:deb/debian/package{index % 2000}@1.{index}-1?distro=debian-12",
            vulnerability={"name": f"CVE-2025-{10000 + index}"},
        )
        for index in range(10_000)
    ]
    data = openvex(*statements)
    started = time.perf_counter()
    parsed = parse_vex(data)
    elapsed = time.perf_counter() - started
    assert len(parsed) == 10_000
    assert parsed[-1].vulnerability == "CVE-2025-19999"
    assert elapsed < 2.0, f"10,000 statements took {elapsed:.2f} s"


# -- the reverse purl mapping export relies on --------------------------------------------------------------


@pytest.mark.parametrize(
    ("ecosystem", "name", "version"),
    [
        ("Debian:12", "zlib1g", "1:1.2.13.dfsg-1"),
        ("Debian", "openssl", None),
        ("Ubuntu:24.10", "bash", "5.2.32-1ubuntu1"),
        ("Rocky Linux:9", "openssl-libs", "1:3.0.7-24.el9"),
        ("Red Hat", "bash", "5.1.8-6.el9"),
        ("openSUSE", "bash", "5.2.15-150500.1.1"),
        ("SUSE", "bash", None),
        ("Go", "github.com/gorilla/mux", "1.8.0"),
        ("Packagist", "laravel/framework", "v7.12.0"),
        ("SwiftURL", "github.com/apple/swift-nio", "2.62.0"),
        ("crates.io", "serde", "1.0.190"),
    ],
)
def test_purl_for_reads_back_as_the_same_package(ecosystem: str, name: str, version: str | None) -> None:
    found = read_purl(purl_for(ecosystem, name, version), versioned=False)
    assert (found.ecosystem, found.name, found.version or None) == (ecosystem, name, version)


@pytest.mark.parametrize("ecosystem", ["", "CentOS", "Red Hat:rhel_aus:8.4::appstream", "Debian:bookworm"])
def test_purl_for_refuses_ecosystems_it_would_write_wider(ecosystem: str) -> None:
    with pytest.raises(UnusablePurl):
        purl_for(ecosystem, "bash", "5.1")
