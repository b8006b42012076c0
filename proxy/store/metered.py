"""A store wrapper that times the calls of `STORE_OPERATIONS` (usage and budgets) and
counts the ones that raise; the others (keys, customers, pings) pass unmetered."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from proxy.observability.metrics import STORE_OPERATIONS, ProxyMetrics
from proxy.store.base import Store
from proxy.store.wrapper import CallKind, StoreWrapper

__all__ = ["MeteredStore"]

T = TypeVar("T")
_METERED = frozenset(STORE_OPERATIONS)


class MeteredStore(StoreWrapper):
    def __init__(self, store: Store, metrics: ProxyMetrics) -> None:
        super().__init__(store)
        self._metrics = metrics

    async def _around(self, name: str, call: Callable[[], Awaitable[T]], kind: CallKind) -> T:
        if name not in _METERED:
            return await call()
        started = time.perf_counter()
        try:
            result = await call()
        except Exception:
            self._metrics.store_call(name, time.perf_counter() - started, failed=True)
            raise
        # A cancelled call (a client gone, shutdown) is neither a latency nor an error.
        self._metrics.store_call(name, time.perf_counter() - started, failed=False)
        return result
