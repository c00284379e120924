"""Where status webhooks may go: public addresses only, unless the operator allows a private network.

A URL is vetted at registration and again before every attempt, and the attempt connects to the very
address that was vetted, so a name that resolves to a public address once and to 127.0.0.1 the next
time (DNS rebinding) reaches nothing private.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]

# Besides what `ipaddress` calls private, loopback, link-local, multicast, reserved or unspecified.
_BLOCKED = tuple(
    ipaddress.ip_network(cidr)
    for cidr in (
        "0.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT
        "169.254.0.0/16",  # link-local, with the cloud metadata address 169.254.169.254
        "192.0.0.0/24",
        "198.18.0.0/15",
        "fd00:ec2::/32",  # AWS metadata over IPv6 (fd00:ec2::254)
        "64:ff9b::/96",  # NAT64: an IPv4 address in disguise
        "2002::/16",  # 6to4: likewise
    )
)


class UrlRefused(ValueError):
    """The URL may not receive webhooks; the message says why."""


@dataclass(frozen=True, slots=True)
class Target:
    """A vetted URL and the address to connect to for it."""

    url: str
    scheme: str
    host: str
    port: int
    address: str


def blocked_reason(address: IPAddress) -> str | None:
    """Why this address is not public, or None when it is."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return blocked_reason(address.ipv4_mapped)
    if address.is_loopback:
        return "loopback"
    if address.is_unspecified:
        return "unspecified"
    if address.is_link_local or address in ipaddress.ip_network("169.254.0.0/16"):
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if any(address in network for network in _BLOCKED if network.version == address.version):
        return "reserved"
    if address.is_private or address.is_reserved or not address.is_global:
        return "private"
    return None


def parse_networks(cidrs: Sequence[str]) -> list[Network]:
    return [ipaddress.ip_network(cidr, strict=False) for cidr in cidrs]


def check_url_shape(url: str) -> tuple[str, str, int]:
    """Scheme, host and port of a URL that may be used at all (http/https, a host, no credentials)."""
    if len(url) > 2000:
        raise UrlRefused("the URL is longer than 2000 characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise UrlRefused(f"not a valid URL: {error}") from None
    if parts.scheme not in ("http", "https"):
        raise UrlRefused("only http and https URLs can receive webhooks")
    if parts.username is not None or parts.password is not None:
        raise UrlRefused("the URL must not contain credentials")
    host = parts.hostname
    if not host:
        raise UrlRefused("the URL has no host")
    return parts.scheme, host, port or (443 if parts.scheme == "https" else 80)


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def vet(
    url: str, *, resolver: Resolver, allowed: Sequence[Network] = (), unresolved_ok: bool = False
) -> Target | None:
    """The target to connect to for `url`, checking every address its host resolves to.

    Raises `UrlRefused` when any address is not public (and not allowed). A host that does not resolve
    gives None when `unresolved_ok` (registration: the name may exist later; every send checks again),
    and `UrlRefused` otherwise.
    """
    scheme, host, port = check_url_shape(url)
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        try:
            resolved = await resolver(host, port)
        except (OSError, UnicodeError) as error:
            resolved, reason = [], str(error)
        else:
            reason = "no address"
        if not resolved:
            if unresolved_ok:
                return None
            raise UrlRefused(f"the host {host} does not resolve: {reason}")
        addresses = [ipaddress.ip_address(address.split("%")[0]) for address in resolved]
    for address in addresses:
        reason_blocked = blocked_reason(address)
        if reason_blocked and not any(address in network for network in allowed):
            shown = host if literal is not None else f"{host} resolves to {address}, which"
            raise UrlRefused(f"{shown} is a {reason_blocked} address; webhooks go to public addresses only")
    return Target(url=url, scheme=scheme, host=host, port=port, address=str(addresses[0]))
