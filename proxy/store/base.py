"""The store interface: what the request path and the admin API need from persistence."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import date
from typing import Protocol

from proxy.access.keys import Customer, IssuedKey
from proxy.access.ratelimit import Limiter
from proxy.access.shares import ShareLink
from proxy.accounting.records import AggregateRow, Breakdown, Totals, UsageRecord, WhatIfRow
from proxy.accounting.rollups import CustomerRanking, RankBy, RecentPage
from proxy.budgets.rules import (
    BudgetRule,
    CounterState,
    Period,
    ReserveAnswer,
    Seed,
    SettleAnswer,
)

__all__ = ["Store"]


class Store(Protocol):
    @property
    def unavailable_errors(self) -> tuple[type[BaseException], ...]:
        """The exceptions by which this store says "I am unreachable or failing" (as
        opposed to a bug): `GuardedStore` turns them into StoreUnavailableError."""

    async def open(self) -> None:
        """Connect / create schema. Called once at start-up."""

    async def close(self) -> None:
        """Release connections and threads. Safe to call twice."""

    async def ping(self) -> None:
        """One cheap round trip: returns when the store answers, raises when it cannot."""

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

    async def what_if_rows(
        self, *, customer: str | None, from_day: date, to_day: date
    ) -> list[WhatIfRow]:
        """Daily what-if rows in [from_day, to_day], one per (customer, day, route,
        provider, model, alternative); all customers when customer is None."""

    # Budgets. A counter is (scope, period); see proxy.budgets.book for scope strings.
    # `now_ms` is for tests; None means the store's own clock (Redis TIME on Redis).

    async def reserve_budget(
        self,
        request_id: str,
        amount_nusd: int,
        counters: Sequence[tuple[str, BudgetRule]],
        ttl_ms: int,
        now_ms: int | None = None,
    ) -> ReserveAnswer:
        """Atomically: reclaim expired holds, roll counters into the current period, and
        hold `amount_nusd` on every counter if no hard budget would be overrun."""

    async def settle_budget(
        self,
        request_id: str,
        cost_nusd: int,
        counters: Sequence[tuple[str, Period]],
        now_ms: int | None = None,
    ) -> SettleAnswer | None:
        """Atomically release the hold and add the actual cost to every counter.
        None when this request was settled before (a replay changes nothing)."""

    async def seed_budget_spent(self, seeds: Sequence[Seed], now_ms: int | None = None) -> int:
        """Atomically, for each seed whose period is still current: bring the counter into
        it and set spent = max(spent, floor). Returns how many counters were raised."""

    async def budget_states(
        self, counters: Sequence[tuple[str, Period]], now_ms: int | None = None
    ) -> list[CounterState]:
        """Read-only: each counter as it stands in the current period."""

    async def claim_budget_alert(
        self, scope: str, period: Period, pid: str, alert: str, ttl_s: int | None
    ) -> bool:
        """True for exactly one caller per (scope, period, pid, alert), across instances."""

    async def budget_overrides(self) -> tuple[int, dict[str, str]]:
        """(version, scope → rules JSON) of the budgets set at run time."""

    async def budget_overrides_version(self) -> int:
        """Changes whenever a run-time budget is put or deleted (cheap to poll)."""

    async def put_budget_override(self, scope: str, rules_json: str) -> None: ...

    async def delete_budget_override(self, scope: str) -> bool: ...
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

    # The console's reads (proxy/console): kept beside the per-customer aggregates, written
    # with them atomically per record, so pages never scan the usage log.

    async def global_rows(self, *, from_day: date, to_day: date) -> list[AggregateRow]:
        """Daily rows of all customers together (customer ""), one per (day, route,
        provider, model)."""

    async def global_what_if_rows(self, *, from_day: date, to_day: date) -> list[WhatIfRow]: ...

    async def minute_totals(self, *, from_ms: int, to_ms: int) -> Totals:
        """Totals of all customers in the whole UTC minutes in [from_ms, to_ms) (the last
        day at most)."""

    async def rank_customers(
        self,
        *,
        from_day: date,
        to_day: date,
        by: RankBy = "cost",
        descending: bool = True,
        search: str | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> CustomerRanking:
        """A page of the customers with traffic in the range, ordered by `by` (ties by
        name), with exact totals; `search` is a case-insensitive part of the name."""

    async def recent_usage(
        self,
        *,
        customer: str | None = None,
        model: str | None = None,
        status: int | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> RecentPage:
        """Usage records newest first, filtered; `cursor` from the previous page."""

    async def put_share(self, share: ShareLink) -> None: ...

    async def find_share(self, sha256: str) -> ShareLink | None: ...

    async def list_shares(self, customer: str | None) -> list[ShareLink]: ...

    async def revoke_share(self, share_id: str, now_ms: int) -> bool:
        """Mark a link revoked (kept, so the list shows it); False when unknown."""

    # Shared state between proxy instances.

    def rate_limiter(self) -> Limiter:
        """The limiter every instance on this store shares (call after open())."""

    async def publish_change(self) -> None:
        """Tell every instance that keys or customers changed (drop caches)."""

    def watch_changes(self) -> AsyncIterator[None]:
        """Yields when subscribed and on every published change; may raise on disconnect."""

    # Periodic jobs (the reconciliation with the providers' reports), shared by instances.

    async def claim_lease(self, name: str, ttl_s: float) -> bool:
        """True for one caller at a time per `name`, across instances: the lease is held
        until `ttl_s` seconds have passed (it is never released early)."""

    async def put_job_result(self, name: str, result_json: str) -> None:
        """Keep the job's last result (JSON text), replacing the one before."""

    async def job_result(self, name: str) -> str | None:
        """The job's last result, or None when it has none yet."""
