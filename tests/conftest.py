"""Shared fixtures: real processes on loopback (fake upstream, proxy, redis-server)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.support.procs import ServerProcess, start_proxy, start_upstream
from tests.support.redis_cluster import RedisCluster
from tests.support.redis_server import RedisServer
from tests.support.replay_upstream import start_replay_upstream
from tests.support.stack import ENV, Stack, base_config


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisCluster]:
    cluster = RedisCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close()


@pytest.fixture(scope="session")
def upstream() -> Iterator[ServerProcess]:
    server = start_upstream()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def replay_upstream() -> Iterator[ServerProcess]:
    """The replay upstream: recorded provider answers, byte for byte."""
    server = start_replay_upstream()
    yield server
    server.stop()


def store_config(backend: str, request: pytest.FixtureRequest, directory: Path) -> dict:
    if backend == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        return {
            "backend": "redis",
            "redis_url": server.url,
            "key_prefix": f"t{id(directory)}:",
            "journal_path": str(directory / "journal"),
        }
    return {"backend": "sqlite", "sqlite_path": str(directory / "costproxy.db")}


@pytest.fixture(scope="module", params=["sqlite", "redis"])
def stack(
    request: pytest.FixtureRequest,
    upstream: ServerProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """A proxy per store backend, shared by a test module (tests use their own customers)."""
    directory = tmp_path_factory.mktemp(f"proxy-{request.param}")
    config = base_config(upstream.url, store_config(request.param, request, directory))
    proxy = start_proxy(config, directory, ENV)
    yield Stack(proxy=proxy, upstream=upstream, backend=request.param)
    proxy.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session
