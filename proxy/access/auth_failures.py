"""Failed authentication, per client address: after repeated failures the address waits.

Without this a client can try admin tokens (or API keys) as fast as the proxy answers:
2,000 guesses in half a second, each a plain 401. Here each address has a count of its
failed authentications per realm (the client API, the admin API, /metrics); once it
reaches `threshold` within `window_s`, the address is refused in that realm (429 with
Retry-After, its credentials not even looked at) for `block_s`, and every further failure
doubles the wait, up to `max_block_s`. An address that fails nothing for `window_s` is
forgotten. A success does not wipe the count: a guesser holding one valid key could.

Behind a load balancer every client has the balancer's address: list it in
`trusted_proxies`, and the client's own address is taken from X-Forwarded-For. Pure:
the caller passes the time.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["AuthFailures", "BlockPolicy", "Network", "client_address", "trusted_networks"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_MAX_TRACKED = 100_000  # addresses remembered at once; the oldest go first


@dataclass(frozen=True, slots=True)
class BlockPolicy:
    threshold: int = 20
    window_s: float = 60.0
    block_s: float = 1.0
    max_block_s: float = 300.0


@dataclass(slots=True)
class _Record:
    failures: int
    last_failure: float
    blocked_until: float = 0.0
    strikes: int = 0


class AuthFailures:
    def __init__(self) -> None:
        self._records: dict[tuple[str, str], _Record] = {}

    def blocked_s(self, realm: str, address: str, now: float) -> float:
        """How long `address` is still refused in `realm` (0: not refused)."""
        record = self._records.get((realm, address))
        if record is None:
            return 0.0
        return max(0.0, record.blocked_until - now)

    def failed(self, realm: str, address: str, now: float, policy: BlockPolicy) -> float:
        """Count a failure; the block it starts, in seconds (0: none yet)."""
        key = (realm, address)
        record = self._records.pop(key, None)  # re-inserted last: the newest
        if record is None or now - record.last_failure > policy.window_s:
            record = _Record(failures=0, last_failure=now)
        record.failures += 1
        record.last_failure = now
        block = 0.0
        if record.failures >= policy.threshold:
            record.strikes += 1
            block = min(policy.max_block_s, policy.block_s * 2 ** min(record.strikes - 1, 30))
            record.blocked_until = now + block
        if len(self._records) >= _MAX_TRACKED:
            del self._records[next(iter(self._records))]
        self._records[key] = record
        return block

    def __len__(self) -> int:
        return len(self._records)


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
