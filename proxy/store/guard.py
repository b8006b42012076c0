"""A store behind a deadline: the one place where a store's failures become proxy errors.

Writes and pings get `timeout` seconds, reads (the admin API's) `read_timeout`; a slower
store is treated like a down one. The store's
own "unreachable" exceptions (its `unavailable_errors`) and the deadline both become
`StoreUnavailableError`; anything else is a bug and propagates unchanged. A store that
could not be opened at start-up is opened again by the next call.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Awaitable, Callable
from datetime import date
from typing import TypeVar

from proxy.accounting.records import AggregateRow, Breakdown, Totals, UsageRecord
from proxy.errors import StoreUnavailableError
from proxy.store.base import Store

__all__ = ["GuardedStore"]

T = TypeVar("T")

# Read-only calls of the console's pages: they get the read deadline, like aggregate_rows.
_READS = frozenset(
    {"global_rows", "global_what_if_rows", "minute_totals", "rank_customers", "recent_usage"}
)


class GuardedStore:
    """Implements `Store` over another store."""

    def __init__(self, store: Store, *, timeout: float, read_timeout: float = 30.0) -> None:
        self.inner = store
        self.timeout = timeout
        self.read_timeout = max(read_timeout, timeout)
        self.unavailable_errors = (StoreUnavailableError,)
        self._opened = False

    def __getattr__(self, name: str):
        # The rest of the interface (budgets, keys, customers): coroutine methods get the
        # same deadline and error translation; iterators and the limiter pass through.
        attr = getattr(self.inner, name)
        if not inspect.iscoroutinefunction(attr):
            return attr

        timeout = self.read_timeout if name in _READS else None

        async def guarded(*args: object, **kwargs: object):
            return await self._call(functools.partial(attr, *args, **kwargs), timeout=timeout)

        # Kept on the instance: later lookups (budgets call two per request) find it there
        # and skip this method.
        self.__dict__[name] = guarded
        return guarded

    async def open(self) -> None:
        await self._call(self._open, timeout=self.read_timeout)

    async def close(self) -> None:
        self._opened = False
        await self.inner.close()

    async def ping(self) -> None:
        await self._call(self.inner.ping)

    async def record_usage(self, record: UsageRecord) -> bool:
        return await self._call(self.inner.record_usage, record)

    async def aggregate_rows(
        self, *, customer: str | None, from_day: date, to_day: date, breakdown: Breakdown
    ) -> list[AggregateRow]:
        return await self._call(
            lambda: self.inner.aggregate_rows(
                customer=customer, from_day=from_day, to_day=to_day, breakdown=breakdown
            ),
            timeout=self.read_timeout,
        )

    async def get_usage(self, request_id: str) -> UsageRecord | None:
        return await self._call(self.inner.get_usage, request_id, timeout=self.read_timeout)

    async def monthly_totals(self, customer: str, month: str) -> Totals:
        monthly_totals = self.inner.monthly_totals  # type: ignore[attr-defined]
        return await self._call(monthly_totals, customer, month)

    async def _open(self) -> None:
        await self.inner.open()
        self._opened = True

    async def _call(
        self, fn: Callable[..., Awaitable[T]], *args: object, timeout: float | None = None
    ) -> T:
        deadline = self.timeout if timeout is None else timeout
        try:
            async with asyncio.timeout(deadline):
                if not self._opened and fn != self._open:
                    await self._open()
                return await fn(*args)
        except TimeoutError:
            raise StoreUnavailableError(
                f"The usage store did not answer within {deadline:g}s."
            ) from None
        except self.inner.unavailable_errors as exc:
            raise StoreUnavailableError(
                f"The usage store is unreachable ({type(exc).__name__})."
            ) from exc
