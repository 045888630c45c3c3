"""The inventory document (docs/inventory.md), checked field by field before anything is stored.

Every route into inventory (agent, SSH, imports, scan) produces this document; `parse_document`
turns untrusted JSON into a typed `InventoryDocument` or raises InvalidInput naming the field
("inventory.packages.12.version"). Text is stored as data and escaped where shown, but what no
package manager produces (NUL and other control characters, absurd lengths) is refused.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from patchday.core.errors import InvalidInput

MAX_PACKAGES = 100_000
MAX_PENDING = 20_000
_HOSTNAME = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,252})$")
_MACHINE_ID = re.compile(r"^[A-Za-z0-9-]{0,64}$")
_CVE = re.compile(r"^CVE-\d{4}-\d{4,}$")


def _hostname(value: str) -> str:
    if value and not _HOSTNAME.match(value):
        raise ValueError("is not a host name (letters, digits, '-', '_' and '.' only)")
    return value


def _address(value: str) -> str:
    try:
        return str(ipaddress.ip_interface(value).ip)
    except ValueError:
        raise ValueError("is not an IP address") from None


# The control-character check is a pattern (pydantic runs it in Rust): a 2,000-package inventory has 20,000 strings.
_PRINTABLE = r"^[^\x00-\x08\x0b-\x1f\x7f]*$"
Text = Annotated[str, Field(max_length=255, pattern=_PRINTABLE)]
LongText = Annotated[str, Field(max_length=2000, pattern=_PRINTABLE)]
Name = Annotated[str, Field(min_length=1, max_length=255, pattern=_PRINTABLE)]
Arch = Annotated[str, Field(max_length=32, pattern=_PRINTABLE)]
HostName = Annotated[str, Field(max_length=253), AfterValidator(_hostname)]
CveId = Annotated[str, Field(pattern=_CVE.pattern)]


class _Strict(BaseModel):
    # Unknown keys are ignored so a newer agent can talk to an older server.
    model_config = ConfigDict(extra="ignore", frozen=True, str_strip_whitespace=False)


class OsInfo(_Strict):
    id: Text = ""
    version_id: Text = ""
    version_codename: Text = ""
    pretty_name: Text = ""
    id_like: Text = ""


class KernelInfo(_Strict):
    running: Text = ""
    installed: list[Text] = Field(default_factory=list, max_length=200)


class Hardware(_Strict):
    system_vendor: Text = ""
    product_name: Text = ""
    product_serial: Text = ""
    bios_vendor: Text = ""
    bios_version: Text = ""
    bios_date: Text = ""


class Package(_Strict):
    manager: Literal["dpkg", "rpm", "apk"]
    name: Name
    version: Name
    arch: Arch = ""
    source: Text = ""
    source_version: Text = ""


class PythonPackage(_Strict):
    name: Name
    version: Name
    interpreter: Text = ""
    location: LongText = ""


class PendingUpdate(_Strict):
    manager: Literal["apt", "dnf", "yum", "zypper", "apk"]
    name: Name
    arch: Arch = ""
    installed: Text = ""
    candidate: Name
    origin: Text = ""
    suite: Text = ""
    security: bool = False
    source: Text = ""
    source_version: Text = ""
    changelog_cves: list[CveId] = Field(default_factory=list, max_length=2000)


class Reboot(_Strict):
    required: bool | None = None
    reasons: list[Text] = Field(default_factory=list, max_length=100)
    packages: list[Text] = Field(default_factory=list, max_length=1000)


class CollectorProblem(_Strict):
    collector: Text
    message: LongText


class InventoryDocument(_Strict):
    format: Literal[1]
    collector: Text = ""
    collected_at: datetime | None = None
    machine_id: Annotated[str, Field(pattern=_MACHINE_ID.pattern)] = ""
    hostname: HostName
    fqdn: HostName = ""
    addresses: list[Annotated[str, AfterValidator(_address)]] = Field(default_factory=list, max_length=256)
    os: OsInfo
    architecture: Arch = ""
    kernel: KernelInfo = Field(default_factory=KernelInfo)
    boot_time: datetime | None = None
    uptime_seconds: int | None = Field(None, ge=0)
    hardware: Hardware = Field(default_factory=Hardware)
    packages: list[Package] = Field(default_factory=list, max_length=MAX_PACKAGES)
    python_packages: list[PythonPackage] = Field(default_factory=list, max_length=MAX_PACKAGES)
    pending_updates: list[PendingUpdate] = Field(default_factory=list, max_length=MAX_PENDING)
    reboot: Reboot = Field(default_factory=Reboot)
    errors: list[CollectorProblem] = Field(default_factory=list, max_length=1000)


def _location(loc: tuple[int | str, ...], prefix: str) -> str:
    return ".".join([prefix, *(str(part) for part in loc)])


def parse_document(raw: Mapping[str, Any] | Any, prefix: str = "inventory") -> InventoryDocument:
    """The checked document; raises InvalidInput naming the first bad field (and listing all of them)."""
    if not isinstance(raw, Mapping):
        raise InvalidInput(f"{prefix} must be a JSON object", field=prefix)
    try:
        return InventoryDocument.model_validate(dict(raw))
    except ValidationError as exc:
        problems = exc.errors()
        first = problems[0]
        field = _location(tuple(first["loc"]), prefix)
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise InvalidInput(f"{field}: {first['msg']}{more}", field=field) from None
