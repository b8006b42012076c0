"""Whose request it is: the client's address, through trusted load balancers. Pure.

Behind a load balancer (or a reverse proxy on the same host) every request comes from
the balancer's address; when the balancer is listed in `server.trusted_proxies`, the
client's own address is the last one in X-Forwarded-For that is not a trusted proxy
(each proxy appends the address it saw, so the ones before it may be forged).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

__all__ = ["Network", "client_address", "is_loopback", "trusted_networks"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def trusted_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """`trusted_proxies` parsed: ValueError names an entry that is no address or network."""
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def client_address(
    peer: str | None, forwarded_for: str | None, trusted: tuple[Network, ...]
) -> str:
    """The client's address: the peer's, or, when the peer is a trusted proxy, the last
    address in X-Forwarded-For that is not one (each proxy appends the one it saw).
    Anything in X-Forwarded-For that is not an address is ignored."""
    address = peer or "unknown"
    if not trusted or not forwarded_for or not _within(address, trusted):
        return address
    for hop in reversed([h.strip() for h in forwarded_for.split(",")]):
        try:
            ip = ipaddress.ip_address(hop)
        except ValueError:
            return address
        if not any(ip in network for network in trusted):
            return str(ip)
    return address


def _within(address: str, trusted: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def is_loopback(address: str) -> bool:
    """127.0.0.0/8 or ::1 (an IPv4-mapped loopback too)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback
