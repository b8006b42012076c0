"""Reconciliation over time: two proxy instances on one Redis, both configured to reconcile
three providers with the fake report API. One of them runs each reconciliation, once; both
export its outcome as metrics and serve it on the admin API.

A third instance, configured without `reconcile`, carries the traffic first, so that the
two start (at once) with the records already in the store.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from openai import AsyncOpenAI
from prometheus_client.parser import text_string_to_metric_families

from tests.support.procs import ServerProcess, start_proxy
from tests.support.reconcile_stack import ADMIN_KEYS_ENV, PRICES, SNAPSHOTS, billed, openai_report
from tests.support.redis_server import RedisServer
from tests.support.report_api import Billed, FakeReportAPI
from tests.support.stack import ACME_KEY, ADMIN_TOKEN, ENV

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
WRONG_KEY = "sk-admin-wrong-SECRET-0f0f"
MESSAGES = [{"role": "user", "content": "hello"}]


@dataclass
class Fleet:
    a: ServerProcess
    b: ServerProcess
    fake: FakeReportAPI
    started: float


def config(upstream_url: str, fake: FakeReportAPI, store: dict, *, scheduled: bool) -> dict:
    def provider(project: str, key_env: str = "T_OPENAI_ADMIN_KEY") -> dict:
        report = {**openai_report(fake, project), "admin_key_env": key_env}
        return {
            "base_url": upstream_url + "/v1",
            "forward_headers": ["x-mock-*"],
            "api_key": "${T_UPSTREAM_KEY}",
            "report": report,
        }

    entry = {"every": "8s", "lag_days": 0, "days": 1, "timeout_s": 120}
    return {
        "store": store,
        "admin": {"token": "${T_ADMIN_TOKEN}"},
        "request_log": {"enabled": False},
        "providers": {
            "openai": provider("proj_proxy"),
            "drift": provider("proj_drift"),
            "broken": provider("proj_broken", "T_WRONG_ADMIN_KEY"),
        },
        "models": {"gpt-4o-mini": {"targets": [{"provider": "openai", "model": "gpt-4o-mini"}]}},
        "prices": {f"{p}/gpt-4o-mini": PRICES["gpt-4o-mini"] for p in ("openai", "drift")},
        "keys": [{"key": "${T_ACME_KEY}", "customer": "acme"}],
        "reconcile": (
            [{"provider": p, **entry} for p in ("openai", "drift", "broken")] if scheduled else []
        ),
    }


@pytest.fixture(scope="module")
def fleet(
    redis_server: RedisServer, upstream: ServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fleet]:
    directory: Path = tmp_path_factory.mktemp("reconcile-fleet")
    store = {"backend": "redis", "redis_url": redis_server.url,
             "key_prefix": f"rec{uuid.uuid4().hex[:8]}:"}  # fmt: skip
    env = {**ENV, **ADMIN_KEYS_ENV, "T_WRONG_ADMIN_KEY": WRONG_KEY}
    fake = FakeReportAPI(prices=dict(PRICES), snapshots=SNAPSHOTS).start()
    traffic = start_proxy(config(upstream.url, fake, store, scheduled=False), directory, env)
    pair: list[ServerProcess] = []
    try:
        asyncio.run(send_traffic(traffic, fake))
        scheduled = config(upstream.url, fake, store, scheduled=True)
        started = time.time()
        with ThreadPoolExecutor(2) as pool:
            pair = list(pool.map(lambda _: start_proxy(scheduled, directory, env), range(2)))
        yield Fleet(pair[0], pair[1], fake, started)
    finally:
        for proxy in [traffic, *pair]:
            proxy.stop()
        fake.stop()


async def send_traffic(proxy: ServerProcess, fake: FakeReportAPI) -> None:
    day = datetime.now(UTC).date()
    seen: list[Billed] = []
    async with AsyncOpenAI(base_url=proxy.url + "/v1", api_key=ACME_KEY, max_retries=0) as client:
        for usage in ("500,100,50,0", "700,0,90,0"):
            reply = await client.chat.completions.create(
                model="gpt-4o-mini", messages=MESSAGES, extra_headers={"x-mock-usage": usage}
            )
            seen.append(billed(day, "gpt-4o-mini", reply.usage))
    # Traffic of the drift provider's project that never passed through a proxy:
    # 1,000 × 0.15 + 100 × 0.6 = 210 per 1M = $0.00021.
    seen.append(Billed(day, "gpt-4o-mini", 2, 1000, 0, 0, 0, 100, project_id="proj_drift"))
    fake.billed = seen
    async with (
        aiohttp.ClientSession() as http,
        http.get(proxy.url + "/admin/v1/spend", headers=ADMIN) as resp,
    ):  # the spend API waits for this instance's writes
        assert resp.status == 200


async def reconcile_metrics(proxy: ServerProcess) -> dict[tuple[str, str], float]:
    async with aiohttp.ClientSession() as http, http.get(proxy.url + "/metrics") as resp:
        text = await resp.text()
    return {
        (sample.name, sample.labels["provider"]): sample.value
        for family in text_string_to_metric_families(text)
        if family.name.startswith("costproxy_reconcile_")
        for sample in family.samples
    }


async def both_exported(fleet: Fleet) -> tuple[dict, dict]:
    deadline = time.monotonic() + 30
    while True:
        a, b = await reconcile_metrics(fleet.a), await reconcile_metrics(fleet.b)
        wanted = {("costproxy_reconcile_matched", p) for p in ("openai", "drift")}
        wanted.add(("costproxy_reconcile_last_attempt_failed", "broken"))
        if (wanted <= a.keys() and wanted <= b.keys()) or time.monotonic() > deadline:
            return a, b
        await asyncio.sleep(0.2)


async def test_one_instance_runs_it_and_both_export_it(fleet: Fleet) -> None:
    a, b = await both_exported(fleet)
    assert a == b
    assert a[("costproxy_reconcile_matched", "openai")] == 1
    assert a[("costproxy_reconcile_difference_usd", "openai")] == 0
    assert a[("costproxy_reconcile_matched", "drift")] == 0
    assert a[("costproxy_reconcile_difference_usd", "drift")] == pytest.approx(0.00021, abs=1e-12)
    for provider in ("openai", "drift"):
        at = a[("costproxy_reconcile_last_success_timestamp_seconds", provider)]
        assert fleet.started <= at <= time.time()
    # The failed one has no success to export, only its failure.
    assert {name for name, provider in a if provider == "broken"} == {
        "costproxy_reconcile_last_attempt_failed"
    }
    assert a[("costproxy_reconcile_last_attempt_failed", "broken")] == 1
    assert a[("costproxy_reconcile_last_attempt_failed", "openai")] == 0
    # Each provider's report was fetched once, by one instance (the failed one stopped at
    # its first request, refused).
    assert fleet.fake.requests_to("/v1/organization/usage/completions") == 3
    assert fleet.fake.requests_to("/v1/organization/costs") == 2


async def admin_get(proxy: ServerProcess, path: str) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http, http.get(proxy.url + path, headers=ADMIN) as resp:
        return resp.status, await resp.json()


async def test_every_instance_serves_the_last_outcome(fleet: Fleet) -> None:
    await both_exported(fleet)
    answers = [await admin_get(p, "/admin/v1/reconcile/openai") for p in (fleet.a, fleet.b)]
    assert answers[0] == answers[1]
    status, answer = answers[0]
    assert status == 200
    assert (answer["provider"], answer["every"], answer["status"]) == ("openai", "8s", "matched")
    assert answer["last_error"] is None and answer["succeeded_at"].endswith("Z")
    (row,) = answer["result"]["rows"]
    # 1,200 input of which 100 cached, 140 output: 1,100 × 0.15 + 100 × 0.075 + 140 × 0.6
    # = 165 + 7.5 + 84 = 256.5 per 1M.
    assert row["proxy"] == row["provider"] == {
        "requests": 2, "input_tokens": 1200, "cached_input_tokens": 100, "cache_write_tokens": 0,
        "output_tokens": 140, "cost_usd": "0.000256500",
    }  # fmt: skip

    status, drift = await admin_get(fleet.b, "/admin/v1/reconcile/drift")
    assert drift["status"] == "differences"
    (row,) = drift["result"]["rows"]
    assert [e["code"] for e in row["explained"]] == ["not_through_proxy"]
    assert drift["result"]["totals"]["difference"]["cost_usd"] == "0.000210000"


async def test_a_failed_run_says_why(fleet: Fleet) -> None:
    await both_exported(fleet)
    status, answer = await admin_get(fleet.a, "/admin/v1/reconcile/broken")
    assert status == 200
    assert answer["status"] == "failed" and answer["result"] is None
    assert "HTTP 401, the provider refused the key in T_WRONG_ADMIN_KEY" in answer["last_error"]
    assert WRONG_KEY not in answer["last_error"]
    for proxy in (fleet.a, fleet.b):
        assert WRONG_KEY not in proxy.logs()
    status, answer = await admin_get(fleet.a, "/admin/v1/reconcile/nope")
    assert status == 404 and answer["error"]["code"] == "reconcile_not_configured"
