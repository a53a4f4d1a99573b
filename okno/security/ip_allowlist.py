"""IP allow-lists: parse addresses and networks (CIDR), and decide whether a client
address is inside.

The client address is what the ASGI server reports: ``okno serve`` runs uvicorn with
``forwarded_allow_ips = OKNO_TRUSTED_PROXIES``, so a request through a trusted proxy
carries the address from ``X-Forwarded-For`` and a request from anywhere else carries the
peer's own address (a forged header from an untrusted peer is ignored).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from okno.errors import Forbidden

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_network(text: str) -> Network:
    """One address (``10.1.2.3``) or network (``10.0.0.0/8``); ValueError naming it."""
    value = text.strip()
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address or network (10.0.0.0/8)") from None


def parse_networks(items: Iterable[str]) -> list[Network]:
    """Every non-empty item parsed; ValueError naming the first bad one."""
    return [parse_network(item) for item in items if item.strip()]


def normalise(items: Iterable[str]) -> list[str]:
    """The entries in their canonical text (``10.0.0.0/8``), without duplicates."""
    out: list[str] = []
    for network in parse_networks(items):
        text = str(network)
        if text not in out:
            out.append(text)
    return out


def allowed(client_ip: str, networks: Iterable[Network]) -> bool:
    """Whether ``client_ip`` is inside any of ``networks``; an empty list allows all. A
    client without a usable address is allowed only by an empty list."""
    nets = list(networks)
    if not nets:
        return True
    try:
        address = ipaddress.ip_address(client_ip.strip())
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address.version == n.version and address in n for n in nets)


def check(client_ip: str, networks: Iterable[Network], *, what: str, code: str) -> None:
    """Refuse (403 with ``code``) a client outside a non-empty allow-list."""
    if not allowed(client_ip, networks):
        raise Forbidden(f"{what} is not allowed from this address", code=code)
