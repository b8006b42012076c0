"""Which rate limits a request is under, and taking from them: before it goes upstream
(requests, and a bound on its tokens) and after it settles (the token correction).

Limits come from the caller's key (config or issued) and from its customer (config, or the
admin API, which wins). A request under no limit costs one dict lookup and no store call.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from proxy.access.auth import Principal
from proxy.access.keys import Customer
from proxy.access.ratelimit import Bucket, Decision, Limiter, RateLimitError
from proxy.accounting.records import UsageRecord
from proxy.budgets.rules import choices_of, stated_max_output
from proxy.config import CustomerConfig

__all__ = ["RateLimits", "Reservation", "estimate_tokens"]

log = logging.getLogger("costproxy.limits")


def estimate_tokens(body_bytes: int, payload: Mapping[str, object], default_output: int) -> int:
    """A cheap upper-ish bound: a token per 4 body bytes for the prompt, plus the most the
    request may generate. Settle replaces it with the real count."""
    stated = stated_max_output(payload)
    output = default_output if stated is None else stated
    return -(-body_bytes // 4) + output * choices_of(payload)


@dataclass(frozen=True, slots=True)
class Reservation:
    token_buckets: tuple[Bucket, ...]
    tokens: int
    decision: Decision


class RateLimits:
    def __init__(self, config_customers: Mapping[str, CustomerConfig]) -> None:
        self._config: dict[str, tuple[int | None, int | None]] = {}
        self._config_in_flight: dict[str, int] = {}
        self._stored: list[Customer] = []
        self._customers: dict[str, tuple[int | None, int | None]] = {}
        self._in_flight: dict[str, int] = {}
        self._limiter: Limiter | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.use_config(config_customers)

    def use_config(self, config_customers: Mapping[str, CustomerConfig]) -> None:
        """The config's customer limits (at start, and after a reload)."""
        self._config = {
            name: (c.rpm, c.tpm) for name, c in config_customers.items() if c.rpm or c.tpm
        }
        self._config_in_flight = {
            name: c.max_in_flight for name, c in config_customers.items() if c.max_in_flight
        }
        self.load_customers(self._stored)

    def start(self, limiter: Limiter) -> None:
        self._limiter = limiter

    def load_customers(self, customers: list[Customer]) -> None:
        """Replace the API-set limits (a field left null falls back to the config's)."""
        self._stored = customers
        merged = dict(self._config)
        for c in customers:
            rpm, tpm = self._config.get(c.id, (None, None))
            merged[c.id] = (c.rpm or rpm, c.tpm or tpm)
        self._customers = {k: v for k, v in merged.items() if v[0] or v[1]}
        in_flight = dict(self._config_in_flight)
        for c in customers:
            if c.max_in_flight:
                in_flight[c.id] = c.max_in_flight
        self._in_flight = in_flight

    def in_flight_limits(self, principal: Principal, customer: str) -> list[tuple[str, int]]:
        """The concurrency limits a request is under: its key's and its customer's."""
        limits = []
        if principal.max_in_flight:
            limits.append((f"key:{principal.key_id}", principal.max_in_flight))
        customer_limit = self._in_flight.get(customer)
        if customer_limit:
            limits.append((f"customer:{customer}", customer_limit))
        return limits

    def buckets(self, principal: Principal, customer: str) -> list[Bucket]:
        out = []
        for scope, (rpm, tpm) in (
            (f"key:{principal.key_id}", (principal.rpm, principal.tpm)),
            (f"customer:{customer}", self._customers.get(customer, (None, None))),
        ):
            if rpm:
                out.append(Bucket(scope, "requests", rpm))
            if tpm:
                out.append(Bucket(scope, "tokens", tpm))
        return out

    async def reserve(
        self,
        principal: Principal,
        customer: str,
        body_bytes: int,
        payload: Mapping[str, object],
        default_output: int,
        *,
        with_tokens: bool = True,
    ) -> Reservation | None:
        """Take a request, and its estimated tokens, from every applicable bucket, or raise
        429. With no limit that applies, nothing is estimated and the store is not asked.
        `with_tokens=False`: a request that uses no tokens (count_tokens) takes from request
        buckets only."""
        buckets = [
            b for b in self.buckets(principal, customer) if with_tokens or b.kind == "requests"
        ]
        if not buckets:
            return None
        if self._limiter is None:
            raise RuntimeError("rate limits used before start()")
        tokens = estimate_tokens(body_bytes, payload, default_output)
        costs = [1 if b.kind == "requests" else tokens for b in buckets]
        decision = await self._limiter.take(buckets, costs)
        if not decision.allowed:
            refused = next(r for r in decision.readings if r.retry_after_ms > 0)
            error = RateLimitError(
                f"Rate limit reached for {refused.bucket.scope.partition(':')[0]} on "
                f"{refused.bucket.kind} per minute: limit {refused.bucket.limit}, "
                f"this request needs {refused.cost}. Retry after the given time.",
                headers=decision.headers(),
            )
            error.type = refused.bucket.kind
            raise error
        token_buckets = tuple(b for b in buckets if b.kind == "tokens")
        return Reservation(token_buckets, tokens, decision)

    def settle(self, reservation: Reservation, record: UsageRecord) -> None:
        """Correct the token buckets by what the request really used (in the background)."""
        delta = record.input_tokens + record.output_tokens - reservation.tokens
        if not reservation.token_buckets or delta == 0 or self._limiter is None:
            return
        task = asyncio.get_running_loop().create_task(self._adjust(reservation, delta))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _adjust(self, reservation: Reservation, delta: int) -> None:
        assert self._limiter is not None
        buckets = reservation.token_buckets
        try:
            await self._limiter.adjust(buckets, [delta] * len(buckets))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a store fault: the bucket drains on its own in a minute
            log.warning("token limit correction failed: %s: %s", type(exc).__name__, exc)

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
