"""Where a webhook may point: https (or http to loopback/private addresses when allowed), never link-local.

Checked when a webhook is added and again before each delivery (the name may resolve differently
later). Refusals are InvalidInput naming the field `url`.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from patchday.core.errors import InvalidInput

Resolver = Callable[[str, int], Sequence[str]]
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_ALWAYS_REFUSED = (
    ipaddress.ip_network("169.254.0.0/16"),  # link-local, including the cloud metadata service 169.254.169.254
    ipaddress.ip_network("fe80::/10"),
    ipaddress.ip_network("fd00:ec2::/32"),  # AWS's IPv6 metadata service
    ipaddress.ip_network("100.100.100.200/32"),  # Alibaba Cloud's metadata service
)


def resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise InvalidInput(f"the webhook host {host!r} does not resolve: {exc}", field="url") from None
    return sorted({str(info[4][0]) for info in infos})


def _address(text: str) -> IpAddress:
    address = ipaddress.ip_address(text.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_internal(address: IpAddress) -> bool:
    return address.is_private or address.is_loopback


def check_url(url: str, *, allow_private: bool, resolver: Resolver = resolve) -> str:
    """The URL, stripped, when a webhook may be sent there; else InvalidInput(field="url") saying why.

    Refused always: schemes other than http/https, user:password@ in the URL, link-local and metadata
    addresses, unspecified/multicast/reserved ones. Loopback and private addresses only with
    `allow_private` (PATCHDAY_WEBHOOK_ALLOW_PRIVATE), and only there may the scheme be plain http.
    """
    url = url.strip()
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise InvalidInput(f"the webhook URL is malformed: {exc}", field="url") from None
    if parts.scheme not in {"https", "http"}:
        raise InvalidInput(f"a webhook URL must start with https:// (got {parts.scheme or 'no'} scheme)", field="url")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise InvalidInput("a webhook URL may not carry credentials (user:password@); the secret signs", field="url")
    host = parts.hostname
    if not host:
        raise InvalidInput("a webhook URL needs a host name", field="url")
    addresses = [_address(text) for text in resolver(host, port)]
    if not addresses:
        raise InvalidInput(f"the webhook host {host!r} does not resolve", field="url")
    for address in addresses:
        if any(address in network for network in _ALWAYS_REFUSED) or address.is_link_local:
            raise InvalidInput(f"{host} is a link-local or metadata address ({address}); refused", field="url")
        if address.is_unspecified or address.is_multicast or address.is_reserved:
            raise InvalidInput(f"{host} resolves to {address}, which cannot receive webhooks", field="url")
        if _is_internal(address) and not allow_private:
            raise InvalidInput(
                f"{host} resolves to the internal address {address}; "
                "set PATCHDAY_WEBHOOK_ALLOW_PRIVATE=true to allow loopback and private addresses",
                field="url",
            )
        if parts.scheme == "http" and not _is_internal(address):
            raise InvalidInput("a webhook URL on a public address must use https://", field="url")
    return url
