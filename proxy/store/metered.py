"""A store wrapper that times every data call and counts the ones that raise."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Sequence
from datetime import date
from typing import TypeVar

from proxy.accounting.records import AggregateRow, Breakdown, UsageRecord, WhatIfRow
from proxy.budgets.rules import BudgetRule, CounterState, Period, ReserveAnswer, SettleAnswer
from proxy.observability.metrics import ProxyMetrics
from proxy.store.base import Store

__all__ = ["MeteredStore"]

T = TypeVar("T")


class MeteredStore:
    """Implements `Store` by delegation; open/close are not metered (they are not traffic)."""

    def __init__(self, store: Store, metrics: ProxyMetrics) -> None:
        self.inner = store
        self._metrics = metrics

    async def _call(self, operation: str, call: Awaitable[T]) -> T:
        started = time.perf_counter()
        try:
            result = await call
        except Exception:
            self._metrics.store_call(operation, time.perf_counter() - started, failed=True)
            raise
        # A cancelled call (a client gone, shutdown) is neither a latency nor an error.
        self._metrics.store_call(operation, time.perf_counter() - started, failed=False)
        return result

    def __getattr__(self, name: str):
        # Admin-side calls (issued keys, customers, export pages, change watching, the rate
        # limiter) pass through unmetered: they are not request traffic.
        return getattr(self.inner, name)

    async def open(self) -> None:
        await self.inner.open()

    async def close(self) -> None:
        await self.inner.close()

    async def record_usage(self, record: UsageRecord) -> bool:
        return await self._call("record_usage", self.inner.record_usage(record))

    async def aggregate_rows(
        self, *, customer: str | None, from_day: date, to_day: date, breakdown: Breakdown
    ) -> list[AggregateRow]:
        return await self._call(
            "aggregate_rows",
            self.inner.aggregate_rows(
                customer=customer, from_day=from_day, to_day=to_day, breakdown=breakdown
            ),
        )

    async def get_usage(self, request_id: str) -> UsageRecord | None:
        return await self._call("get_usage", self.inner.get_usage(request_id))

    async def what_if_rows(
        self, *, customer: str | None, from_day: date, to_day: date
    ) -> list[WhatIfRow]:
        return await self._call(
            "what_if_rows",
            self.inner.what_if_rows(customer=customer, from_day=from_day, to_day=to_day),
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
        return await self._call(
            "reserve_budget",
            self.inner.reserve_budget(request_id, amount_nusd, counters, ttl_ms, now_ms),
        )

    async def settle_budget(
        self,
        request_id: str,
        cost_nusd: int,
        counters: Sequence[tuple[str, Period]],
        now_ms: int | None = None,
    ) -> SettleAnswer | None:
        return await self._call(
            "settle_budget", self.inner.settle_budget(request_id, cost_nusd, counters, now_ms)
        )

    async def budget_states(
        self, counters: Sequence[tuple[str, Period]], now_ms: int | None = None
    ) -> list[CounterState]:
        return await self._call("budget_states", self.inner.budget_states(counters, now_ms))

    async def claim_budget_alert(
        self, scope: str, period: Period, pid: str, alert: str, ttl_s: int | None
    ) -> bool:
        return await self._call(
            "claim_budget_alert", self.inner.claim_budget_alert(scope, period, pid, alert, ttl_s)
        )

    async def budget_overrides(self) -> tuple[int, dict[str, str]]:
        return await self._call("budget_overrides", self.inner.budget_overrides())

    async def budget_overrides_version(self) -> int:
        return await self._call("budget_overrides_version", self.inner.budget_overrides_version())

    async def put_budget_override(self, scope: str, rules_json: str) -> None:
        await self._call("put_budget_override", self.inner.put_budget_override(scope, rules_json))

    async def delete_budget_override(self, scope: str) -> bool:
        return await self._call("delete_budget_override", self.inner.delete_budget_override(scope))
