"""Package URLs (purl) to OSV ecosystems, package names and versions as advisories write them.

https://github.com/package-url/purl-spec: `pkg:TYPE/NAMESPACE/NAME@VERSION?QUALIFIERS#SUBPATH`.
Distribution packages (deb, rpm, apk) get their release from the `distro` qualifier
("debian-12", "ubuntu-22.04", "alpine-3.19.1", "rocky-9.3", or a bare "3.15.0" or "bookworm"),
else from the SBOM's operating system; language packages map one to one ("pypi" -> "PyPI").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from packageurl import PackageURL

from patchday.connectors.imports.decoding import CONTROL
from patchday.core.osv import ecosystems_of_os

MAX_TEXT: Final = 255  # the inventory document's limit for names and versions

# purl type -> OSV ecosystem, for the types whose ecosystem does not depend on a distribution.
LANGUAGE_ECOSYSTEMS: Final[Mapping[str, str]] = {
    "pypi": "PyPI",
    "npm": "npm",
    "golang": "Go",
    "cargo": "crates.io",
    "maven": "Maven",
    "gem": "RubyGems",
    "nuget": "NuGet",
    "composer": "Packagist",
    "hex": "Hex",
    "pub": "Pub",
    "swift": "SwiftURL",
    "hackage": "Hackage",
    "cran": "CRAN",
    "bitnami": "Bitnami",
}
DISTRIBUTION_TYPES: Final = frozenset({"deb", "rpm", "apk"})
MANAGER_OF_TYPE: Final[Mapping[str, str]] = {"deb": "dpkg", "rpm": "rpm", "apk": "apk"}

# os-release IDs whose OSV ecosystem has no release part (or that ecosystems_of_os does not know).
_FAMILY_OF_ID: Final[Mapping[str, str]] = {
    "debian": "Debian",
    "ubuntu": "Ubuntu",
    "alpine": "Alpine",
    "rhel": "Red Hat",
    "rocky": "Rocky Linux",
    "almalinux": "AlmaLinux",
    "fedora": "Fedora",
    "opensuse-leap": "openSUSE",
    "opensuse-tumbleweed": "openSUSE",
    "sles": "SUSE",
    "openeuler": "openEuler",
    "mageia": "Mageia",
    "azurelinux": "Azure Linux",
}
# purl namespaces (vendors) that tools write differently from the os-release ID.
_ID_OF_NAMESPACE: Final[Mapping[str, str]] = {
    "redhat": "rhel",
    "alma": "almalinux",
    "rocky-linux": "rocky",
    "opensuse": "opensuse-leap",
    "suse": "sles",
    "mariner": "azurelinux",
}
_CODENAMES: Final[Mapping[str, tuple[str, str]]] = {
    "buster": ("debian", "10"),
    "bullseye": ("debian", "11"),
    "bookworm": ("debian", "12"),
    "trixie": ("debian", "13"),
    "forky": ("debian", "14"),
    "xenial": ("ubuntu", "16.04"),
    "bionic": ("ubuntu", "18.04"),
    "focal": ("ubuntu", "20.04"),
    "jammy": ("ubuntu", "22.04"),
    "noble": ("ubuntu", "24.04"),
    "oracular": ("ubuntu", "24.10"),
    "plucky": ("ubuntu", "25.04"),
    "questing": ("ubuntu", "25.10"),
}
_DISTRO: Final = re.compile(r"^(?P<id>[a-z][a-z0-9._]*(?:-[a-z][a-z0-9._]*)*)-(?P<version>\d[0-9A-Za-z._~+-]*)$")
_PEP503: Final = re.compile(r"[-_.]+")
_SRPM: Final = re.compile(r"^(?P<name>.+)-(?P<version>[^-]+)-(?P<release>[^-]+)\.(?:no)?src\.rpm$")
_GO_VERSION: Final = re.compile(r"^(?:v|go)(?=\d)")


class UnusablePurl(ValueError):
    """A purl that cannot name an installed package: malformed, an unknown type, no version."""


@dataclass(frozen=True, slots=True)
class Distro:
    """An operating system as os-release names it: ID ("debian", "rhel") and VERSION_ID ("12", "9.3", "")."""

    id: str
    version_id: str = ""

    @property
    def ecosystem(self) -> str:
        """The OSV ecosystem of this system's packages ("Debian:12"); the family alone without a release;
        "" when OSV has no ecosystem for it (CentOS, Amazon Linux)."""
        found = ecosystems_of_os(self.id, self.version_id) if self.version_id else ()
        return found[0] if found else _FAMILY_OF_ID.get(self.id, "")


@dataclass(frozen=True, slots=True)
class PurlPackage:
    """What a purl says about one installed package, in the words advisories use."""

    type: str
    ecosystem: str
    name: str
    version: str
    arch: str = ""
    source_name: str = ""
    source_version: str = ""


def normalize_pypi_name(name: str) -> str:
    """PEP 503: runs of '-', '_' and '.' become one '-', all lower case ("Foo_Bar" -> "foo-bar")."""
    return _PEP503.sub("-", name).lower()


def distro_id(namespace: str) -> str:
    """The os-release ID for a purl namespace ("redhat" -> "rhel"; "debian" stays)."""
    lowered = namespace.lower()
    return _ID_OF_NAMESPACE.get(lowered, lowered)


def parse_distro(qualifier: str, namespace: str) -> Distro | None:
    """The distro qualifier as a Distro: "debian-12", "alpine-3.19.1", a bare "3.15.0", or a codename."""
    value = qualifier.strip().lower()
    if not value:
        return None
    if value in _CODENAMES:
        os_id, version = _CODENAMES[value]
        return Distro(os_id, version)
    found = _DISTRO.match(value)
    if found:
        return Distro(distro_id(found["id"]), found["version"])
    if value[0].isdigit():
        return Distro(distro_id(namespace), value)
    return Distro(distro_id(value))


def _text(value: str, what: str) -> str:
    if len(value) > MAX_TEXT:
        raise UnusablePurl(f"{what} is longer than {MAX_TEXT} characters")
    if CONTROL.search(value):
        raise UnusablePurl(f"{what} contains control characters")
    return value


def _with_epoch(version: str, epoch: str) -> str:
    # syft writes deb epochs inside the version ("1:1.2.13"), trivy and syft's rpm purls use `epoch=`.
    if epoch and epoch != "0" and ":" not in version:
        return f"{epoch}:{version}"
    return version


def _source(kind: str, upstream: str, version: str, epoch: str) -> tuple[str, str]:
    """(source name, source version) from syft's `upstream` qualifier, ("", "") without one."""
    if not upstream:
        return "", ""
    if kind == "rpm":  # the source RPM's file name: openssl-3.0.7-24.el9.src.rpm
        found = _SRPM.match(upstream)
        if not found:
            return upstream, ""
        return found["name"], _with_epoch(f"{found['version']}-{found['release']}", epoch)
    name, _, source_version = upstream.partition("@")  # deb: "bash@5.2.15-2" or "glibc"; apk: the origin
    return name, source_version or version


def read_purl(text: str, *, version: str = "", os_hint: Distro | None = None, versioned: bool = True) -> PurlPackage:
    """The package a purl names. `version` stands in when the purl has none; `os_hint` is the SBOM's
    operating system, used for distribution packages whose purl has no `distro` qualifier.
    With `versioned=False` a purl without a version names every version (a VEX product): `version` is "".

    Raises UnusablePurl naming the reason (malformed, an unknown type, no name or version).
    """
    try:
        purl = PackageURL.from_string(text.strip())
    except ValueError as exc:
        raise UnusablePurl(f"malformed purl: {exc}") from None
    kind = purl.type.lower()
    qualifiers = purl.qualifiers if isinstance(purl.qualifiers, dict) else {}
    namespace = purl.namespace or ""
    name = purl.name
    raw_version = purl.version or version
    if not raw_version and versioned:
        raise UnusablePurl("the purl has no version and the SBOM gives none")
    epoch = qualifiers.get("epoch", "")
    arch = qualifiers.get("arch", "")
    source_name = source_version = ""
    if kind in DISTRIBUTION_TYPES:
        distro = parse_distro(qualifiers.get("distro", ""), namespace)
        if distro is None:
            own = Distro(distro_id(namespace)) if namespace else None
            distro = os_hint if os_hint is not None and (own is None or own.id == os_hint.id) else own
        ecosystem = distro.ecosystem if distro is not None else ""
        full_version = _with_epoch(raw_version, epoch) if raw_version else ""
        source_name, source_version = _source(kind, qualifiers.get("upstream", ""), full_version, epoch)
    elif kind in LANGUAGE_ECOSYSTEMS:
        ecosystem = LANGUAGE_ECOSYSTEMS[kind]
        full_version = raw_version
        if kind == "pypi":
            name = normalize_pypi_name(name)
        elif kind == "maven" and namespace:
            name = f"{namespace}:{name}"
        elif kind == "golang":
            name = f"{namespace}/{name}" if namespace else name
            full_version = _GO_VERSION.sub("", raw_version)  # OSV's Go ranges are "1.8.1", not "v1.8.1"
        elif namespace:  # npm scopes (@angular/core), composer vendors, swift hosts
            name = f"{namespace}/{name}"
    else:
        raise UnusablePurl(f"purl type {kind!r} has no OSV ecosystem")
    return PurlPackage(
        type=kind,
        ecosystem=ecosystem,
        name=_text(name, "the package name"),
        version=_text(full_version, "the version"),
        arch=_text(arch, "the arch qualifier"),
        source_name=_text(source_name, "the source package name"),
        source_version=_text(source_version, "the source version"),
    )


# -- the reverse: (ecosystem, name, version) -> purl ---------------------------------------------------

_TYPE_OF_ECOSYSTEM: Final[Mapping[str, str]] = {ecosystem: kind for kind, ecosystem in LANGUAGE_ECOSYSTEMS.items()}
# OSV ecosystem family -> (purl type, namespace); each namespace reads back as the same family (distro_id).
_DISTRIBUTION_OF_FAMILY: Final[Mapping[str, tuple[str, str]]] = {
    "Debian": ("deb", "debian"),
    "Ubuntu": ("deb", "ubuntu"),
    "Alpine": ("apk", "alpine"),
    "Red Hat": ("rpm", "redhat"),
    "Rocky Linux": ("rpm", "rocky"),
    "AlmaLinux": ("rpm", "almalinux"),
    "Fedora": ("rpm", "fedora"),
    "openSUSE": ("rpm", "opensuse"),
    "SUSE": ("rpm", "suse"),
    "openEuler": ("rpm", "openeuler"),
    "Mageia": ("rpm", "mageia"),
    "Azure Linux": ("rpm", "azurelinux"),
}
# Ecosystems with a release that read_purl produces, as the `distro` qualifier that reads back as them.
_RELEASE: Final = re.compile(
    r"^(?:(?P<debian>Debian):(?P<debian_release>\d+)"
    r"|(?P<ubuntu>Ubuntu):(?:Pro:)?(?P<ubuntu_release>\d+\.\d+)(?::LTS)?"
    r"|(?P<alpine>Alpine):v(?P<alpine_release>\d+\.\d+)"
    r"|(?P<rocky>Rocky Linux):(?P<rocky_release>\d+)"
    r"|(?P<alma>AlmaLinux):(?P<alma_release>\d+))$"
)
_DISTRO_OF_GROUP: Final[Mapping[str, str]] = {
    "debian": "debian",
    "ubuntu": "ubuntu",
    "alpine": "alpine",
    "rocky": "rocky",
    "alma": "almalinux",
}


def _release_qualifier(ecosystem: str) -> tuple[str, str]:
    """(family, `distro` qualifier) of an ecosystem: ("Debian", "debian-12") for "Debian:12", (family, "")
    for a family alone; UnusablePurl for a release read_purl never produces (it would read back wider)."""
    if ":" not in ecosystem:
        return ecosystem, ""
    found = _RELEASE.match(ecosystem)
    if found is None:
        raise UnusablePurl(f"ecosystem {ecosystem!r} has no purl patchday can write")
    group = next(key for key in _DISTRO_OF_GROUP if found[key])
    return found[group], f"{_DISTRO_OF_GROUP[group]}-{found[f'{group}_release']}"


def purl_for(ecosystem: str, name: str, version: str | None) -> str:
    """The purl that read_purl reads back as (ecosystem, name, version); no version for None (all versions).

    "Debian:12", "openssl", "3.0.11-1~deb12u2" -> "pkg:deb/debian/openssl@3.0.11-1~deb12u2?distro=debian-12".
    Ubuntu Pro ecosystems get the plain release's purl (purls cannot say Pro). Raises UnusablePurl for an
    ecosystem without a purl type ("", "Debian:12:extra", an unknown family).
    """
    qualifiers: dict[str, str] = {}
    namespace: str | None = None
    written = version or None
    family, distro = _release_qualifier(ecosystem)
    if family in _DISTRIBUTION_OF_FAMILY:
        kind, namespace = _DISTRIBUTION_OF_FAMILY[family]
        if distro:
            qualifiers["distro"] = distro
        if kind == "rpm" and written and ":" in written:  # purl-spec: rpm epochs go in `epoch=`
            epoch, _, written = written.partition(":")
            qualifiers["epoch"] = epoch
    elif ecosystem in _TYPE_OF_ECOSYSTEM:
        kind = _TYPE_OF_ECOSYSTEM[ecosystem]
        if kind == "maven":
            namespace, _, name = name.rpartition(":")
        else:  # npm scopes, Go module paths, composer vendors, swift hosts
            namespace, _, name = name.rpartition("/")
        if kind == "golang" and written and written[0].isdigit():
            written = f"v{written}"  # Go module versions; read_purl strips the `v` again
    else:
        raise UnusablePurl(f"ecosystem {ecosystem!r} has no purl type")
    if not name:
        raise UnusablePurl("the package name is empty")
    purl = PackageURL(type=kind, namespace=namespace or None, name=name, version=written, qualifiers=qualifiers)
    return str(purl.to_string())
