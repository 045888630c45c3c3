"""SBOM imports: CycloneDX JSON (1.4-1.6) and SPDX JSON (2.2, 2.3) to an asset with its components.

Reading needs half a dozen fields of each format, so the decoded JSON is read directly (see
docs/imports.md for why not cyclonedx-python-lib); purls are parsed with packageurl-python.
A document that does not fit raises InvalidImport naming the file and field; a component that
cannot name an installed package (no purl, an unknown purl type, garbage) is skipped and counted,
with the first reasons kept for the import preview.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal

from patchday.connectors.imports.decoding import check_size, load_json
from patchday.connectors.imports.inventory import add_error, blank_document, note_missing_facts
from patchday.connectors.imports.purl import (
    MANAGER_OF_TYPE,
    Distro,
    PurlPackage,
    UnusablePurl,
    distro_id,
    parse_distro,
    read_purl,
)
from patchday.core.errors import InvalidImport
from patchday.core.matching import InstalledPackage

AssetKind = Literal["host", "application"]

MAX_BYTES: Final = 64 * 1024 * 1024
MAX_COMPONENTS: Final = 100_000
MAX_DEPTH: Final = 16  # CycloneDX components nest; real SBOMs stay within a few levels
MAX_REASONS: Final = 100
CYCLONEDX_VERSIONS: Final = ("1.4", "1.5", "1.6")
SPDX_VERSIONS: Final = ("SPDX-2.2", "SPDX-2.3")
HOST_TYPES: Final = frozenset({"operating-system", "device"})
SPDX_HOST_PURPOSES: Final = frozenset({"OPERATING-SYSTEM", "DEVICE"})
_SPDX_SOURCE: Final = re.compile(r"^built package from: (?P<name>\S+) (?P<version>\S+)$")  # trivy's sourceInfo
_DISTRO_QUALIFIER: Final = re.compile(r"[?&]distro=([^&#]+)")


@dataclass(frozen=True, slots=True)
class Component:
    """One installed package an SBOM lists, named as advisories name it.

    `ecosystem` is the OSV ecosystem ("Debian:12", "PyPI"), "" for a distribution OSV does not
    cover (CentOS); `source_name`/`source_version` are the source package when the SBOM says.
    """

    ecosystem: str
    name: str
    version: str
    purl: str
    source_name: str = ""
    source_version: str = ""
    arch: str = ""

    @property
    def purl_type(self) -> str:
        return self.purl[4:].split("/", 1)[0].lower() if self.purl.startswith("pkg:") else ""

    @property
    def manager(self) -> str:
        """The inventory document's package manager ("dpkg", "rpm", "apk"), "" for language packages."""
        return MANAGER_OF_TYPE.get(self.purl_type, "")

    def installed_package(self) -> InstalledPackage:
        return InstalledPackage(
            name=self.name,
            version=self.version,
            ecosystem=self.ecosystem,
            source_name=self.source_name or None,
            source_version=self.source_version or None,
            arch=self.arch or None,
        )


@dataclass(frozen=True, slots=True)
class SbomAsset:
    """What an SBOM describes: a host (it names an operating system) or an application asset.

    `os` has the inventory document's keys (id, version_id, version_codename, pretty_name, id_like).
    `components` are deduplicated and sorted; `skipped` gives the first reasons of `skipped_count`.
    """

    name: str
    version: str
    kind: AssetKind
    os: Mapping[str, str] | None
    components: tuple[Component, ...]
    format: str = ""
    skipped: tuple[str, ...] = ()
    skipped_count: int = 0
    duplicates: int = 0


@dataclass(slots=True)
class _Raw:
    """One entry of the document before mapping: where it is, its purl, and hints beside the purl."""

    where: str
    name: str
    version: str
    purl: str
    source_name: str = ""
    source_version: str = ""


@dataclass(slots=True)
class _Reading:
    name: str = ""
    version: str = ""
    format: str = ""
    is_host: bool = False
    os: dict[str, str] | None = None
    entries: list[_Raw] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    skipped_count: int = 0

    def skip(self, reason: str) -> None:
        self.skipped_count += 1
        if len(self.skipped) < MAX_REASONS:
            self.skipped.append(reason)


# -- entry points ---------------------------------------------------------------------------------------


def parse_sbom(
    data: bytes,
    *,
    source: str = "SBOM",
    kind: AssetKind | None = None,
    max_bytes: int = MAX_BYTES,
    max_components: int = MAX_COMPONENTS,
) -> SbomAsset:
    """The asset a CycloneDX or SPDX JSON file describes.

    `kind` overrides the detection (a container image's SBOM names an OS, so it reads as a host
    unless imported as an application). Raises InvalidImport naming `source` and the field.
    """
    check_size(data, max_bytes, source)
    return read_sbom(load_json(data, source), source=source, kind=kind, max_components=max_components)


def read_sbom(
    document: object, *, source: str = "SBOM", kind: AssetKind | None = None, max_components: int = MAX_COMPONENTS
) -> SbomAsset:
    """Like parse_sbom, for a document already decoded from JSON."""
    if not isinstance(document, Mapping):
        raise InvalidImport("an SBOM must be a JSON object", source=source)
    if document.get("bomFormat") == "CycloneDX":
        reading = _read_cyclonedx(document, source, max_components)
    elif "spdxVersion" in document:
        reading = _read_spdx(document, source, max_components)
    elif "@context" in document:
        raise InvalidImport(
            "SPDX 3 (JSON-LD) is not supported; export SPDX 2.3 JSON or CycloneDX", source=source, field="@context"
        )
    else:
        raise InvalidImport("not a CycloneDX or SPDX JSON document (no bomFormat or spdxVersion)", source=source)
    return _asset(reading, kind)


def host_inventory(asset: SbomAsset, *, hostname: str, collected_at: datetime) -> dict[str, Any]:
    """The inventory document (docs/inventory.md) of a host SBOM: its OS and distribution and Python
    packages; every fact an SBOM does not carry is empty with a line in `errors` saying so."""
    document = blank_document(collector=f"sbom import ({asset.format})", collected_at=collected_at, hostname=hostname)
    collector = "sbom"
    if asset.os is not None:
        document["os"] = {key: asset.os.get(key, "") for key in document["os"]}
    else:
        add_error(document, collector, "the SBOM names no operating system")
    architectures: dict[str, None] = {}
    others: dict[str, int] = {}
    for component in asset.components:
        if component.manager:
            document["packages"].append(
                {
                    "manager": component.manager,
                    "name": component.name,
                    "version": component.version,
                    "arch": component.arch,
                    "source": component.source_name or component.name,
                    "source_version": component.source_version or component.version,
                }
            )
            if component.arch not in ("", "all", "noarch"):
                architectures.setdefault(component.arch, None)
        elif component.ecosystem == "PyPI":
            document["python_packages"].append(
                {"name": component.name, "version": component.version, "interpreter": "", "location": ""}
            )
        else:
            label = component.ecosystem or component.purl_type
            others[label] = others.get(label, 0) + 1
    if len(architectures) == 1:
        document["architecture"] = _machine_arch(next(iter(architectures)))
    note_missing_facts(document, collector, "an SBOM")
    add_error(document, collector, "an SBOM does not report /etc/machine-id, hardware or firmware")
    if others:
        listed = ", ".join(f"{count} {name}" for name, count in sorted(others.items()))
        add_error(document, collector, f"components of other ecosystems are not part of a host inventory: {listed}")
    return document


# -- CycloneDX --------------------------------------------------------------------------------------------


def _properties(item: Mapping[str, Any]) -> dict[str, str]:
    found: dict[str, str] = {}
    raw = item.get("properties")
    if isinstance(raw, list):
        for prop in raw:
            if isinstance(prop, Mapping) and isinstance(prop.get("name"), str) and isinstance(prop.get("value"), str):
                found.setdefault(prop["name"], prop["value"])
    return found


def _string(item: Mapping[str, Any], key: str, source: str, where: str) -> str:
    value = item.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidImport(f"{where}.{key} must be a string", source=source, field=f"{where}.{key}")
    return value


def _cyclonedx_os(component: Mapping[str, Any], props: Mapping[str, str]) -> dict[str, str]:
    """os-release facts from an operating-system component: syft's syft:distro:* properties, else
    the component's name and version (trivy writes "debian" / "12.5")."""
    name = component.get("name") if isinstance(component.get("name"), str) else ""
    version = component.get("version") if isinstance(component.get("version"), str) else ""
    description = component.get("description") if isinstance(component.get("description"), str) else ""
    return {
        "id": distro_id(props.get("syft:distro:id") or str(name)),
        "version_id": props.get("syft:distro:versionID") or str(version),
        "version_codename": props.get("syft:distro:versionCodename", ""),
        "pretty_name": props.get("syft:distro:prettyName") or str(description),
        "id_like": props.get("syft:distro:idLike", ""),
    }


def _cyclonedx_source(props: Mapping[str, str]) -> tuple[str, str]:
    """Source package from syft's or trivy's component properties, ("", "") when neither says."""
    if "syft:metadata:source" in props:
        return props["syft:metadata:source"], props.get("syft:metadata:sourceVersion", "")
    if "syft:metadata:originPackage" in props:  # apk
        return props["syft:metadata:originPackage"], ""
    if "aquasecurity:trivy:SrcName" in props:
        version = props.get("aquasecurity:trivy:SrcVersion", "")
        release = props.get("aquasecurity:trivy:SrcRelease", "")
        epoch = props.get("aquasecurity:trivy:SrcEpoch", "")
        full = f"{version}-{release}" if version and release else version
        if full and epoch and epoch != "0":
            full = f"{epoch}:{full}"
        return props["aquasecurity:trivy:SrcName"], full
    return "", ""


def _walk(
    components: object, source: str, where: str, depth: int, limit: int, counter: list[int]
) -> Iterator[tuple[str, Mapping[str, Any]]]:
    if components is None:
        return
    if not isinstance(components, list):
        raise InvalidImport(f"{where} must be a list", source=source, field=where)
    if depth > MAX_DEPTH:
        raise InvalidImport(f"{where}: components nest more than {MAX_DEPTH} levels deep", source=source, field=where)
    for index, component in enumerate(components):
        here = f"{where}[{index}]"
        if not isinstance(component, Mapping):
            raise InvalidImport(f"{here} must be an object", source=source, field=here)
        counter[0] += 1
        if counter[0] > limit:
            raise InvalidImport(f"more than {limit} components; split the SBOM", source=source, field="components")
        yield here, component
        yield from _walk(component.get("components"), source, f"{here}.components", depth + 1, limit, counter)


def _read_cyclonedx(document: Mapping[str, Any], source: str, limit: int) -> _Reading:
    spec = document.get("specVersion")
    if spec not in CYCLONEDX_VERSIONS:
        raise InvalidImport(
            f"CycloneDX specVersion {spec!r} is not supported; use {', '.join(CYCLONEDX_VERSIONS)}",
            source=source,
            field="specVersion",
        )
    reading = _Reading(format=f"CycloneDX {spec}")
    metadata = document.get("metadata", {})
    if not isinstance(metadata, Mapping):
        raise InvalidImport("metadata must be an object", source=source, field="metadata")
    subject = metadata.get("component")
    if subject is not None:
        if not isinstance(subject, Mapping):
            raise InvalidImport("metadata.component must be an object", source=source, field="metadata.component")
        reading.name = _string(subject, "name", source, "metadata.component")
        group = _string(subject, "group", source, "metadata.component")
        if group and reading.name:
            reading.name = f"{group}/{reading.name}"
        reading.version = _string(subject, "version", source, "metadata.component")
        if subject.get("type") in HOST_TYPES:
            reading.is_host = True
            if subject.get("type") == "operating-system":
                reading.os = _cyclonedx_os(subject, _properties(subject))
    for where, component in _walk(document.get("components"), source, "components", 0, limit, [0]):
        props = _properties(component)
        name = _string(component, "name", source, where)
        if component.get("type") == "operating-system":
            reading.is_host = True
            if reading.os is None:
                reading.os = _cyclonedx_os(component, props)
            continue
        purl = _string(component, "purl", source, where)
        if not purl:
            reading.skip(f"{where} {name!r}: no purl")
            continue
        source_name, source_version = _cyclonedx_source(props)
        version = _string(component, "version", source, where)
        reading.entries.append(_Raw(where, name, version, purl, source_name, source_version))
    return reading


# -- SPDX -------------------------------------------------------------------------------------------------


def _spdx_purl(package: Mapping[str, Any]) -> str:
    refs = package.get("externalRefs")
    if not isinstance(refs, list):
        return ""
    for ref in refs:
        if (
            isinstance(ref, Mapping)
            and str(ref.get("referenceType", "")).lower() == "purl"
            and isinstance(ref.get("referenceLocator"), str)
        ):
            return str(ref["referenceLocator"])
    return ""


def _spdx_described(document: Mapping[str, Any]) -> set[str]:
    described = {d for d in document.get("documentDescribes") or [] if isinstance(d, str)}
    relationships = document.get("relationships")
    if isinstance(relationships, list):
        for rel in relationships:
            if (
                isinstance(rel, Mapping)
                and rel.get("relationshipType") == "DESCRIBES"
                and rel.get("spdxElementId") == "SPDXRef-DOCUMENT"
                and isinstance(rel.get("relatedSpdxElement"), str)
            ):
                described.add(rel["relatedSpdxElement"])
    return described


def _is_spdx_os(package: Mapping[str, Any]) -> bool:
    # SPDX 2.3 says primaryPackagePurpose; trivy's SPDX 2.2 output names the package SPDXRef-OperatingSystem-*.
    return package.get("primaryPackagePurpose") == "OPERATING-SYSTEM" or str(package.get("SPDXID", "")).startswith(
        "SPDXRef-OperatingSystem"
    )


def _read_spdx(document: Mapping[str, Any], source: str, limit: int) -> _Reading:
    spec = document.get("spdxVersion")
    if spec not in SPDX_VERSIONS:
        raise InvalidImport(
            f"spdxVersion {spec!r} is not supported; use {' or '.join(SPDX_VERSIONS)} JSON",
            source=source,
            field="spdxVersion",
        )
    reading = _Reading(format=str(spec), name=_string(document, "name", source, "document"))
    packages = document.get("packages", [])
    if not isinstance(packages, list):
        raise InvalidImport("packages must be a list", source=source, field="packages")
    if len(packages) > limit:
        raise InvalidImport(f"more than {limit} packages; split the SBOM", source=source, field="packages")
    described = _spdx_described(document)
    subject = next(iter(described)) if len(described) == 1 else None  # some tools "describe" every package
    for index, package in enumerate(packages):
        where = f"packages[{index}]"
        if not isinstance(package, Mapping):
            raise InvalidImport(f"{where} must be an object", source=source, field=where)
        name = _string(package, "name", source, where)
        version = _string(package, "versionInfo", source, where)
        purl = _spdx_purl(package)
        if package.get("SPDXID") == subject:  # the document's subject (a directory, an image, a device)
            reading.name, reading.version = name or reading.name, version
            if package.get("primaryPackagePurpose") in SPDX_HOST_PURPOSES:
                reading.is_host = True
            if not _is_spdx_os(package):
                continue
        if _is_spdx_os(package):
            reading.is_host = True
            if reading.os is None:
                reading.os = {
                    "id": distro_id(name),
                    "version_id": version,
                    "version_codename": "",
                    "pretty_name": "",
                    "id_like": "",
                }
            continue
        if not purl:
            reading.skip(f"{where} {name!r}: no purl")
            continue
        found = _SPDX_SOURCE.match(_string(package, "sourceInfo", source, where))
        source_name, source_version = (found["name"], found["version"]) if found else ("", "")
        reading.entries.append(_Raw(where, name, version, purl, source_name, source_version))
    return reading


# -- mapping ----------------------------------------------------------------------------------------------


def _inferred_os(entries: Sequence[_Raw]) -> dict[str, str] | None:
    """The OS the distribution purls agree on through their distro qualifiers, None unless one."""
    seen: set[tuple[str, str]] = set()
    for entry in entries:
        found = _DISTRO_QUALIFIER.search(entry.purl)
        if found:
            namespace = entry.purl[4:].split("/")[1] if entry.purl.count("/") >= 2 else ""
            distro = parse_distro(found.group(1), namespace)
            if distro is not None:
                seen.add((distro.id, distro.version_id))
    if len(seen) != 1:
        return None
    ((os_id, version_id),) = seen
    return {"id": os_id, "version_id": version_id, "version_codename": "", "pretty_name": "", "id_like": ""}


def _component(entry: _Raw, os_hint: Distro | None) -> Component:
    found: PurlPackage = read_purl(entry.purl, version=entry.version, os_hint=os_hint)
    source_name, source_version = found.source_name, found.source_version
    if entry.source_name:
        source_name = entry.source_name
        source_version = entry.source_version or (found.version if found.type in ("deb", "apk") else "")
    if source_name == found.name and source_version in ("", found.version):
        source_name = source_version = ""  # the binary is its own source: say nothing, like InstalledPackage
    return Component(
        ecosystem=found.ecosystem,
        name=found.name,
        version=found.version,
        purl=entry.purl,
        source_name=source_name,
        source_version=source_version,
        arch=found.arch,
    )


def _preference(component: Component) -> tuple[bool, str]:
    # Among duplicates, keep the entry that names its source package, then the smallest purl.
    return (not component.source_name, component.purl)


def _asset(reading: _Reading, kind: AssetKind | None) -> SbomAsset:
    os = reading.os if reading.os is not None else _inferred_os(reading.entries)
    os_hint = Distro(os["id"], os["version_id"]) if os is not None and os["id"] else None
    chosen: dict[tuple[str, str, str, str], Component] = {}
    duplicates = 0
    for entry in reading.entries:
        try:
            component = _component(entry, os_hint)
        except UnusablePurl as exc:
            reading.skip(f"{entry.where} {entry.name!r}: {exc}")
            continue
        key = (component.purl_type, component.ecosystem, component.name, component.version)
        kept = chosen.get(key)
        if kept is not None:
            duplicates += 1
            if _preference(component) >= _preference(kept):
                continue
        chosen[key] = component
    components = tuple(sorted(chosen.values(), key=lambda c: (c.ecosystem, c.name, c.version, c.purl)))
    return SbomAsset(
        name=reading.name,
        version=reading.version,
        kind=kind or ("host" if reading.is_host else "application"),
        os=os,
        components=components,
        format=reading.format,
        skipped=tuple(reading.skipped),
        skipped_count=reading.skipped_count,
        duplicates=duplicates,
    )


def _machine_arch(arch: str) -> str:
    """dpkg/apk architecture names as `uname -m` writes them (the document's `architecture`)."""
    return {"amd64": "x86_64", "arm64": "aarch64", "i386": "i686", "armhf": "armv7l"}.get(arch, arch)
