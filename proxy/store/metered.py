"""A store wrapper that times every data call and counts the ones that raise."""

from __future__ import annotations

import time
from collections.abc import Awaitable
from datetime import date
from typing import TypeVar

from proxy.metrics import ProxyMetrics
from proxy.records import AggregateRow, Breakdown, UsageRecord, WhatIfRow
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
