"""No client starves the others: `max_in_flight` per key and per customer, and a share of
each provider's connection pool per customer (before: 1,100 slow streams of one customer
held all 1,000 connections of a provider; another customer's request waited for a
connection until it timed out, 504 after 11 s, and the breaker opened on a healthy
provider). Slow streams of the fake upstream stand in for a busy provider."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest

from tests.support.procs import ServerProcess, start_proxy
from tests.support.stack import ACME_KEY, ADMIN_TOKEN, BACKEND_KEY, ENV, base_config

CHAT = "/v1/chat/completions"
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
POOL = 20  # the provider's max_connections; each customer may hold half
SLOW = {"x-mock-chunks": "40", "x-mock-chunk-delay-ms": "100"}  # a 4 s stream


@pytest.fixture(scope="module")
def proxy(upstream: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("fair-share")
    store = {"backend": "sqlite", "sqlite_path": str(directory / "costproxy.db")}
    config = base_config(upstream.url, store)
    openai = config["providers"]["openai"]
    # The connect timeout bounds the wait for a free connection: short, so that a
    # request starved of one fails fast (the failure this test must never see).
    openai |= {"max_connections": POOL, "max_customer_share": 0.5, "connect_timeout_s": 1}
    # A provider without shares (1: a customer may take it all), as before the fix.
    config["providers"]["unshared"] = {
        **openai,
        "max_connections": 5,
        "max_customer_share": 1,
        "connect_timeout_s": 0.5,
    }
    config["models"]["unshared"] = {
        "targets": [{"provider": "unshared", "model": "gpt-4o-mini"}],
        "retries": 0,
    }
    config["breaker"] = {"failure_threshold": 1, "cooldown_s": 60}
    config["keys"][0]["max_in_flight"] = 3  # acme's own key
    config["customers"] = {"capped": {"max_in_flight": 2}}
    server = start_proxy(config, directory, ENV)
    yield server.url
    server.stop()


@pytest.fixture
async def streams() -> AsyncIterator[list[aiohttp.ClientResponse]]:
    """Responses a test leaves open; closed at its end."""
    opened: list[aiohttp.ClientResponse] = []
    yield opened
    for resp in opened:
        resp.close()


async def open_stream(
    http: aiohttp.ClientSession, url: str, headers: dict[str, str]
) -> aiohttp.ClientResponse:
    resp = await http.post(url + CHAT, json={**BODY, "stream": True}, headers={**headers, **SLOW})
    if resp.status == 200:
        await resp.content.readuntil(b"\n\n")  # the stream is open: it holds a connection
    return resp


def as_customer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {BACKEND_KEY}", "X-Customer-Id": name}


async def test_one_customer_cannot_take_a_providers_whole_pool(
    proxy: str, http: aiohttp.ClientSession, streams: list[aiohttp.ClientResponse]
) -> None:
    greedy, other = f"greedy-{uuid.uuid4().hex[:6]}", f"other-{uuid.uuid4().hex[:6]}"
    opened = await asyncio.gather(
        *(open_stream(http, proxy, as_customer(greedy)) for _ in range(30))
    )
    streams.extend(opened)
    statuses = sorted(resp.status for resp in opened)
    assert statuses == [200] * (POOL // 2) + [429] * (30 - POOL // 2)
    refused = next(resp for resp in opened if resp.status == 429)
    error = (await refused.json())["error"]
    assert error["code"] == "concurrency_limit_exceeded"
    assert refused.headers["Retry-After"] == "1"

    # Another customer gets its answer while the greedy one's streams are all still open.
    async with http.post(proxy + CHAT, json=BODY, headers=as_customer(other)) as resp:
        assert resp.status == 200, await resp.text()
    assert all(not resp.content.at_eof() for resp in opened if resp.status == 200)

    # The refusals were the proxy's: the provider's breaker saw no failure.
    async with http.get(proxy + "/admin/v1/providers", headers=ADMIN) as resp:
        (openai,) = [p for p in (await resp.json())["providers"] if p["name"] == "openai"]
    assert openai["connections"] == {"in_use": POOL // 2, "max": POOL, "per_customer": POOL // 2}
    (target,) = [t for t in openai["targets"] if t["model"] == "gpt-4o-mini"]
    assert target["breaker"]["state"] == "closed"
    assert target["failures"] == 0


async def test_max_in_flight_per_key(
    proxy: str, http: aiohttp.ClientSession, streams: list[aiohttp.ClientResponse]
) -> None:
    headers = {"Authorization": f"Bearer {ACME_KEY}"}
    streams.extend(await asyncio.gather(*(open_stream(http, proxy, headers) for _ in range(3))))
    assert [resp.status for resp in streams] == [200] * 3
    async with http.post(proxy + CHAT, json=BODY, headers=headers) as resp:
        error = await resp.json()
        assert resp.status == 429, error
        assert error["error"]["code"] == "concurrency_limit_exceeded"
        assert resp.headers["Retry-After"] == "1"
    streams[0].close()
    for _ in range(100):  # the proxy notices the hang-up within 0.25 s
        async with http.post(proxy + CHAT, json=BODY, headers=headers) as resp:
            if resp.status == 200:
                break
        await asyncio.sleep(0.05)
    assert resp.status == 200


async def test_max_in_flight_per_customer_from_config_and_admin_api(
    proxy: str, http: aiohttp.ClientSession, streams: list[aiohttp.ClientResponse]
) -> None:
    api_customer = f"api-{uuid.uuid4().hex[:6]}"
    async with http.put(
        f"{proxy}/admin/v1/customers/{api_customer}", json={"max_in_flight": 1}, headers=ADMIN
    ) as resp:
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["max_in_flight"] == 1
    for customer, limit in (("capped", 2), (api_customer, 1)):
        opened = [await open_stream(http, proxy, as_customer(customer)) for _ in range(limit)]
        streams.extend(opened)
        assert [resp.status for resp in opened] == [200] * limit
        async with http.post(proxy + CHAT, json=BODY, headers=as_customer(customer)) as resp:
            assert resp.status == 429, customer
            assert (await resp.json())["error"]["code"] == "concurrency_limit_exceeded"


async def test_an_issued_key_takes_max_in_flight(
    proxy: str, http: aiohttp.ClientSession, streams: list[aiohttp.ClientResponse]
) -> None:
    body = {"customer": f"issued-{uuid.uuid4().hex[:6]}", "max_in_flight": 1}
    async with http.post(proxy + "/admin/v1/keys", json=body, headers=ADMIN) as resp:
        created = await resp.json()
        assert resp.status == 201, created
        assert created["max_in_flight"] == 1
    headers = {"Authorization": f"Bearer {created['key']}"}
    streams.append(await open_stream(http, proxy, headers))
    assert streams[-1].status == 200
    async with http.post(proxy + CHAT, json=BODY, headers=headers) as resp:
        assert resp.status == 429


async def breaker_of(http: aiohttp.ClientSession, proxy: str, provider: str) -> dict:
    async with http.get(proxy + "/admin/v1/providers", headers=ADMIN) as resp:
        (entry,) = [p for p in (await resp.json())["providers"] if p["name"] == provider]
    (target,) = entry["targets"]
    return {"state": target["breaker"]["state"], "failures": target["failures"]}


async def test_a_full_pool_is_the_proxys_wait_not_the_providers_failure(
    proxy: str, http: aiohttp.ClientSession, streams: list[aiohttp.ClientResponse]
) -> None:
    """Without shares a customer may fill the pool; then another customer's request waits
    up to the connect timeout and gets 503 provider_pool_full, and the provider's breaker
    counts nothing (before: 504 upstream_timeout, a failure that opened the breaker)."""
    greedy, other = as_customer(f"greedy-{uuid.uuid4().hex[:6]}"), as_customer("patient")
    unshared = {**BODY, "model": "unshared", "stream": True}
    for _ in range(5):
        resp = await http.post(proxy + CHAT, json=unshared, headers={**greedy, **SLOW})
        streams.append(resp)
        assert resp.status == 200
        await resp.content.readuntil(b"\n\n")

    async with http.post(proxy + CHAT, json={**BODY, "model": "unshared"}, headers=other) as resp:
        error = await resp.json()
    assert resp.status == 503, error
    assert error["error"]["code"] == "provider_pool_full"
    assert resp.headers["Retry-After"] == "1"
    assert await breaker_of(http, proxy, "unshared") == {"state": "closed", "failures": 0}
