"""Failed authentication, per client address: after repeated failures the address waits.

Without this a client can try admin tokens (or API keys) as fast as the proxy answers:
2,000 guesses in half a second, each a plain 401. Here each address has a count of its
failed authentications per realm (the client API, the admin API, /metrics); once it
reaches `threshold` within `window_s`, the address is refused in that realm (429 with
Retry-After, its credentials not even looked at) for `block_s`, and every further failure
doubles the wait, up to `max_block_s`. An address that fails nothing for `window_s` is
forgotten. A success does not wipe the count: a guesser holding one valid key could.

Behind a load balancer every client has the balancer's address: list it in
`server.trusted_proxies`, and the client's own address is taken from X-Forwarded-For
(access.addresses). Pure: the caller passes the time.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AuthFailures", "BlockPolicy"]

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
    forget_at: float = 0.0  # quiet for a window and no longer blocked: nothing to keep


class AuthFailures:
    """Records in the order of their last failure (the oldest first), so that forgetting
    them costs one look at the oldest per check, and an empty table (nobody failed lately:
    the usual case) costs a request nothing at all (`bool(failures)` is False)."""

    def __init__(self) -> None:
        self._records: dict[tuple[str, str], _Record] = {}

    def blocked_s(self, realm: str, address: str, now: float) -> float:
        """How long `address` is still refused in `realm` (0: not refused)."""
        if self._records:
            oldest = next(iter(self._records))
            if now > self._records[oldest].forget_at:
                del self._records[oldest]
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
        record.forget_at = max(now + policy.window_s, record.blocked_until)
        if len(self._records) >= _MAX_TRACKED:
            del self._records[next(iter(self._records))]
        self._records[key] = record
        return block

    def __len__(self) -> int:
        return len(self._records)
