"""Requests in flight per key and per customer, on this instance: `max_in_flight`.

A rate limit bounds how many requests start per minute; it does not stop one key from
holding hundreds of slow streams open at once. This counts the requests each scope has
in flight and refuses one more past its limit with 429 `concurrency_limit_exceeded`.
The counts are per instance (each instance enforces the limit on its own traffic), so
they cost no store round trip. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence

from proxy.access.ratelimit import RateLimitError

__all__ = ["ConcurrencyLimitError", "InFlight"]

RETRY_AFTER_S = 1  # a slot frees when any request of the scope ends: soon, usually


class ConcurrencyLimitError(RateLimitError):
    code = "concurrency_limit_exceeded"

    def __init__(self, message: str, *, kind: str) -> None:
        super().__init__(message, headers={"Retry-After": str(RETRY_AFTER_S)})
        self.type = kind  # the `kind` of costproxy_ratelimited_total


class InFlight:
    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    def enter(self, limits: Sequence[tuple[str, int]]) -> tuple[str, ...]:
        """Count a request in every scope of `limits` ((scope, limit) pairs), or in none
        and raise 429 when one is at its limit. The scopes to `leave` afterwards."""
        for scope, limit in limits:
            if self._counts.get(scope, 0) >= limit:
                kind, _, name = scope.partition(":")
                raise ConcurrencyLimitError(
                    f"Too many requests in flight for {kind} {name!r}: the limit is {limit} "
                    "at once. Retry when one of them has finished.",
                    kind="in_flight",
                )
        for scope, _ in limits:
            self._counts[scope] = self._counts.get(scope, 0) + 1
        return tuple(scope for scope, _ in limits)

    def leave(self, scopes: Sequence[str]) -> None:
        for scope in scopes:
            left = self._counts[scope] - 1
            if left:
                self._counts[scope] = left
            else:
                del self._counts[scope]  # bounded memory: only scopes with requests in flight

    def count(self, scope: str) -> int:
        return self._counts.get(scope, 0)
