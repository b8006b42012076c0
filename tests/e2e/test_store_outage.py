"""The store goes away under load: nothing is lost, nothing is counted twice.

Real processes: a persistent redis-server (AOF, fsync always) that the tests kill and
restart, the proxy, and the fake upstream.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import aiohttp
import pytest

from tests.support.outage import FAST, health, wait_until
from tests.support.procs import ServerProcess, start_proxy
from tests.support.redis_server import RedisServer
from tests.support.stack import BACKEND_KEY, ENV, Stack, base_config

CHAT = "/v1/chat/completions"
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "count to three"}]}
# Short deadlines so that an outage is noticed, and a recovery seen, within a fraction
# of a second: the tests stay fast.
FAST |= {"health_interval_s": 0.2}


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    with RedisServer(persistent=True) as server:
        yield server


def outage_proxy(
    upstream: ServerProcess, redis: RedisServer, directory: Path, **store: object
) -> tuple[dict, ServerProcess]:
    config = base_config(
        upstream.url,
        {
            "backend": "redis",
            "redis_url": redis.url,
            "journal_path": str(directory / "journal"),
            **FAST,
            **store,
        },
    )
    return config, start_proxy(config, directory, ENV)


def headers(customer: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {BACKEND_KEY}", "X-Customer-Id": customer}


async def chat(http: aiohttp.ClientSession, url: str, customer: str) -> tuple[int, Decimal]:
    """Status and the cost the proxy billed for it (from its response header)."""
    async with http.post(url + CHAT, json=BODY, headers=headers(customer)) as resp:
        await resp.read()
        return resp.status, Decimal(resp.headers.get("x-costproxy-cost-usd", "0"))


async def replayed(http: aiohttp.ClientSession, url: str) -> None:
    async def done() -> bool:
        state = await health(http, url)
        return state["store"] == "up" and state["journal_pending_records"] == 0

    await wait_until(done)


def stack_of(proxy: ServerProcess, upstream: ServerProcess) -> Stack:
    return Stack(proxy=proxy, upstream=upstream, backend="redis")


async def test_redis_killed_mid_load_loses_nothing_and_counts_nothing_twice(
    upstream: ServerProcess, redis: RedisServer, tmp_path: Path, http: aiohttp.ClientSession
):
    _, proxy = outage_proxy(upstream, redis, tmp_path)
    try:
        customer = f"outage-{uuid.uuid4().hex[:8]}"
        results: list[tuple[int, Decimal]] = []

        async def load(n: int) -> None:
            results.extend(
                await asyncio.gather(*(chat(http, proxy.url, customer) for _ in range(n)))
            )

        await load(20)
        # Kill while a wave is in flight: some writes die mid-call, later ones journal.
        wave = asyncio.ensure_future(load(30))
        await asyncio.sleep(0.02)
        redis.stop()
        await wave
        await load(20)

        async def journaling() -> bool:
            # Noticed within the call deadline of the first write that failed.
            state = await health(http, proxy.url)
            return state["store"] == "down" and state["journal_pending_records"] > 0

        await wait_until(journaling, timeout=3)
        redis.start()
        await load(10)
        await replayed(http, proxy.url)

        assert [status for status, _ in results] == [200] * 80
        stack = stack_of(proxy, upstream)

        async def all_counted() -> bool:
            # A write that failed on a stale connection just after the restart is
            # journaled and replayed a moment later: wait for it, then check exactness.
            spend = await stack.spend(http, customer=customer)
            return spend["total"]["requests"] >= 80

        await wait_until(all_counted, timeout=5)
        await replayed(http, proxy.url)
        spend = await stack.spend(http, customer=customer)
        assert spend["total"]["requests"] == 80
        assert Decimal(spend["total"]["cost_usd"]) == sum(cost for _, cost in results) > 0
    finally:
        proxy.stop()
    assert "LOST" not in proxy.logs()
    assert "usage store unavailable" in proxy.logs()


async def test_journal_survives_a_proxy_restart_and_replays_at_start(
    upstream: ServerProcess, redis: RedisServer, tmp_path: Path, http: aiohttp.ClientSession
):
    config, proxy = outage_proxy(upstream, redis, tmp_path)
    customer = f"restart-{uuid.uuid4().hex[:8]}"
    try:
        first = await asyncio.gather(*(chat(http, proxy.url, customer) for _ in range(5)))
        redis.stop()
        during = await asyncio.gather(*(chat(http, proxy.url, customer) for _ in range(25)))

        async def journaled() -> bool:
            # Written after each response, within the store's call deadline; the first
            # five may still have been on their way to Redis when it died.
            pending = (await health(http, proxy.url))["journal_pending_records"]
            assert pending <= 30
            return pending >= 25

        await wait_until(journaled, timeout=3)
    finally:
        assert proxy.stop() == 0
    assert list((tmp_path / "journal").glob("*.jsonl")), "the journal is on disk"

    redis.start()
    proxy = start_proxy(config, tmp_path, ENV)
    try:
        await replayed(http, proxy.url)
        spend = await stack_of(proxy, upstream).spend(http, customer=customer)
        assert spend["total"]["requests"] == 30
        assert Decimal(spend["total"]["cost_usd"]) == sum(c for _, c in first + during)
        assert not list((tmp_path / "journal").glob("*.jsonl")), "replayed files are deleted"
    finally:
        proxy.stop()


async def test_fail_closed_refuses_during_the_outage_and_recovers_by_itself(
    upstream: ServerProcess, redis: RedisServer, tmp_path: Path, http: aiohttp.ClientSession
):
    _, proxy = outage_proxy(upstream, redis, tmp_path, on_error="fail_closed")
    customer = f"closed-{uuid.uuid4().hex[:8]}"
    served: list[Decimal] = []

    async def answered(status: int) -> bool:
        async with http.post(proxy.url + CHAT, json=BODY, headers=headers(customer)) as resp:
            body = await resp.json()
            if resp.status == 200:
                served.append(Decimal(resp.headers["x-costproxy-cost-usd"]))
            elif resp.status == 503:
                assert body["error"]["code"] == "store_unavailable"
                assert body["error"]["type"] == "server_error"
                assert resp.headers["Retry-After"] == "1"
            return resp.status == status

    try:
        assert await answered(200)
        redis.stop()
        # Noticed by the recorder's own health check (or a failed write), not per request.
        await wait_until(lambda: answered(503), timeout=3)
        assert await answered(503)
        redis.start()
        await wait_until(lambda: answered(200), timeout=5)
        await replayed(http, proxy.url)
        # Requests admitted just before the outage was noticed were journaled: all counted.
        spend = await stack_of(proxy, upstream).spend(http, customer=customer)
        assert spend["total"]["requests"] == len(served) >= 2
        assert Decimal(spend["total"]["cost_usd"]) == sum(served)
    finally:
        proxy.stop()
