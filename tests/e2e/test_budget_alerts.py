"""Budget alerts: each fires once per period across two proxy instances, signed, and
delivered even to a receiver that fails twice."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import aiohttp

from proxy.accounting.pricing import format_usd
from tests.support.budget_stack import (
    headers,
    metered_body,
    metered_config,
    reservation_nusd,
    usage_header,
)
from tests.support.procs import ServerProcess, free_port, start_proxy
from tests.support.redis_server import RedisServer
from tests.support.stack import ENV, base_config
from tests.support.webhooks import SECRET, Receiver

MAX_TOKENS = 30


async def spend(urls: list[str], customer: str, requests: int) -> list[int]:
    body = metered_body(MAX_TOKENS)
    sent = headers(customer, **{"x-mock-usage": usage_header(body, MAX_TOKENS)})
    async with aiohttp.ClientSession() as session:

        async def one(i: int) -> int:
            url = urls[i % len(urls)] + "/v1/chat/completions"
            async with session.post(url, data=body, headers=sent) as resp:
                await resp.read()
                return resp.status

        return await asyncio.gather(*(one(i) for i in range(requests)))


async def test_each_alert_once_across_two_instances_after_retries(
    upstream: ServerProcess, tmp_path: Path, redis_server: RedisServer
) -> None:
    customer = f"alerted-{uuid.uuid4().hex[:8]}"
    per_request = reservation_nusd(metered_body(MAX_TOKENS), MAX_TOKENS)
    store = {
        "backend": "redis",
        "redis_url": redis_server.url,
        "key_prefix": f"a{uuid.uuid4().hex}:",
    }
    async with Receiver(fail_first=2) as receiver:
        config = metered_config(base_config(upstream.url, store))
        config["customers"] = {
            customer: {
                "budgets": [
                    {
                        "period": "monthly",
                        "limit_usd": format_usd(4 * per_request),
                        "alert_at": [50, 100],
                    }
                ]
            }
        }
        config["alerts"] = {
            "webhooks": [{"url": receiver.url, "secret": SECRET}],
            "retry_base_s": 0.05,
        }
        proxies = [start_proxy(config, tmp_path, ENV) for _ in range(2)]
        try:
            statuses = await spend([p.url for p in proxies], customer, 8)
            assert sorted(statuses) == [200] * 4 + [429] * 4
            for _ in range(100):
                if len(receiver.accepted) >= 3:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)  # time for a duplicate to show up, if there were one
        finally:
            for proxy in proxies:
                proxy.stop()

    assert receiver.bad_signatures == 0
    alerts = sorted(d["alert"] for d in receiver.accepted)
    assert alerts == ["forecast", "threshold:100", "threshold:50"]
    assert set(receiver.attempts.values()) == {3}  # two failures, then delivered
    by_alert = {d["alert"]: d for d in receiver.accepted}
    full = by_alert["threshold:100"]
    assert (full["customer"], full["scope"], full["period"]) == (
        customer,
        f"customer/{customer}",
        "monthly",
    )
    assert full["threshold_percent"] == 100
    assert full["spent_usd"] == full["limit_usd"]
    assert full["resets_at"].endswith("-01T00:00:00Z")
    assert by_alert["forecast"]["forecast"] is True
    # The structured log line, on whichever instance claimed the alert.
    logs = "".join(p.logs() for p in proxies)
    assert logs.count('budget alert {"type":"budget_alert","alert":"threshold:100"') == 1


async def test_a_dead_receiver_is_logged_and_never_fails_the_request(
    upstream: ServerProcess, tmp_path: Path
) -> None:
    customer = f"deadhook-{uuid.uuid4().hex[:8]}"
    store = {"backend": "sqlite", "sqlite_path": str(tmp_path / "costproxy.db")}
    config = metered_config(base_config(upstream.url, store))
    config["customers"] = {
        customer: {"budgets": [{"period": "daily", "limit_usd": "1", "alert_at": [1]}]}
    }
    config["alerts"] = {
        "webhooks": [{"url": f"http://127.0.0.1:{free_port()}/nobody", "secret": SECRET}],
        "retry_attempts": 2,
        "retry_base_s": 0.01,
    }
    proxy = start_proxy(config, tmp_path, ENV)
    try:
        body = metered_body(MAX_TOKENS)
        sent = headers(customer, **{"x-mock-usage": f"{10**6},0,0,0"})  # $1: the whole budget
        async with aiohttp.ClientSession() as session:
            async with session.post(
                proxy.url + "/v1/chat/completions", data=body, headers=sent
            ) as resp:
                assert resp.status == 200
            for _ in range(100):
                if "not delivered after 2 attempts" in proxy.logs():
                    break
                await asyncio.sleep(0.05)
    finally:
        proxy.stop()
    assert "not delivered after 2 attempts; will retry" in proxy.logs()


async def test_a_hard_budget_that_refuses_sends_its_100_percent_alert_once(
    upstream: ServerProcess, tmp_path: Path
) -> None:
    """Sequential requests: each reserves its worst case, so spend stops short of the limit
    and the budget refuses. The refusal is what the 100% alert announces, once."""
    customer = f"refused-{uuid.uuid4().hex[:8]}"
    body = metered_body(MAX_TOKENS)
    # Each answer costs 10 × $1 + 30 × $2 per 1M tokens = 70,000 nano-dollars; a request
    # reserves more (its prompt's bytes as tokens, or counted when the budget is nearly
    # spent), so after two answers the third does not fit in $0.0002.
    sent = headers(customer, **{"x-mock-usage": f"10,0,{MAX_TOKENS},0"})
    store = {"backend": "sqlite", "sqlite_path": str(tmp_path / "costproxy.db")}
    async with Receiver(fail_first=0) as receiver:
        config = metered_config(base_config(upstream.url, store))
        config["customers"] = {customer: {"budgets": [{"period": "daily", "limit_usd": "0.0002"}]}}
        config["alerts"] = {"webhooks": [{"url": receiver.url, "secret": SECRET}]}
        proxy = start_proxy(config, tmp_path, ENV)
        try:
            statuses = []
            async with aiohttp.ClientSession() as session:
                for _ in range(5):
                    url = proxy.url + "/v1/chat/completions"
                    async with session.post(url, data=body, headers=sent) as resp:
                        statuses.append(resp.status)
            for _ in range(100):
                if any(d["alert"] == "threshold:100" for d in receiver.accepted):
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)  # time for a duplicate to show up, if there were one
        finally:
            proxy.stop()

    assert statuses == [200, 200, 429, 429, 429]
    full = [d for d in receiver.accepted if d["alert"] == "threshold:100"]
    assert len(full) == 1
    assert (full[0]["trigger"], full[0]["spent_usd"], full[0]["limit_usd"]) == (
        "refused",
        "0.00014",
        "0.0002",
    )
