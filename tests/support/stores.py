"""The store types the store tests are written against."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from proxy.store import RedisStore, SQLiteStore

__all__ = ["AnyStore", "StoreFactory"]

AnyStore = SQLiteStore | RedisStore
StoreFactory = Callable[[], Awaitable[AnyStore]]
