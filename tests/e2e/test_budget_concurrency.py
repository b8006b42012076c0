"""A budget that allows exactly K requests admits exactly K of 10×K concurrent ones, from
several client tasks and, on Redis, through two proxy processes sharing one Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from pathlib import Path

import aiohttp
import pytest

from proxy.accounting.pricing import format_usd
from tests.support.budget_stack import (
    headers,
    metered_body,
    metered_config,
    reservation_nusd,
    usage_header,
)
from tests.support.procs import ServerProcess, start_proxy
from tests.support.redis_server import RedisServer
from tests.support.stack import ADMIN_TOKEN, ENV, base_config

K = 6
CLIENT_TASKS = 6
MAX_TOKENS = 40


def budget_config(upstream: ServerProcess, store: dict, customer: str, limit_nusd: int) -> dict:
    config = metered_config(base_config(upstream.url, store))
    config["customers"] = {
        customer: {"budgets": [{"period": "monthly", "limit_usd": format_usd(limit_nusd)}]}
    }
    return config


async def burst(urls: list[str], customer: str, total: int) -> Counter[int]:
    body = metered_body(MAX_TOKENS)
    sent = headers(
        customer,
        **{"x-mock-usage": usage_header(body, MAX_TOKENS), "x-mock-latency-ms": "30"},
    )
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(total):
        queue.put_nowait(i)
    statuses: Counter[int] = Counter()

    async def client() -> None:
        async with aiohttp.ClientSession() as session:
            while not queue.empty():
                i = queue.get_nowait()
                url = urls[i % len(urls)] + "/v1/chat/completions"
                async with session.post(url, data=body, headers=sent) as resp:
                    await resp.read()
                    statuses[resp.status] += 1
                    if resp.status == 429:
                        assert (await resp.json())["error"]["code"] == "budget_exceeded"
                        assert int(resp.headers["Retry-After"]) >= 1
                    else:
                        assert "x-costproxy-budget-remaining-usd" in resp.headers

    # Several tasks, each a connection pool of its own, all started together.
    await asyncio.gather(*(client() for _ in range(CLIENT_TASKS)))
    return statuses


async def settled(url: str, customer: str) -> dict:
    async with aiohttp.ClientSession() as session:
        for _ in range(100):
            async with session.get(
                f"{url}/admin/v1/budgets/customer/{customer}",
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            ) as resp:
                (budget,) = (await resp.json())["budgets"]
            if budget["reserved_usd"] == "0.00":
                return budget
            await asyncio.sleep(0.05)
    raise AssertionError(f"holds never released: {budget}")


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
async def test_exactly_k_of_10k_concurrent_requests(
    backend: str, upstream: ServerProcess, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    customer = f"burst-{uuid.uuid4().hex[:8]}"
    body = metered_body(MAX_TOKENS)
    limit = K * reservation_nusd(body, MAX_TOKENS)
    if backend == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        store = {"backend": "redis", "redis_url": server.url, "key_prefix": f"b{uuid.uuid4().hex}:"}
        instances = 2
    else:
        store = {"backend": "sqlite", "sqlite_path": str(tmp_path / "costproxy.db")}
        instances = 1
    config = budget_config(upstream, store, customer, limit)
    proxies = [start_proxy(config, tmp_path, ENV) for _ in range(instances)]
    try:
        statuses = await burst([p.url for p in proxies], customer, 10 * K)

        assert statuses == {200: K, 429: 9 * K}
        budget = await settled(proxies[0].url, customer)
        assert budget["spent_usd"] == budget["limit_usd"]  # usage == reservation: exactly full
    finally:
        for proxy in proxies:
            proxy.stop()
