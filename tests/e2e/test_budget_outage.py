"""Budgets while Redis is down (store.on_error: fail_open): enforced from the store's last
figures plus this instance's spend since, and that spend charged to Redis once it is back.

Real processes: a persistent redis-server the test kills and restarts, the proxy, and the
fake upstream. Every request costs exactly its reservation (the upstream reports the
bound as usage), so a budget of K reservations admits exactly K requests.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from proxy.accounting.pricing import format_usd, format_usd_short
from tests.support.budget_stack import (
    headers,
    metered_body,
    metered_config,
    reservation_nusd,
    usage_header,
)
from tests.support.outage import FAST, health, wait_until
from tests.support.procs import ServerProcess, start_proxy
from tests.support.redis_server import RedisServer
from tests.support.stack import ADMIN_TOKEN, ENV, Stack, base_config

K = 6
MAX_TOKENS = 40
BODY = metered_body(MAX_TOKENS)
COST = reservation_nusd(BODY, MAX_TOKENS)


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    with RedisServer(persistent=True) as server:
        yield server


async def send(http: aiohttp.ClientSession, url: str, customer: str) -> tuple[int, str]:
    sent = headers(customer, **{"x-mock-usage": usage_header(BODY, MAX_TOKENS)})
    async with http.post(url + "/v1/chat/completions", data=BODY, headers=sent) as resp:
        return resp.status, (await resp.json()).get("error", {}).get("code", "")


async def budget(http: aiohttp.ClientSession, url: str, customer: str) -> dict:
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with http.get(f"{url}/admin/v1/budgets/customer/{customer}", headers=auth) as resp:
        assert resp.status == 200, await resp.text()
        (state,) = (await resp.json())["budgets"]
        return state


async def metrics(http: aiohttp.ClientSession, url: str) -> dict[str, float]:
    async with http.get(url + "/metrics") as resp:
        text = await resp.text()
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.labels
    }


async def test_budget_holds_through_a_redis_outage_and_catches_up(
    upstream: ServerProcess, redis: RedisServer, tmp_path: Path, http: aiohttp.ClientSession
):
    seen, unseen = (f"{name}-{uuid.uuid4().hex[:6]}" for name in ("seen", "unseen"))
    store = {"backend": "redis", "redis_url": redis.url, "journal_path": str(tmp_path / "j")}
    config = metered_config(base_config(upstream.url, store | FAST))
    limit = {"budgets": [{"period": "monthly", "limit_usd": format_usd(K * COST)}]}
    config["customers"] = {seen: limit, unseen: limit}
    config["budgeting"] = {"refresh_s": 0.2}
    proxy = start_proxy(config, tmp_path, ENV)
    try:
        for _ in range(2):
            assert await send(http, proxy.url, seen) == (200, "")

        async def settled_twice() -> bool:
            state = await budget(http, proxy.url, seen)
            spent = format_usd_short(2 * COST)
            return state["reserved_usd"] == "0.00" and state["spent_usd"] == spent

        await wait_until(settled_twice)
        redis.stop()

        async def down() -> bool:
            return (await health(http, proxy.url))["store"] == "down"

        await wait_until(down, timeout=3)
        during = [await send(http, proxy.url, seen) for _ in range(8)]
        # The two spent before plus four: the budget is full, checked without Redis.
        assert during == [(200, "")] * (K - 2) + [(429, "budget_exceeded")] * 4
        # A budget this instance never had figures for cannot be checked: refused, not
        # forwarded unbudgeted (budgeting.fail_open is off).
        assert await send(http, proxy.url, unseen) == (503, "budget_store_unavailable")
        figures = await metrics(http, proxy.url)
        assert figures["costproxy_store_up"] == 0
        assert figures["costproxy_journal_pending_records"] >= K - 2
        assert figures["costproxy_budget_offline_reservations_total"] >= K - 2
        assert figures["costproxy_budget_offline_unsent_usd"] == float((K - 2) * COST) / 1e9

        redis.start()

        async def caught_up() -> bool:
            figures = await metrics(http, proxy.url)
            return (
                figures["costproxy_store_up"] == 1
                and figures["costproxy_journal_pending_records"] == 0
                and figures["costproxy_budget_offline_unsent_usd"] == 0
            )

        await wait_until(caught_up)
        # Redis now has the spend made while it was away: exactly the limit, no hold left.
        state = await budget(http, proxy.url, seen)
        assert state["spent_usd"] == state["limit_usd"] == format_usd_short(K * COST)
        assert state["reserved_usd"] == "0.00"
        assert await send(http, proxy.url, seen) == (429, "budget_exceeded")
        # And the usage records, journaled meanwhile, are all in: K requests billed.
        spend = await Stack(proxy=proxy, upstream=upstream, backend="redis").spend(
            http, customer=seen
        )
        assert spend["total"]["requests"] == K
        assert spend["total"]["cost_usd"] == format_usd(K * COST)
    finally:
        started = time.monotonic()
        assert proxy.stop() == 0
        assert time.monotonic() - started < 10
    assert "LOST" not in proxy.logs()
