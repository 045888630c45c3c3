"""VEX imports and export: OpenVEX 0.2.0 and CycloneDX (1.4-1.6) VEX JSON to VexStatements, and back to OpenVEX.

A VEX statement says whether a vulnerability applies to a product: `not_affected` (with a justification or an
impact statement), `affected`, `fixed` or `under_investigation`. CycloneDX analysis states and justifications
are mapped onto these OpenVEX terms (tables in docs/vex.md). Products must be purls that map to an OSV
ecosystem (patchday.connectors.imports.purl): a document naming anything else, or not fitting its format in
any statement, raises InvalidImport naming the file, the statement and the field, and nothing of it is used.
Signatures are not verified (docs/vex.md); a detached SHA-256 checksum can be checked.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

from patchday.connectors.imports.decoding import check_size, load_json
from patchday.connectors.imports.purl import UnusablePurl, purl_for, read_purl
from patchday.connectors.imports.sbom import CYCLONEDX_VERSIONS, MAX_DEPTH
from patchday.core.errors import InvalidImport, InvalidInput, InvalidVersion
from patchday.core.osv import ecosystem_family, scheme_for

MAX_BYTES: Final = 32 * 1024 * 1024
MAX_STATEMENTS: Final = 100_000
MAX_PRODUCTS: Final = 200_000  # products and subcomponents of the whole document
MAX_ID: Final = 255  # vulnerability ids and aliases
MAX_TEXT: Final = 10_000  # impact and action statements
OPENVEX_CONTEXT: Final = "https://openvex.dev/ns/v0.2.0"
# vexctl and trivy also write the unversioned context for documents of the 0.2.0 shape.
OPENVEX_CONTEXTS: Final = frozenset({OPENVEX_CONTEXT, "https://openvex.dev/ns"})
OPENVEX_FORMAT: Final = "OpenVEX 0.2.0"
_CVE: Final = re.compile(r"CVE-\d{4}-\d{4,}", re.IGNORECASE)
_TEXT_CONTROL: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # free text may hold \t, \n, \r
_ID_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")
_SHA256: Final = re.compile(r"^(?P<digest>[0-9a-fA-F]{64})(?:\s+\*?\S.*)?$")


class VexStatus(StrEnum):
    """OpenVEX statuses; CycloneDX analysis states are mapped onto them."""

    NOT_AFFECTED = "not_affected"
    AFFECTED = "affected"
    FIXED = "fixed"
    UNDER_INVESTIGATION = "under_investigation"


class VexJustification(StrEnum):
    """OpenVEX justifications for `not_affected`; CycloneDX justifications are mapped onto them."""

    COMPONENT_NOT_PRESENT = "component_not_present"
    VULNERABLE_CODE_NOT_PRESENT = "vulnerable_code_not_present"
    VULNERABLE_CODE_NOT_IN_EXECUTE_PATH = "vulnerable_code_not_in_execute_path"
    VULNERABLE_CODE_CANNOT_BE_CONTROLLED_BY_ADVERSARY = "vulnerable_code_cannot_be_controlled_by_adversary"
    INLINE_MITIGATIONS_ALREADY_EXIST = "inline_mitigations_already_exist"


# CycloneDX analysis.state -> OpenVEX status (the same table as trivy's pkg/vex/cyclonedx.go).
CYCLONEDX_STATES: Final[Mapping[str, VexStatus]] = {
    "not_affected": VexStatus.NOT_AFFECTED,
    "false_positive": VexStatus.NOT_AFFECTED,
    "exploitable": VexStatus.AFFECTED,
    "resolved": VexStatus.FIXED,
    "resolved_with_pedigree": VexStatus.FIXED,
    "in_triage": VexStatus.UNDER_INVESTIGATION,
}
# CycloneDX analysis.justification -> the nearest OpenVEX justification (docs/vex.md says why).
CYCLONEDX_JUSTIFICATIONS: Final[Mapping[str, VexJustification]] = {
    "code_not_present": VexJustification.VULNERABLE_CODE_NOT_PRESENT,
    "code_not_reachable": VexJustification.VULNERABLE_CODE_NOT_IN_EXECUTE_PATH,
    "requires_configuration": VexJustification.VULNERABLE_CODE_CANNOT_BE_CONTROLLED_BY_ADVERSARY,
    "requires_dependency": VexJustification.VULNERABLE_CODE_CANNOT_BE_CONTROLLED_BY_ADVERSARY,
    "requires_environment": VexJustification.VULNERABLE_CODE_CANNOT_BE_CONTROLLED_BY_ADVERSARY,
    "protected_by_compiler": VexJustification.INLINE_MITIGATIONS_ALREADY_EXIST,
    "protected_at_runtime": VexJustification.INLINE_MITIGATIONS_ALREADY_EXIST,
    "protected_at_perimeter": VexJustification.INLINE_MITIGATIONS_ALREADY_EXIST,
    "protected_by_mitigating_control": VexJustification.INLINE_MITIGATIONS_ALREADY_EXIST,
}
# OpenVEX's schema wants an action statement on every affected statement.
DEFAULT_ACTION: Final = "No remediation was recorded with this statement; apply the fix version the advisory names."
FALSE_POSITIVE_IMPACT: Final = "The vulnerability was reported in error (CycloneDX analysis.state false_positive)."
# CycloneDX affects[].versions[].status values that contradict a statement's status.
_CONTRADICTING: Final[Mapping[VexStatus, frozenset[str]]] = {
    VexStatus.NOT_AFFECTED: frozenset({"affected"}),
    VexStatus.FIXED: frozenset({"affected"}),
    VexStatus.AFFECTED: frozenset({"unaffected"}),
    VexStatus.UNDER_INVESTIGATION: frozenset(),
}


@dataclass(frozen=True, slots=True)
class VexProduct:
    """A package a statement is about, as advisories name it: OSV `ecosystem` ("Debian:12", or the family
    "Debian" when the purl names no release), `name`, `version` (None: every version) and the `purl`.

    `within` is "" for a product itself; for an OpenVEX subcomponent it is the product (a purl or other
    IRI, e.g. an OCI image) the package ships in, and the statement holds only there.
    """

    ecosystem: str
    name: str
    version: str | None
    purl: str
    within: str = ""

    def covers(self, ecosystem: str, name: str, version: str) -> bool:
        """Whether this product names the package `name` at `version` in `ecosystem`: the same ecosystem
        (or this product's family alone: "Debian" covers "Debian:12"), the same name, and the same version
        under the ecosystem's version scheme when this product gives one ("1.0" equals "0:1.0" for dpkg)."""
        if self.name != name:
            return False
        if self.ecosystem != ecosystem and not (
            ":" not in self.ecosystem and self.ecosystem == ecosystem_family(ecosystem)
        ):
            return False
        return self.version is None or _same_version(ecosystem, self.version, version)


@dataclass(frozen=True, slots=True)
class VexStatement:
    """One VEX statement: `vulnerability` (a CVE id, upper case, when the document names one; else its id as
    written), its other ids in `aliases`, the `products` (sorted, no duplicates), the OpenVEX `status`, and
    for not_affected a `justification` and/or `impact_statement`. `source_format` is "OpenVEX 0.2.0" or
    "CycloneDX 1.5"; `timestamp` (aware, UTC) is the statement's, else the document's, else None."""

    vulnerability: str
    products: tuple[VexProduct, ...]
    status: VexStatus
    justification: VexJustification | None
    impact_statement: str
    source_format: str
    timestamp: datetime | None
    aliases: tuple[str, ...] = ()
    action_statement: str = ""


def vex_product(ecosystem: str, name: str, version: str | None, *, within: str = "") -> VexProduct:
    """A VexProduct for a package patchday knows, its purl written by purl_for. Raises InvalidInput when
    the ecosystem has no purl (it could not be exported)."""
    try:
        purl = purl_for(ecosystem, name, version)
    except UnusablePurl as exc:
        raise InvalidInput(f"no purl for {ecosystem} {name}: {exc}", field="ecosystem") from None
    return VexProduct(ecosystem=ecosystem, name=name, version=version or None, purl=purl, within=within)


def suppresses(statement: VexStatement, ecosystem: str, name: str, version: str) -> bool:
    """Whether `statement` suppresses a finding on package `name` `version` in `ecosystem`: it is
    not_affected and one of its own products (not a subcomponent of another product) covers the package.
    The caller checks that the finding's vulnerability is the statement's or one of its aliases."""
    if statement.status is not VexStatus.NOT_AFFECTED:
        return False
    return any(not product.within and product.covers(ecosystem, name, version) for product in statement.products)


# -- entry points ---------------------------------------------------------------------------------------


def parse_vex(
    data: bytes,
    *,
    source: str = "VEX",
    sha256: str | None = None,
    max_bytes: int = MAX_BYTES,
    max_statements: int = MAX_STATEMENTS,
) -> tuple[VexStatement, ...]:
    """The statements of an OpenVEX or CycloneDX VEX JSON file, in document order.

    `sha256` is a detached checksum (64 hex digits, or a `sha256sum` line) the file must match. Raises
    InvalidImport naming `source`, the statement and the field; a refused file yields no statements.
    """
    check_size(data, max_bytes, source)
    if sha256 is not None:
        check_sha256(data, sha256, source)
    return read_vex(load_json(data, source), source=source, max_statements=max_statements)


def read_vex(
    document: object, *, source: str = "VEX", max_statements: int = MAX_STATEMENTS
) -> tuple[VexStatement, ...]:
    """Like parse_vex, for a document already decoded from JSON."""
    if not isinstance(document, Mapping):
        raise InvalidImport("a VEX document must be a JSON object", source=source)
    reader = _Reader(source)
    if "@context" in document:
        context = document["@context"]
        if isinstance(context, str) and context in OPENVEX_CONTEXTS:
            return reader.openvex(document, max_statements)
        if isinstance(context, str) and context.startswith("https://openvex.dev/ns"):
            raise InvalidImport(
                f"OpenVEX context {context!r} is not supported; use {OPENVEX_CONTEXT}",
                source=source,
                field="@context",
            )
    if document.get("bomFormat") == "CycloneDX":
        return reader.cyclonedx(document, max_statements)
    if ("payloadType" in document and "payload" in document) or "predicateType" in document:
        raise InvalidImport(
            "a signed envelope or in-toto attestation: patchday does not verify VEX signatures; "
            "verify it (e.g. cosign verify-attestation) and upload the OpenVEX document it carries",
            source=source,
            field="payloadType" if "payloadType" in document else "predicateType",
        )
    if isinstance(document.get("document"), Mapping) and "csaf_version" in document["document"]:
        raise InvalidImport("CSAF VEX is not supported; use OpenVEX or CycloneDX VEX", source=source, field="document")
    raise InvalidImport("not an OpenVEX or CycloneDX VEX document (no OpenVEX @context, no bomFormat)", source=source)


def check_sha256(data: bytes, checksum: str, source: str = "VEX") -> None:
    """Raise InvalidImport unless `data` has the SHA-256 digest `checksum` (64 hex digits, optionally
    followed by a file name as `sha256sum` prints). This proves the file is the one the checksum was
    made for, not who wrote it."""
    found = _SHA256.match(checksum.strip())
    if found is None:
        raise InvalidImport("the SHA-256 checksum is not 64 hexadecimal digits", source=source, field="sha256")
    actual = hashlib.sha256(data).hexdigest()
    if not hmac.compare_digest(actual, found["digest"].lower()):
        raise InvalidImport(
            f"the file's SHA-256 is {actual}, not the expected {found['digest'].lower()}; nothing was imported",
            source=source,
            field="sha256",
        )


# -- export -----------------------------------------------------------------------------------------------


def openvex_document(
    statements: Iterable[VexStatement], author: str, timestamp: datetime, doc_id: str
) -> dict[str, Any]:
    """An OpenVEX 0.2.0 document of `statements` (JSON-ready: strings, lists, dicts), by `author`,
    issued at `timestamp` (aware), with the IRI `doc_id`. Products are purls written from (ecosystem, name,
    version) by purl_for, subcomponents under the product they ship in. The document passes OpenVEX's JSON
    schema, which allows a justification *or* an impact statement: with both, the impact statement is written
    as `status_notes` (read back as the impact statement); an affected statement without an action statement
    gets DEFAULT_ACTION. Otherwise parse_vex reads it back as the same statements (source_format "OpenVEX
    0.2.0"; Ubuntu Pro products come back as the plain release); identical statements are written once.

    Raises InvalidInput for what OpenVEX would not accept: no statements, not_affected with neither
    justification nor impact statement, a justification on another status, no products, a naive timestamp.
    """
    if timestamp.tzinfo is None:
        raise InvalidInput("the document timestamp must be timezone-aware", field="timestamp")
    if not author.strip() or not doc_id.strip():
        raise InvalidInput("an OpenVEX document needs an author and an @id", field="author" if not author else "@id")
    written: list[dict[str, Any]] = []
    for index, statement in enumerate(dict.fromkeys(statements)):
        written.append(_openvex_statement(statement, index))
    if not written:
        raise InvalidInput("an OpenVEX document needs at least one statement", field="statements")
    return {
        "@context": OPENVEX_CONTEXT,
        "@id": doc_id,
        "author": author,
        "timestamp": _rfc3339(timestamp),
        "version": 1,
        "tooling": "patchday",
        "statements": written,
    }


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _export_purl(product: VexProduct) -> str:
    try:
        return purl_for(product.ecosystem, product.name, product.version)
    except UnusablePurl:
        if product.purl:  # imported from a purl whose ecosystem purl_for cannot write back
            return product.purl
        raise InvalidInput(
            f"no purl for {product.ecosystem or 'an unknown ecosystem'} {product.name}", field="products"
        ) from None


def _openvex_statement(statement: VexStatement, index: int) -> dict[str, Any]:
    where = f"statements[{index}]"
    if not statement.products:
        raise InvalidInput(f"{where} has no products", field=f"{where}.products")
    if statement.status is VexStatus.NOT_AFFECTED and not (statement.justification or statement.impact_statement):
        raise InvalidInput(f"{where} is not_affected without a justification or impact statement", field=where)
    if statement.justification is not None and statement.status is not VexStatus.NOT_AFFECTED:
        raise InvalidInput(f"{where} has a justification but is {statement.status}", field=where)
    vulnerability: dict[str, Any] = {"name": statement.vulnerability}
    if statement.aliases:
        vulnerability["aliases"] = list(statement.aliases)
    products: list[dict[str, Any]] = []
    parents: dict[str, list[dict[str, Any]]] = {}
    for product in statement.products:
        entry = {"@id": _export_purl(product)}
        if not product.within:
            products.append(entry)
        elif product.within in parents:
            parents[product.within].append(entry)
        else:
            parents[product.within] = [entry]
            products.append({"@id": product.within, "subcomponents": parents[product.within]})
    written: dict[str, Any] = {"vulnerability": vulnerability}
    if statement.timestamp is not None:
        written["timestamp"] = _rfc3339(statement.timestamp)
    written["products"] = products
    written["status"] = str(statement.status)
    if statement.justification is not None:
        written["justification"] = str(statement.justification)
        if statement.impact_statement:  # the schema allows one of the two (oneOf)
            written["status_notes"] = statement.impact_statement
    elif statement.impact_statement:
        written["impact_statement"] = statement.impact_statement
    if statement.action_statement:
        written["action_statement"] = statement.action_statement
    elif statement.status is VexStatus.AFFECTED:
        written["action_statement"] = DEFAULT_ACTION
    return written


# -- reading ----------------------------------------------------------------------------------------------


def _same_version(ecosystem: str, ours: str, theirs: str) -> bool:
    if ours == theirs:
        return True
    scheme = scheme_for(ecosystem)
    if scheme is None:
        return False
    try:
        return scheme.compare(ours, theirs) == 0
    except InvalidVersion:
        return False


class _Reader:
    """One document's reading: the file name for messages, products counted, purls mapped once each."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.products = 0
        self.mapped: dict[str, tuple[str, str, str]] = {}

    def fail(self, message: str, field: str) -> InvalidImport:
        return InvalidImport(f"{field}: {message}", source=self.source, field=field)

    # -- values

    def text(self, item: Mapping[str, Any], key: str, where: str, *, limit: int = MAX_TEXT) -> str:
        return self.checked(item.get(key), f"{where}.{key}", limit)

    def checked(self, value: object, field: str, limit: int) -> str:
        """`value` as stripped text ("" for None); ids (limit MAX_ID) may not hold line breaks either."""
        if value is None:
            return ""
        if not isinstance(value, str):
            raise self.fail("must be a string", field)
        if len(value) > limit:
            raise self.fail(f"is longer than {limit} characters", field)
        if (_ID_CONTROL if limit == MAX_ID else _TEXT_CONTROL).search(value):
            raise self.fail("contains control characters", field)
        return value.strip()

    def timestamp(self, item: Mapping[str, Any], key: str, where: str) -> datetime | None:
        value = self.text(item, key, where, limit=MAX_ID)
        if not value:
            return None
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise self.fail(f"{value!r} is not an RFC 3339 date and time", f"{where}.{key}") from None
        if moment.tzinfo is None:
            raise self.fail(f"{value!r} has no time zone", f"{where}.{key}")
        return moment.astimezone(UTC)

    def mapping(self, value: object, field: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail("must be an object", field)
        return value

    def items(self, value: object, field: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail("must be a list", field)
        return value

    def product(self, purl: str, field: str, *, within: str = "", version: str | None = None) -> VexProduct:
        """The package `purl` names ("unknown product" unless it maps to an OSV ecosystem)."""
        self.products += 1
        if self.products > MAX_PRODUCTS:
            raise self.fail(f"more than {MAX_PRODUCTS} products; split the document", field)
        mapped = self.mapped.get(purl)
        if mapped is None:
            if not purl.startswith("pkg:"):
                raise self.fail(f"unknown product {purl!r}: not a purl", field)
            try:
                found = read_purl(purl, versioned=False)
            except UnusablePurl as exc:
                raise self.fail(f"unknown product {purl!r}: {exc}", field) from None
            if not found.ecosystem:
                raise self.fail(f"unknown product {purl!r}: no OSV ecosystem for this distribution", field)
            mapped = self.mapped[purl] = (found.ecosystem, found.name, found.version)
        ecosystem, name, own_version = mapped
        if version is not None and own_version and version != own_version:
            raise self.fail(f"version {version!r} contradicts the purl's version {own_version!r}", field)
        return VexProduct(ecosystem, name, version or own_version or None, purl, within)

    def vulnerability(self, names: Sequence[str], field: str) -> tuple[str, tuple[str, ...]]:
        """(the CVE among `names`, else the first name; the other names) with duplicates dropped."""
        ids = [name for name in dict.fromkeys(names) if name]
        if not ids:
            raise self.fail("the statement names no vulnerability", field)
        cve = next((name.upper() for name in ids if _CVE.fullmatch(name)), None)
        chosen = cve or ids[0]
        aliases = tuple(dict.fromkeys(name for name in ids if name.upper() != chosen.upper()))
        return chosen, aliases

    def statement(
        self,
        where: str,
        *,
        names: Sequence[str],
        products: list[VexProduct],
        status: VexStatus,
        justification: VexJustification | None,
        impact: str,
        action: str,
        source_format: str,
        timestamp: datetime | None,
    ) -> VexStatement:
        vulnerability, aliases = self.vulnerability(names, f"{where}.vulnerability")
        if status is VexStatus.NOT_AFFECTED and justification is None and not impact:
            raise self.fail("not_affected needs a justification or an impact statement", f"{where}.justification")
        unique = sorted(set(products), key=lambda p: (p.within, p.ecosystem, p.name, p.version or "", p.purl))
        return VexStatement(
            vulnerability=vulnerability,
            products=tuple(unique),
            status=status,
            justification=justification,
            impact_statement=impact,
            source_format=source_format,
            timestamp=timestamp,
            aliases=aliases,
            action_statement=action,
        )

    # -- OpenVEX

    def openvex(self, document: Mapping[str, Any], limit: int) -> tuple[VexStatement, ...]:
        default_time = self.timestamp(document, "timestamp", "document")
        statements = self.items(document.get("statements"), "statements")
        if len(statements) > limit:
            raise self.fail(f"more than {limit} statements; split the document", "statements")
        return tuple(self.openvex_statement(raw, f"statements[{i}]", default_time) for i, raw in enumerate(statements))

    def openvex_statement(self, raw: object, where: str, default_time: datetime | None) -> VexStatement:
        item = self.mapping(raw, where)
        if "vulnerability" not in item:
            raise self.fail("the statement names no vulnerability", f"{where}.vulnerability")
        if isinstance(item["vulnerability"], str):  # OpenVEX 0.0.1 wrote a bare string
            raise self.fail(
                'must be an object ({"name": "CVE-..."}) as OpenVEX 0.2.0 writes it; this is OpenVEX 0.0.1',
                f"{where}.vulnerability",
            )
        vulnerability = self.mapping(item["vulnerability"], f"{where}.vulnerability")
        vwhere = f"{where}.vulnerability"
        names = [self.text(vulnerability, "name", vwhere, limit=MAX_ID)]
        iri = self.text(vulnerability, "@id", vwhere, limit=MAX_ID)
        found = _CVE.search(iri)
        if found and found.end() == len(iri):  # https://nvd.nist.gov/vuln/detail/CVE-2021-44228
            names.append(found.group(0))
        elif iri and "://" not in iri:
            names.append(iri)
        for index, alias in enumerate(self.items(vulnerability.get("aliases", []), f"{vwhere}.aliases")):
            names.append(self.checked(alias, f"{vwhere}.aliases[{index}]", MAX_ID))
        status_text = self.text(item, "status", where, limit=MAX_ID)
        try:
            status = VexStatus(status_text)
        except ValueError:
            known = ", ".join(VexStatus)
            raise self.fail(f"{status_text!r} is not one of {known}", f"{where}.status") from None
        justification: VexJustification | None = None
        text = self.text(item, "justification", where, limit=MAX_ID)
        if text:
            try:
                justification = VexJustification(text)
            except ValueError:
                known = ", ".join(VexJustification)
                raise self.fail(f"{text!r} is not one of {known}", f"{where}.justification") from None
            if status is not VexStatus.NOT_AFFECTED:
                raise self.fail(f"a justification is only for not_affected, not {status}", f"{where}.justification")
        products = [
            product
            for index, raw_product in enumerate(self.items(item.get("products"), f"{where}.products"))
            for product in self.openvex_products(raw_product, f"{where}.products[{index}]")
        ]
        if not products:
            raise self.fail("the statement names no product", f"{where}.products")
        return self.statement(
            where,
            names=names,
            products=products,
            status=status,
            justification=justification,
            impact=self.text(item, "impact_statement", where)
            or (self.text(item, "status_notes", where) if justification is not None else ""),
            action=self.text(item, "action_statement", where),
            source_format=OPENVEX_FORMAT,
            timestamp=self.timestamp(item, "timestamp", where) or default_time,
        )

    def openvex_identifier(self, item: Mapping[str, Any], where: str) -> str:
        """The purl of a product or subcomponent: identifiers.purl, else @id."""
        identifiers = item.get("identifiers")
        if identifiers is not None:
            purl = self.text(self.mapping(identifiers, f"{where}.identifiers"), "purl", f"{where}.identifiers")
            if purl:
                return purl
        return self.text(item, "@id", where)

    def openvex_products(self, raw: object, where: str) -> Iterator[VexProduct]:
        item = self.mapping(raw, where)
        identifier = self.openvex_identifier(item, where)
        if not identifier:
            raise self.fail("unknown product: no @id and no identifiers.purl", where)
        subcomponents = item.get("subcomponents")
        if not subcomponents:
            yield self.product(identifier, f"{where}.@id")
            return
        for index, raw_sub in enumerate(self.items(subcomponents, f"{where}.subcomponents")):
            swhere = f"{where}.subcomponents[{index}]"
            purl = self.openvex_identifier(self.mapping(raw_sub, swhere), swhere)
            if not purl:
                raise self.fail("unknown product: no @id and no identifiers.purl", swhere)
            yield self.product(purl, f"{swhere}.@id", within=identifier)

    # -- CycloneDX

    def cyclonedx(self, document: Mapping[str, Any], limit: int) -> tuple[VexStatement, ...]:
        spec = document.get("specVersion")
        if spec not in CYCLONEDX_VERSIONS:
            raise self.fail(f"CycloneDX {spec!r} is not supported; use {', '.join(CYCLONEDX_VERSIONS)}", "specVersion")
        source_format = f"CycloneDX {spec}"
        metadata = self.mapping(document.get("metadata", {}), "metadata")
        default_time = self.timestamp(metadata, "timestamp", "metadata")
        refs: dict[str, tuple[str, str]] = {}  # bom-ref -> (where, purl)
        subject = metadata.get("component")
        if subject is not None:
            self.collect_refs([subject], "metadata.component", 0, refs)
        self.collect_refs(document.get("components", []), "components", 0, refs)
        if "vulnerabilities" not in document:
            raise self.fail("a CycloneDX VEX document lists vulnerabilities; this one has none", "vulnerabilities")
        vulnerabilities = self.items(document["vulnerabilities"], "vulnerabilities")
        if len(vulnerabilities) > limit:
            raise self.fail(f"more than {limit} vulnerabilities; split the document", "vulnerabilities")
        return tuple(
            self.cyclonedx_statement(raw, f"vulnerabilities[{i}]", refs, source_format, default_time)
            for i, raw in enumerate(vulnerabilities)
        )

    def collect_refs(self, components: object, where: str, depth: int, refs: dict[str, tuple[str, str]]) -> None:
        if depth > MAX_DEPTH:
            raise self.fail(f"components nest more than {MAX_DEPTH} levels deep", where)
        single = where == "metadata.component"
        for index, raw in enumerate(self.items(components, where)):
            here = where if single else f"{where}[{index}]"
            component = self.mapping(raw, here)
            ref = self.text(component, "bom-ref", here, limit=MAX_TEXT)
            if ref:
                refs.setdefault(ref, (here, self.text(component, "purl", here, limit=MAX_TEXT)))
            if component.get("components") is not None:
                self.collect_refs(component["components"], f"{here}.components", depth + 1, refs)

    def resolve(self, ref: str, field: str, refs: Mapping[str, tuple[str, str]]) -> str:
        """The purl an affects[].ref names: a bom-ref of this document, a BOM-Link
        (urn:cdx:SERIAL/VERSION#BOM-REF) whose bom-ref is here or is itself a purl, or a purl."""
        if ref.startswith("urn:cdx:") and "#" in ref:
            ref = ref.split("#", 1)[1]
        if ref in refs:
            where, purl = refs[ref]
            if not purl:
                raise self.fail(f"unknown product: {ref!r} is {where}, which has no purl", field)
            return purl
        if ref.startswith("pkg:"):
            return ref
        raise self.fail(f"unknown product: {ref!r} is no bom-ref of this document and not a purl", field)

    def cyclonedx_statement(
        self,
        raw: object,
        where: str,
        refs: Mapping[str, tuple[str, str]],
        source_format: str,
        default_time: datetime | None,
    ) -> VexStatement:
        item = self.mapping(raw, where)
        names = [self.text(item, "id", where, limit=MAX_ID)]
        references = item.get("references", [])
        for index, reference in enumerate(self.items(references, f"{where}.references")):
            rwhere = f"{where}.references[{index}]"
            names.append(self.text(self.mapping(reference, rwhere), "id", rwhere, limit=MAX_ID))
        if not names[0]:
            raise self.fail("the statement names no vulnerability", f"{where}.id")
        if "analysis" not in item:
            raise self.fail("no analysis: a vulnerability without analysis.state is not a VEX statement", where)
        analysis = self.mapping(item["analysis"], f"{where}.analysis")
        awhere = f"{where}.analysis"
        state = self.text(analysis, "state", awhere, limit=MAX_ID)
        if state not in CYCLONEDX_STATES:
            known = ", ".join(CYCLONEDX_STATES)
            raise self.fail(f"{state!r} is not one of {known}", f"{awhere}.state")
        status = CYCLONEDX_STATES[state]
        justification: VexJustification | None = None
        text = self.text(analysis, "justification", awhere, limit=MAX_ID)
        if text:
            if text not in CYCLONEDX_JUSTIFICATIONS:
                known = ", ".join(CYCLONEDX_JUSTIFICATIONS)
                raise self.fail(f"{text!r} is not one of {known}", f"{awhere}.justification")
            if status is not VexStatus.NOT_AFFECTED:
                raise self.fail(f"a justification is only for not_affected, not {state}", f"{awhere}.justification")
            justification = CYCLONEDX_JUSTIFICATIONS[text]
        impact = self.text(analysis, "detail", awhere)
        if state == "false_positive" and not impact and justification is None:
            impact = FALSE_POSITIVE_IMPACT
        action = self.text(item, "recommendation", where) or self.text(item, "workaround", where)
        affects = self.items(item.get("affects"), f"{where}.affects")
        products: list[VexProduct] = []
        for index, raw_affect in enumerate(affects):
            fwhere = f"{where}.affects[{index}]"
            affect = self.mapping(raw_affect, fwhere)
            purl = self.resolve(self.text(affect, "ref", fwhere), f"{fwhere}.ref", refs)
            products.extend(self.cyclonedx_versions(affect, purl, fwhere, status))
        if not products:
            raise self.fail("the statement names no product", f"{where}.affects")
        timestamp = self.timestamp(analysis, "lastUpdated", awhere) or self.timestamp(analysis, "firstIssued", awhere)
        return self.statement(
            where,
            names=names,
            products=products,
            status=status,
            justification=justification,
            impact=impact,
            action=action,
            source_format=source_format,
            timestamp=timestamp or default_time,
        )

    def cyclonedx_versions(
        self, affect: Mapping[str, Any], purl: str, where: str, status: VexStatus
    ) -> Iterator[VexProduct]:
        """One product per listed version (affects[].versions), or the purl's own when none are listed."""
        versions = affect.get("versions")
        if not versions:
            yield self.product(purl, f"{where}.ref")
            return
        for index, raw in enumerate(self.items(versions, f"{where}.versions")):
            vwhere = f"{where}.versions[{index}]"
            entry = self.mapping(raw, vwhere)
            if "range" in entry:
                raise self.fail("version ranges are not supported; list the versions", f"{vwhere}.range")
            version = self.text(entry, "version", vwhere, limit=MAX_ID)
            if not version:
                raise self.fail("names no version", f"{vwhere}.version")
            listed = self.text(entry, "status", vwhere, limit=MAX_ID)
            if listed in _CONTRADICTING[status]:
                raise self.fail(f"status {listed!r} contradicts the analysis ({status})", f"{vwhere}.status")
            yield self.product(purl, f"{vwhere}.version", version=version)
