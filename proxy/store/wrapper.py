"""The Store interface implemented by delegation, method by method, so that wrappers
(`GuardedStore`: deadlines and error translation; `MeteredStore`: timings) add their work
in one place, `_around`, and the type checker sees the whole interface.

Each call is of a kind: `traffic` (the request path and its background work), `read`
(admin reads of aggregates and records, which may take long on a big history), or `admin`
(keys, customers and budget settings changed by an operator).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import date
from typing import Literal, TypeVar

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
from proxy.store.base import Store

__all__ = ["CallKind", "StoreWrapper"]

T = TypeVar("T")
CallKind = Literal["traffic", "read", "admin"]


class StoreWrapper:
    def __init__(self, inner: Store) -> None:
        self.inner = inner

    @property
    def unavailable_errors(self) -> tuple[type[BaseException], ...]:
        return self.inner.unavailable_errors

    async def _around(self, name: str, call: Callable[[], Awaitable[T]], kind: CallKind) -> T:
        """Runs one call of the inner store; wrappers override it."""
        return await call()

    async def open(self) -> None:
        await self.inner.open()

    async def close(self) -> None:
        await self.inner.close()

    async def ping(self) -> None:
        await self._around("ping", self.inner.ping, "traffic")

    # Usage.

    async def record_usage(self, record: UsageRecord) -> bool:
        return await self._around(
            "record_usage", lambda: self.inner.record_usage(record), "traffic"
        )

    async def aggregate_rows(
        self, *, customer: str | None, from_day: date, to_day: date, breakdown: Breakdown
    ) -> list[AggregateRow]:
        return await self._around(
            "aggregate_rows",
            lambda: self.inner.aggregate_rows(
                customer=customer, from_day=from_day, to_day=to_day, breakdown=breakdown
            ),
            "read",
        )

    async def get_usage(self, request_id: str) -> UsageRecord | None:
        return await self._around("get_usage", lambda: self.inner.get_usage(request_id), "read")

    async def what_if_rows(
        self, *, customer: str | None, from_day: date, to_day: date
    ) -> list[WhatIfRow]:
        return await self._around(
            "what_if_rows",
            lambda: self.inner.what_if_rows(customer=customer, from_day=from_day, to_day=to_day),
            "read",
        )

    async def monthly_totals(self, customer: str, month: str) -> Totals:
        return await self._around(
            "monthly_totals", lambda: self.inner.monthly_totals(customer, month), "traffic"
        )

    def iter_usage(
        self, *, customer: str | None, from_ms: int, to_ms: int, page_size: int = 1000
    ) -> AsyncIterator[UsageRecord]:
        # A stream of pages: each page is the inner store's own call.
        return self.inner.iter_usage(
            customer=customer, from_ms=from_ms, to_ms=to_ms, page_size=page_size
        )

    # Budgets: reserve and settle are on the request path; the rest is admin and refresh.

    async def reserve_budget(
        self,
        request_id: str,
        amount_nusd: int,
        counters: Sequence[tuple[str, BudgetRule]],
        ttl_ms: int,
        now_ms: int | None = None,
    ) -> ReserveAnswer:
        return await self._around(
            "reserve_budget",
            lambda: self.inner.reserve_budget(request_id, amount_nusd, counters, ttl_ms, now_ms),
            "traffic",
        )

    async def settle_budget(
        self,
        request_id: str,
        cost_nusd: int,
        counters: Sequence[tuple[str, Period]],
        now_ms: int | None = None,
    ) -> SettleAnswer | None:
        return await self._around(
            "settle_budget",
            lambda: self.inner.settle_budget(request_id, cost_nusd, counters, now_ms),
            "traffic",
        )

    async def seed_budget_spent(self, seeds: Sequence[Seed], now_ms: int | None = None) -> int:
        return await self._around(
            "seed_budget_spent", lambda: self.inner.seed_budget_spent(seeds, now_ms), "admin"
        )

    async def budget_states(
        self, counters: Sequence[tuple[str, Period]], now_ms: int | None = None
    ) -> list[CounterState]:
        return await self._around(
            "budget_states", lambda: self.inner.budget_states(counters, now_ms), "traffic"
        )

    async def claim_budget_alert(
        self, scope: str, period: Period, pid: str, alert: str, ttl_s: int | None
    ) -> bool:
        return await self._around(
            "claim_budget_alert",
            lambda: self.inner.claim_budget_alert(scope, period, pid, alert, ttl_s),
            "traffic",
        )

    async def budget_overrides(self) -> tuple[int, dict[str, str]]:
        return await self._around("budget_overrides", self.inner.budget_overrides, "traffic")

    async def budget_overrides_version(self) -> int:
        return await self._around(
            "budget_overrides_version", self.inner.budget_overrides_version, "traffic"
        )

    async def put_budget_override(self, scope: str, rules_json: str) -> None:
        await self._around(
            "put_budget_override",
            lambda: self.inner.put_budget_override(scope, rules_json),
            "admin",
        )

    async def delete_budget_override(self, scope: str) -> bool:
        return await self._around(
            "delete_budget_override", lambda: self.inner.delete_budget_override(scope), "admin"
        )

    # Issued keys and customers.

    async def create_key(self, key: IssuedKey, sha256: str) -> None:
        await self._around("create_key", lambda: self.inner.create_key(key, sha256), "admin")

    async def find_key(self, sha256: str, now_ms: int) -> IssuedKey | None:
        return await self._around(
            "find_key", lambda: self.inner.find_key(sha256, now_ms), "traffic"
        )

    async def get_key(self, key_id: str) -> IssuedKey | None:
        return await self._around("get_key", lambda: self.inner.get_key(key_id), "admin")

    async def list_keys(self, customer: str | None) -> list[IssuedKey]:
        return await self._around("list_keys", lambda: self.inner.list_keys(customer), "admin")

    async def revoke_key(self, key_id: str) -> bool:
        return await self._around("revoke_key", lambda: self.inner.revoke_key(key_id), "admin")

    async def rotate_key(
        self, key_id: str, sha256: str, prefix: str, old_valid_until_ms: int
    ) -> IssuedKey | None:
        return await self._around(
            "rotate_key",
            lambda: self.inner.rotate_key(key_id, sha256, prefix, old_valid_until_ms),
            "admin",
        )

    async def touch_keys(self, last_used: Mapping[str, int]) -> None:
        await self._around("touch_keys", lambda: self.inner.touch_keys(last_used), "traffic")

    async def put_customer(self, customer: Customer) -> Customer:
        return await self._around(
            "put_customer", lambda: self.inner.put_customer(customer), "admin"
        )

    async def get_customer(self, customer_id: str) -> Customer | None:
        return await self._around(
            "get_customer", lambda: self.inner.get_customer(customer_id), "admin"
        )

    async def list_customers(self) -> list[Customer]:
        return await self._around("list_customers", self.inner.list_customers, "admin")

    async def delete_customer(self, customer_id: str) -> bool:
        return await self._around(
            "delete_customer", lambda: self.inner.delete_customer(customer_id), "admin"
        )

    # The console's reads, and its share links.

    async def global_rows(self, *, from_day: date, to_day: date) -> list[AggregateRow]:
        return await self._around(
            "global_rows", lambda: self.inner.global_rows(from_day=from_day, to_day=to_day), "read"
        )

    async def global_what_if_rows(self, *, from_day: date, to_day: date) -> list[WhatIfRow]:
        return await self._around(
            "global_what_if_rows",
            lambda: self.inner.global_what_if_rows(from_day=from_day, to_day=to_day),
            "read",
        )

    async def minute_totals(self, *, from_ms: int, to_ms: int) -> Totals:
        return await self._around(
            "minute_totals", lambda: self.inner.minute_totals(from_ms=from_ms, to_ms=to_ms), "read"
        )

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
        return await self._around(
            "rank_customers",
            lambda: self.inner.rank_customers(
                from_day=from_day,
                to_day=to_day,
                by=by,
                descending=descending,
                search=search,
                offset=offset,
                limit=limit,
            ),
            "read",
        )

    async def recent_usage(
        self,
        *,
        customer: str | None = None,
        model: str | None = None,
        status: int | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> RecentPage:
        return await self._around(
            "recent_usage",
            lambda: self.inner.recent_usage(
                customer=customer, model=model, status=status, cursor=cursor, limit=limit
            ),
            "read",
        )

    async def put_share(self, share: ShareLink) -> None:
        await self._around("put_share", lambda: self.inner.put_share(share), "admin")

    async def find_share(self, sha256: str) -> ShareLink | None:
        return await self._around("find_share", lambda: self.inner.find_share(sha256), "admin")

    async def list_shares(self, customer: str | None) -> list[ShareLink]:
        return await self._around("list_shares", lambda: self.inner.list_shares(customer), "admin")

    async def revoke_share(self, share_id: str, now_ms: int) -> bool:
        return await self._around(
            "revoke_share", lambda: self.inner.revoke_share(share_id, now_ms), "admin"
        )

    # Shared state between proxy instances: long-lived objects, passed through.

    def rate_limiter(self) -> Limiter:
        return self.inner.rate_limiter()

    async def publish_change(self) -> None:
        await self._around("publish_change", self.inner.publish_change, "admin")

    def watch_changes(self) -> AsyncIterator[None]:
        return self.inner.watch_changes()

    # Periodic jobs: background work, with the deadlines of admin calls.

    async def claim_lease(self, name: str, ttl_s: float) -> bool:
        return await self._around(
            "claim_lease", lambda: self.inner.claim_lease(name, ttl_s), "admin"
        )

    async def put_job_result(self, name: str, result_json: str) -> None:
        await self._around(
            "put_job_result", lambda: self.inner.put_job_result(name, result_json), "admin"
        )

    async def job_result(self, name: str) -> str | None:
        return await self._around("job_result", lambda: self.inner.job_result(name), "read")
