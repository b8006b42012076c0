"""A store behind a deadline: the one place where a store's failures become proxy errors.

Calls get `timeout` seconds, reads of aggregates and records (the admin API's)
`read_timeout`; a slower store is treated like a down one. The store's own "unreachable"
exceptions (its `unavailable_errors`) and the deadline both become
`StoreUnavailableError`; anything else is a bug and propagates unchanged. A store that
could not be opened at start-up is opened again by the next call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from proxy.errors import StoreUnavailableError
from proxy.store.base import Store
from proxy.store.wrapper import CallKind, StoreWrapper

__all__ = ["GuardedStore"]

T = TypeVar("T")


class GuardedStore(StoreWrapper):
    def __init__(self, store: Store, *, timeout: float, read_timeout: float = 30.0) -> None:
        super().__init__(store)
        self.timeout = timeout
        self.read_timeout = max(read_timeout, timeout)
        self._opened = False

    @property
    def unavailable_errors(self) -> tuple[type[BaseException], ...]:
        return (StoreUnavailableError,)  # what every failure of the inner store becomes

    async def open(self) -> None:
        await self._guarded(self._open, self.read_timeout)

    async def close(self) -> None:
        self._opened = False
        await self.inner.close()

    async def _around(self, name: str, call: Callable[[], Awaitable[T]], kind: CallKind) -> T:
        return await self._guarded(call, self.read_timeout if kind == "read" else self.timeout)

    async def _open(self) -> None:
        await self.inner.open()
        self._opened = True

    async def _guarded(self, call: Callable[[], Awaitable[T]], deadline: float) -> T:
        try:
            async with asyncio.timeout(deadline):
                if not self._opened and call != self._open:
                    await self._open()
                return await call()
        except TimeoutError:
            raise StoreUnavailableError(
                f"The usage store did not answer within {deadline:g}s."
            ) from None
        except self.inner.unavailable_errors as exc:
            raise StoreUnavailableError(
                f"The usage store is unreachable ({type(exc).__name__})."
            ) from exc
