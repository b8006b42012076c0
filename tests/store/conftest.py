"""Every store test runs once per store implementation, against a fresh, empty store.

The session's `redis_server` fixture comes from tests/conftest.py.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from functools import partial

import pytest

from proxy.store import RedisStore, SQLiteStore
from tests.support.redis_cluster import RedisCluster
from tests.support.redis_server import RedisServer
from tests.support.stores import AnyStore, StoreFactory


@pytest.fixture(params=["sqlite", "redis", "redis-cluster"])
async def make_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[StoreFactory]:
    """Opens stores over the same data: call it again to "restart" the store."""
    build: Callable[[], AnyStore]
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("sqlite") / "nested" / "usage.db"
        build = partial(SQLiteStore, path)
    elif request.param == "redis":
        # Looked up lazily so that SQLite-only runs need no redis-server.
        server: RedisServer = request.getfixturevalue("redis_server")
        prefix = f"test-{uuid.uuid4().hex[:12]}:"  # isolates tests sharing the server
        build = partial(RedisStore, server.url, key_prefix=prefix)
    else:
        # A real 3-master cluster: each customer's keys in one slot, the rest spread out.
        cluster: RedisCluster = request.getfixturevalue("redis_cluster")
        prefix = f"test-{uuid.uuid4().hex[:12]}:"
        build = partial(RedisStore, "", key_prefix=prefix, cluster_nodes=cluster.nodes)
    opened: list[AnyStore] = []

    async def make() -> AnyStore:
        store = build()
        await store.open()
        opened.append(store)
        return store

    yield make
    for store in opened:
        await store.close()


@pytest.fixture
async def store(make_store: StoreFactory) -> AnyStore:
    return await make_store()
