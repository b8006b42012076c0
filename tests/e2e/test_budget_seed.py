"""Budgets that appear in the config (at start, on a reload) count the period's spend so far,
as those set through the admin API do."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import aiohttp
import pytest

from tests.support.fleet import admin_get, rewrite_config
from tests.support.procs import ServerProcess, start_proxy
from tests.support.reloading import Reloadable
from tests.support.stack import BACKEND_KEY, ENV, base_config

CHAT = "/v1/chat/completions"
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
SPENT = "0.0003"  # two answers of 1,000 input tokens at $0.15 per 1M


async def spend_twice(http: aiohttp.ClientSession, proxy: ServerProcess, customer: str) -> None:
    headers = {
        "Authorization": f"Bearer {BACKEND_KEY}",
        "X-Customer-Id": customer,
        "x-mock-usage": "1000,0,0,0",
    }
    for _ in range(2):
        async with http.post(proxy.url + CHAT, json=BODY, headers=headers) as resp:
            assert resp.status == 200
    await admin_get(http, proxy, "/admin/v1/spend")  # the proxy's own writes are stored


async def spent(http: aiohttp.ClientSession, proxy: ServerProcess, scope: str) -> str:
    """The scope's spend once the background seeding has run (or after 5 s, what it is)."""
    for _ in range(100):
        (budget,) = (await admin_get(http, proxy, f"/admin/v1/budgets/{scope}"))["budgets"]
        if budget["spent_usd"] != "0.00":
            break
        await asyncio.sleep(0.05)
    return budget["spent_usd"]


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> dict:
    if request.param == "sqlite":
        return {"backend": "sqlite", "sqlite_path": str(tmp_path / "costproxy.db")}
    server = request.getfixturevalue("redis_server")
    return {"backend": "redis", "redis_url": server.url, "key_prefix": f"s{uuid.uuid4().hex}:"}


async def test_a_budget_added_by_a_reload_counts_the_spend_so_far(
    upstream: ServerProcess, tmp_path: Path, store: dict
) -> None:
    customer = f"seeded-{uuid.uuid4().hex[:8]}"
    config = base_config(upstream.url, store)
    running = Reloadable(start_proxy(config, tmp_path, ENV), config)
    try:
        async with aiohttp.ClientSession() as http:
            await spend_twice(http, running.proxy, customer)
            budgets = {customer: {"budgets": [{"period": "monthly", "limit_usd": 5}]}}
            rewrite_config(running.proxy, lambda data: data.__setitem__("customers", budgets))
            await asyncio.wait_for(running.sighup(http), 10)
            assert await spent(http, running.proxy, f"customer/{customer}") == SPENT
    finally:
        running.proxy.stop()


async def test_a_budget_in_the_config_at_start_counts_the_spend_so_far(
    upstream: ServerProcess, tmp_path: Path, store: dict
) -> None:
    customer = f"seeded-{uuid.uuid4().hex[:8]}"
    config = base_config(upstream.url, store)
    proxy = start_proxy(config, tmp_path, ENV)
    try:
        async with aiohttp.ClientSession() as http:
            await spend_twice(http, proxy, customer)
    finally:
        proxy.stop()
    config["customers"] = {customer: {"budgets": [{"period": "daily", "limit_usd": 5}]}}
    proxy = start_proxy(config, tmp_path, ENV)
    try:
        async with aiohttp.ClientSession() as http:
            assert await spent(http, proxy, f"customer/{customer}") == SPENT
    finally:
        proxy.stop()
