"""Routing over several fake upstreams: fallbacks, retries, weights, latency, breakers, Azure.

Each fake upstream process plays one provider. Faults come from the fake's model-name
rules ("error500") and `x-mock-*` headers, or from stopping a process outright.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import openai
import pytest
from openai import AsyncOpenAI

from proxy.accounting import tokens
from tests.support.fleet import (
    admin_get,
    cost_nusd,
    dead_url,
    restart_upstream,
    start_upstreams,
    usage_record,
)
from tests.support.money import nusd
from tests.support.procs import ServerProcess, start_proxy
from tests.support.stack import ACME_KEY, ENV, UPSTREAM_KEY

PRICES = {  # USD per 1M tokens: input, cached input, output
    "a/big": ("10", "1", "30"),
    "b/small": ("0.5", "0.05", "1.5"),
    "azure/gpt-4o": ("2.5", "1.25", "10"),
}
FAST = {"backoff_base_s": 0.01, "backoff_max_s": 2.0}  # keeps retries quick in tests
MESSAGES = [{"role": "user", "content": "A dragon who counts coins."}]


def at(provider: str, model: str, **extra: object) -> dict:
    return {"provider": provider, "model": model, **extra}


SECONDARY = at("b", "small")


def two(primary: dict, secondary: dict = SECONDARY, **route: object) -> dict:
    return {"targets": [primary, secondary], **FAST, **route}


def routing_config(urls: dict[str, str], directory: Path) -> dict:
    key = "${T_UPSTREAM_KEY}"
    return {
        "store": {"backend": "sqlite", "sqlite_path": str(directory / "costproxy.db")},
        "admin": {"token": "${T_ADMIN_TOKEN}"},
        "breaker": {"failure_threshold": 3, "cooldown_s": 0.5},
        "providers": {
            "a": {"base_url": urls["a"], "forward_headers": ["x-mock-*"], "api_key": key},
            "b": {"base_url": urls["b"], "forward_headers": ["x-mock-*"], "api_key": key},
            "c": {"base_url": urls["c"], "forward_headers": ["x-mock-*"], "api_key": key},
            "dead": {"base_url": dead_url(), "price_namespace": "a"},
            "slow": {
                "base_url": urls["a"], "forward_headers": ["x-mock-*"],
                "price_namespace": "a",
                "headers": {"x-mock-latency-ms": "5000"},
                "read_timeout_s": 0.3,
            },
            "sleepy": {  # answers after 5 s, within its own read timeout
                "base_url": urls["a"], "forward_headers": ["x-mock-*"],
                "price_namespace": "a",
                "headers": {"x-mock-latency-ms": "5000"},
            },
            "fast1": {"base_url": urls["l1"], "forward_headers": ["x-mock-*"]},
            "fast2": {"base_url": urls["l2"], "forward_headers": ["x-mock-*"]},
            "azure": {
                "kind": "azure",
                "base_url": urls["a"].removesuffix("/v1"), "forward_headers": ["x-mock-*"],
                "api_key": key,
                "api_version": "2024-10-21",
                "deployments": {"gpt-4o": "prod-4o"},
            },
        },
        "models": {
            "fb-500": two(at("a", "big-error500")),
            "fb-429": two(at("a", "big-error429")),
            "fb-refused": two(at("dead", "big")),
            "fb-timeout": two(at("slow", "big")),
            "fb-stream": two(at("a", "big-s-error503")),
            "mid-stream": two(at("a", "big")),
            "all-http": two(at("a", "x-error503"), at("b", "y-error500")),
            "all-refused": {"targets": [at("dead", "big")], "retries": 1, **FAST},
            "all-timeout": {"targets": [at("slow", "big")], "retries": 0},
            "deadline": two(at("sleepy", "big"), timeout_s=0.3),  # the route's budget: 0.3 s
            "canary": {
                "strategy": "weighted",
                "targets": [at("a", "big", weight=90), at("b", "small", weight=10)],
            },
            "breaker": two(at("c", "big")),
            "fastest": {
                "strategy": "lowest_latency",
                "targets": [at("fast1", "m"), at("fast2", "m")],
            },
            "azure-chat": {"targets": [at("azure", "gpt-4o")]},
        },
        "prices": {
            key: {"input": i, "cached_input": c, "output": o} for key, (i, c, o) in PRICES.items()
        },
        "keys": [{"key": "${T_ACME_KEY}", "customer": "acme"}],
    }  # fmt: skip


class Fleet:
    def __init__(self) -> None:
        self.upstreams: dict[str, ServerProcess] = {}
        self.proxy: ServerProcess | None = None

    @property
    def url(self) -> str:
        assert self.proxy is not None
        return self.proxy.url

    def stop(self) -> None:
        if self.proxy is not None:
            self.proxy.stop()
        for server in self.upstreams.values():
            server.stop()


@pytest.fixture(scope="module")
def fleet(upstream: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    fleet = Fleet()
    try:
        fleet.upstreams["a"] = upstream  # the session's fake upstream; not stopped here
        started = start_upstreams((), (), ("--latency-ms", "0"), ("--latency-ms", "200"))
        fleet.upstreams.update(zip(("b", "c", "l1", "l2"), started, strict=True))
        urls = {name: server.url + "/v1" for name, server in fleet.upstreams.items()}
        directory = tmp_path_factory.mktemp("routing")
        fleet.proxy = start_proxy(routing_config(urls, directory), directory, ENV)
        yield fleet
    finally:
        fleet.upstreams.pop("a", None)
        fleet.stop()


@pytest.fixture
async def client(fleet: Fleet) -> AsyncIterator[AsyncOpenAI]:
    async with AsyncOpenAI(base_url=fleet.url + "/v1", api_key=ACME_KEY, max_retries=0) as c:
        yield c


async def requests_seen(http: aiohttp.ClientSession, server: ServerProcess) -> list[dict]:
    async with http.get(server.url + "/_mock/requests") as resp:
        return await resp.json()


async def clear(http: aiohttp.ClientSession, server: ServerProcess) -> None:
    async with http.delete(server.url + "/_mock/requests") as resp:
        assert resp.status == 204


# --- fallback --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "primary_error"),
    [
        ("fb-500", "http 500"),
        ("fb-429", "http 429"),
        ("fb-refused", "upstream_unreachable"),
        ("fb-timeout", "upstream_timeout"),
    ],
)
async def test_a_failing_primary_falls_back_to_the_secondary_at_its_price(
    fleet: Fleet, client: AsyncOpenAI, http: aiohttp.ClientSession, route: str, primary_error: str
) -> None:
    raw = await client.chat.completions.with_raw_response.create(
        model=route, messages=MESSAGES, extra_headers={"x-mock-usage": "1000,100,200,0"}
    )

    assert raw.parse().choices[0].message.content
    assert raw.headers["x-costproxy-provider"] == "b"
    assert raw.headers["x-costproxy-upstream-model"] == "small"
    assert raw.headers["x-costproxy-attempts"] == "2"
    record = await usage_record(http, fleet.proxy, raw.headers["x-request-id"])
    assert (record["route"], record["provider"], record["model"]) == (route, "b", "small")
    assert record["attempts"] == 2
    assert record["status"] == 200
    assert nusd(record["cost_usd"]) == cost_nusd(PRICES["b/small"], 1000, 100, 200)
    providers = await admin_get(http, fleet.proxy, "/admin/v1/providers")
    primary = next(
        t
        for p in providers["providers"]
        for t in p["targets"]
        if route in t["routes"] and p["name"] != "b"
    )
    assert primary["failures"] >= 1 and primary["last_error"] == primary_error


async def test_a_stream_that_fails_before_its_first_byte_is_retried(
    fleet: Fleet, client: AsyncOpenAI, http: aiohttp.ClientSession
) -> None:
    raw = await client.chat.completions.with_raw_response.create(
        model="fb-stream",
        messages=MESSAGES,
        stream=True,
        extra_headers={"x-mock-usage": "50,0,8,0"},
    )
    chunks = [chunk async for chunk in raw.parse()]

    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "".join(
        f" word{i}" for i in range(8)
    )
    record = await usage_record(http, fleet.proxy, raw.headers["x-request-id"])
    assert (record["provider"], record["attempts"], record["status"]) == ("b", 2, 200)
    assert nusd(record["cost_usd"]) == cost_nusd(PRICES["b/small"], 50, 0, 8)


async def test_a_failure_after_the_first_streamed_byte_is_not_retried_and_bills_the_part_sent(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    await clear(http, fleet.upstreams["b"])
    body = {"model": "mid-stream", "messages": MESSAGES, "stream": True}
    headers = {"Authorization": f"Bearer {ACME_KEY}", "x-mock-fail-after": "3"}
    async with http.post(fleet.url + "/v1/chat/completions", json=body, headers=headers) as resp:
        assert resp.status == 200
        received = (await resp.read()).decode()
        request_id = resp.headers["x-request-id"]

    assert " word2" in received and " word3" not in received
    assert await requests_seen(http, fleet.upstreams["b"]) == [], "retried after the first byte"
    record = await usage_record(http, fleet.proxy, request_id)
    assert (record["provider"], record["attempts"], record["status"]) == ("a", 1, 502)
    assert record["usage_source"] == "estimated"
    prompt = tokens.count_prompt("chat.completions", body, "big")
    delivered = tokens.count_text("big", " word0 word1 word2")
    assert (record["input_tokens"], record["output_tokens"]) == (prompt, delivered)
    assert nusd(record["cost_usd"]) == cost_nusd(PRICES["a/big"], prompt, 0, delivered) > 0


# --- every target fails ------------------------------------------------------------------


async def test_when_every_target_fails_the_last_upstream_error_goes_back_as_sent(
    fleet: Fleet, client: AsyncOpenAI, http: aiohttp.ClientSession
) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        await client.chat.completions.create(model="all-http", messages=MESSAGES)

    response = caught.value.response
    assert response.status_code == 503  # a, b, then a again: a's 503 was the last
    assert response.json()["error"]["message"] == "The engine is currently overloaded (mock)."
    assert response.headers["x-costproxy-attempts"] == "3"
    record = await usage_record(http, fleet.proxy, response.headers["x-request-id"])
    assert (record["attempts"], record["status"], nusd(record["cost_usd"])) == (3, 503, 0)


@pytest.mark.parametrize(
    ("route", "status", "code", "attempts"),
    [
        ("all-refused", 502, "upstream_unreachable", 2),
        ("all-timeout", 504, "upstream_timeout", 1),
        # The route's time budget covers all attempts: spent on the first, none follows.
        ("deadline", 504, "upstream_timeout", 1),
    ],
)
async def test_when_every_target_fails_without_an_answer_the_client_gets_an_upstream_error(
    fleet: Fleet, http: aiohttp.ClientSession, route: str, status: int, code: str, attempts: int
) -> None:
    body = {"model": route, "messages": MESSAGES}
    headers = {"Authorization": f"Bearer {ACME_KEY}"}
    async with http.post(fleet.url + "/v1/chat/completions", json=body, headers=headers) as resp:
        error = (await resp.json())["error"]
        assert resp.status == status
        assert (error["type"], error["code"]) == ("upstream_error", code)
        assert resp.headers["x-costproxy-attempts"] == str(attempts)
        record = await usage_record(http, fleet.proxy, resp.headers["x-request-id"])
    assert (record["attempts"], record["status"], nusd(record["cost_usd"])) == (attempts, status, 0)


# --- weighted ----------------------------------------------------------------------------


async def test_a_90_10_route_splits_1000_requests_within_five_sigma(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    n, p = 1000, 0.10
    sigma = math.sqrt(n * p * (1 - p))  # binomial: 9.49 requests
    low, high = math.ceil(n * p - 5 * sigma), math.floor(n * p + 5 * sigma)  # 53 .. 147
    body = {"model": "canary", "messages": MESSAGES}
    headers = {"Authorization": f"Bearer {ACME_KEY}"}
    seen: Counter[str] = Counter()

    async def worker(count: int) -> None:
        for _ in range(count):
            async with http.post(
                fleet.url + "/v1/chat/completions", json=body, headers=headers
            ) as resp:
                assert resp.status == 200
                seen[resp.headers["x-costproxy-provider"]] += 1
                await resp.read()

    await asyncio.gather(*(worker(n // 20) for _ in range(20)))

    assert sum(seen.values()) == n
    assert low <= seen["b"] <= high, (seen, (low, high))


# --- lowest latency ----------------------------------------------------------------------


async def fastest_providers(http: aiohttp.ClientSession, fleet: Fleet, count: int) -> list[str]:
    chosen = []
    headers = {"Authorization": f"Bearer {ACME_KEY}"}
    for _ in range(count):
        body = {"model": "fastest", "messages": MESSAGES}
        async with http.post(fleet.url + "/v1/chat/completions", json=body, headers=headers) as r:
            assert r.status == 200, await r.text()
            chosen.append(r.headers["x-costproxy-provider"])
    return chosen


async def test_lowest_latency_follows_the_faster_upstream_when_delays_change(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    # fast1 answers at once, fast2 after 200 ms (a gap no load on a test machine closes).
    # After one request each (both unmeasured), the faster one takes the traffic but one
    # request in 20 (EXPLORE_EVERY).
    first = await fastest_providers(http, fleet, 30)
    assert first[:2] == ["fast1", "fast2"]
    assert Counter(first[2:])["fast1"] >= 26

    # The delays swap: both fakes restart with the other's latency.
    fleet.upstreams["l1"] = restart_upstream(fleet.upstreams["l1"], "--latency-ms", "200")
    fleet.upstreams["l2"] = restart_upstream(fleet.upstreams["l2"], "--latency-ms", "0")
    second = await fastest_providers(http, fleet, 50)

    # fast1's average climbs as it serves slowly; fast2 is measured again on its
    # exploration turn, found fast, and wins the traffic back.
    assert Counter(second[-20:])["fast2"] >= 18, second


# --- circuit breaker ---------------------------------------------------------------------


async def breaker_of(http: aiohttp.ClientSession, fleet: Fleet, provider: str) -> dict:
    report = await admin_get(http, fleet.proxy, "/admin/v1/providers")
    [entry] = [p for p in report["providers"] if p["name"] == provider]
    [target] = entry["targets"]
    return target["breaker"]


async def test_breaker_opens_sheds_load_half_opens_and_closes(
    fleet: Fleet, client: AsyncOpenAI, http: aiohttp.ClientSession
) -> None:
    async def ask() -> tuple[str, str]:
        raw = await client.chat.completions.with_raw_response.create(
            model="breaker", messages=MESSAGES
        )
        return raw.headers["x-costproxy-provider"], raw.headers["x-costproxy-attempts"]

    assert await ask() == ("c", "1")
    fleet.upstreams["c"].stop()  # c goes down: connections are refused

    for _ in range(3):  # threshold 3: each request tries c, then b
        assert await ask() == ("b", "2")
    assert (await breaker_of(http, fleet, "c"))["state"] == "open"
    for _ in range(5):  # open: c is not tried at all
        assert await ask() == ("b", "1")

    fleet.upstreams["c"] = restart_upstream(fleet.upstreams["c"])
    breaker = await breaker_of(http, fleet, "c")
    await asyncio.sleep(breaker["probe_in_s"])  # the rest of the 0.5 s cool-down
    assert (await breaker_of(http, fleet, "c"))["state"] == "half_open"

    assert await ask() == ("c", "1")  # the probe succeeds: closed again
    assert await breaker_of(http, fleet, "c") == {
        "state": "closed",
        "consecutive_failures": 0,
        "opens": 1,
        "probe_in_s": 0.0,
    }
    assert await ask() == ("c", "1")


# --- Azure -------------------------------------------------------------------------------


async def test_azure_deployment_url_api_version_and_key_header(
    fleet: Fleet, client: AsyncOpenAI, http: aiohttp.ClientSession
) -> None:
    customer_marker = uuid.uuid4().hex
    raw = await client.chat.completions.with_raw_response.create(
        model="azure-chat",
        messages=MESSAGES,
        # Azure's own client request id: a header its API defines, so it is forwarded.
        extra_headers={"x-mock-usage": "100,0,10,0", "x-ms-client-request-id": customer_marker},
    )

    assert raw.headers["x-costproxy-provider"] == "azure"
    [sent] = [
        r
        for r in await requests_seen(http, fleet.upstreams["a"])
        if r["headers"].get("x-ms-client-request-id") == customer_marker
    ]
    assert sent["path"] == "/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21"
    assert sent["headers"]["api-key"] == UPSTREAM_KEY
    assert "Authorization" not in sent["headers"]
    record = await usage_record(http, fleet.proxy, raw.headers["x-request-id"])
    assert record["model"] == "gpt-4o"
    assert nusd(record["cost_usd"]) == cost_nusd(PRICES["azure/gpt-4o"], 100, 0, 10)


async def test_providers_lists_providers_targets_and_routes(
    fleet: Fleet, http: aiohttp.ClientSession
) -> None:
    async with http.get(fleet.url + "/admin/v1/providers") as resp:
        assert resp.status == 401
    report = await admin_get(http, fleet.proxy, "/admin/v1/providers")

    assert report["generation"] == 1
    names = [p["name"] for p in report["providers"]]
    assert names[:3] == ["a", "b", "c"] and "azure" in names
    azure = next(p for p in report["providers"] if p["name"] == "azure")
    assert azure["kind"] == "azure" and azure["targets"][0]["routes"] == ["azure-chat"]
    assert UPSTREAM_KEY not in str(report)
    canary = next(r for r in report["routes"] if r["name"] == "canary")
    assert canary == {
        "name": "canary",
        "strategy": "weighted",
        "targets": ["a/big", "b/small"],
        "retries": 2,
        "timeout_s": None,
    }
