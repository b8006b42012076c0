"""The store interface: what the request path and the admin API need from persistence."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import date
from typing import Protocol

from proxy.keys import Customer, IssuedKey
from proxy.ratelimit import Limiter
from proxy.records import AggregateRow, Breakdown, Totals, UsageRecord

__all__ = ["Store"]


class Store(Protocol):
    async def open(self) -> None:
        """Connect / create schema. Called once at start-up."""

    async def close(self) -> None:
        """Release connections and threads. Safe to call twice."""

    async def record_usage(self, record: UsageRecord) -> bool:
        """Apply one usage record atomically: the usage log entry plus every aggregate.

        Idempotent by `request_id`: a second call with the same id changes nothing and
        returns False; the first returns True.
        """

    async def aggregate_rows(
        self, *, customer: str | None, from_day: date, to_day: date, breakdown: Breakdown
    ) -> list[AggregateRow]:
        """Daily aggregate rows in [from_day, to_day] (inclusive), all customers when None.

        breakdown "base": one row per (customer, day, route, provider, model), dim None.
        breakdown "tag": as base, split by each tag of the request (dim "" when untagged).
        breakdown "end_user": as base, split by end user (dim "" when none).
        """

    async def get_usage(self, request_id: str) -> UsageRecord | None:
        """The usage record of one request, or None when unknown (or trimmed away)."""

    async def monthly_totals(self, customer: str, month: str) -> Totals:
        """Totals of `customer` in the UTC month `month` ("YYYY-MM"); zeros when none."""

    def iter_usage(
        self, *, customer: str | None, from_ms: int, to_ms: int, page_size: int = 1000
    ) -> AsyncIterator[UsageRecord]:
        """Usage records with from_ms <= ts_ms < to_ms (all customers when None), read from
        the store a page at a time so that any range streams in constant memory."""

    # Issued keys. Only a key's SHA-256 reaches the store, never its secret.

    async def create_key(self, key: IssuedKey, sha256: str) -> None: ...

    async def find_key(self, sha256: str, now_ms: int) -> IssuedKey | None:
        """The key a secret's digest opens (an old digest only within its grace period)."""

    async def get_key(self, key_id: str) -> IssuedKey | None: ...

    async def list_keys(self, customer: str | None) -> list[IssuedKey]: ...

    async def revoke_key(self, key_id: str) -> bool:
        """Delete the key and every digest that opens it; False when unknown."""

    async def rotate_key(
        self, key_id: str, sha256: str, prefix: str, old_valid_until_ms: int
    ) -> IssuedKey | None:
        """Add a new digest; the old ones stop opening the key at `old_valid_until_ms`."""

    async def touch_keys(self, last_used: Mapping[str, int]) -> None:
        """Record last-used times (epoch ms) of many keys in one write."""

    # Customers.

    async def put_customer(self, customer: Customer) -> Customer:
        """Create or replace; a replaced customer keeps its `created_ms`."""

    async def get_customer(self, customer_id: str) -> Customer | None: ...

    async def list_customers(self) -> list[Customer]: ...

    async def delete_customer(self, customer_id: str) -> bool:
        """Delete the customer and revoke its issued keys; False when unknown."""

    # Shared state between proxy instances.

    def rate_limiter(self) -> Limiter:
        """The limiter every instance on this store shares (call after open())."""

    async def publish_change(self) -> None:
        """Tell every instance that keys or customers changed (drop caches)."""

    def watch_changes(self) -> AsyncIterator[None]:
        """Yields when subscribed and on every published change; may raise on disconnect."""
