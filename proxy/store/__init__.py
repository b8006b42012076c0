"""Persistence of usage records and their aggregates: the interface and its implementations."""

from proxy.store.base import Store
from proxy.store.redis import RedisStore
from proxy.store.sqlite import SQLiteStore

__all__ = ["RedisStore", "SQLiteStore", "Store"]
