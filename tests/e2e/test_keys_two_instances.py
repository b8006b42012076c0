"""Issued keys and rate limits across two proxy processes sharing one Redis."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import openai
import pytest
from openai import AsyncOpenAI
from prometheus_client.parser import text_string_to_metric_families

from tests.support.procs import ServerProcess, start_proxy
from tests.support.redis_server import RedisServer
from tests.support.stack import ADMIN_TOKEN, ENV, base_config

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def pair(
    redis_server: RedisServer, upstream: ServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    directory: Path = tmp_path_factory.mktemp("pair")
    store = {
        "backend": "redis",
        "redis_url": redis_server.url,
        "key_prefix": f"pair{uuid.uuid4().hex[:8]}:",
    }
    config = base_config(upstream.url, store)
    a = start_proxy(config, directory, ENV)
    b = start_proxy(config, directory, ENV)
    yield a, b
    a.stop()
    b.stop()


async def admin(http: aiohttp.ClientSession, method: str, url: str, **kw) -> tuple[int, dict]:
    async with http.request(method, url, headers=ADMIN, **kw) as resp:
        return resp.status, (await resp.json() if resp.status != 204 else {})


async def chat(url: str, key: str, **headers: str) -> int:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            url + "/v1/chat/completions",
            json=BODY,
            headers={"Authorization": f"Bearer {key}", **headers},
        ) as resp,
    ):
        await resp.read()
        return resp.status


async def test_key_lifecycle_create_use_revoke_on_both_instances(pair, http):
    a, b = pair
    status, created = await admin(
        http, "POST", a.url + "/admin/v1/keys", json={"customer": "lifecycle", "name": "prod"}
    )
    assert status == 201, created
    secret = created["key"]
    assert secret.startswith("cp-") and len(secret) == 46
    assert created["prefix"] == secret[:8] and created["customer"] == "lifecycle"

    for proxy in (a, b):  # the official SDK, as a customer would use it
        async with AsyncOpenAI(base_url=proxy.url + "/v1", api_key=secret, max_retries=0) as sdk:
            reply = await sdk.chat.completions.with_raw_response.create(**BODY)
            record_id = reply.headers["x-request-id"]
    status, record = await admin(http, "GET", f"{b.url}/admin/v1/usage/{record_id}")
    assert status == 200 and record["customer"] == "lifecycle"
    assert record["key_id"] == created["id"]

    status, listed = await admin(http, "GET", b.url + "/admin/v1/keys?customer=lifecycle")
    assert [k["id"] for k in listed["keys"]] == [created["id"]]
    assert secret not in repr(listed) and "key" not in listed["keys"][0]

    status, _ = await admin(http, "DELETE", f"{a.url}/admin/v1/keys/{created['id']}")
    assert status == 204
    revoked_at = time.monotonic()
    pending = {a.url, b.url}
    while pending and time.monotonic() - revoked_at < 1.0:
        for url in list(pending):
            if await chat(url, secret) == 401:
                pending.discard(url)
    assert not pending, f"still accepted {time.monotonic() - revoked_at:.2f}s after revoke"
    status, _ = await admin(http, "DELETE", f"{b.url}/admin/v1/keys/{created['id']}")
    assert status == 404


async def test_rotate_keeps_the_old_secret_for_the_grace_period(pair, http):
    a, b = pair
    _, created = await admin(http, "POST", a.url + "/admin/v1/keys", json={"customer": "rot"})
    old = created["key"]
    assert await chat(b.url, old) == 200  # cached on b as valid
    status, rotated = await admin(
        http, "POST", f"{a.url}/admin/v1/keys/{created['id']}/rotate", json={"grace_s": 1}
    )
    assert status == 200 and rotated["id"] == created["id"] and rotated["key"] != old
    for url in (a.url, b.url):
        assert await chat(url, rotated["key"]) == 200
        assert await chat(url, old) == 200  # within grace
    await asyncio.sleep(1.0)
    deadline = time.monotonic() + 1.5  # grace over; cache TTL is 1 s
    while time.monotonic() < deadline and {await chat(a.url, old), await chat(b.url, old)} != {401}:
        await asyncio.sleep(0.05)
    assert await chat(a.url, old) == 401 and await chat(b.url, old) == 401
    assert await chat(b.url, rotated["key"]) == 200


async def test_rpm_holds_across_two_instances(pair, http):
    a, b = pair
    _, created = await admin(
        http, "POST", a.url + "/admin/v1/keys", json={"customer": "rpm-co", "rpm": 5}
    )
    key = created["key"]
    async with http.post(
        a.url + "/v1/chat/completions", json=BODY, headers={"Authorization": f"Bearer {key}"}
    ) as resp:
        assert resp.status == 200
        assert resp.headers["x-ratelimit-limit-requests"] == "5"
        assert resp.headers["x-ratelimit-remaining-requests"] == "4"
        assert resp.headers["x-ratelimit-reset-requests"] == "12s"
    statuses = await asyncio.gather(*(chat((a, b)[i % 2].url, key) for i in range(12)))
    assert statuses.count(200) == 4, statuses  # 5 in all, the first one above included
    async with http.post(
        b.url + "/v1/chat/completions", json=BODY, headers={"Authorization": f"Bearer {key}"}
    ) as resp:
        assert resp.status == 429
        error = (await resp.json())["error"]
        assert error["code"] == "rate_limit_exceeded" and error["type"] == "requests"
        assert resp.headers["x-ratelimit-remaining-requests"] == "0"
        assert 1 <= int(resp.headers["retry-after"]) <= 12
    # The SDK sees OpenAI's own error class.
    async with AsyncOpenAI(base_url=a.url + "/v1", api_key=key, max_retries=0) as sdk:
        with pytest.raises(openai.RateLimitError):
            await sdk.chat.completions.create(**BODY)
    # 8 of the burst, the one after it and the SDK's: counted by kind across instances.
    refused = 0.0
    for proxy in (a, b):
        async with http.get(proxy.url + "/metrics") as resp:
            for family in text_string_to_metric_families(await resp.text()):
                for sample in family.samples:
                    if sample.name == "costproxy_ratelimited_total":
                        assert sample.value == 0 or sample.labels == {"kind": "requests"}
                        refused += sample.value
    assert refused == 10


async def test_tpm_of_a_customer_holds_across_two_instances(pair, http):
    a, b = pair
    status, _ = await admin(
        http, "PUT", a.url + "/admin/v1/customers/tpm-co", json={"name": "TPM", "tpm": 1000}
    )
    assert status == 200
    _, created = await admin(http, "POST", b.url + "/admin/v1/keys", json={"customer": "tpm-co"})
    key = created["key"]
    usage = {"x-mock-usage": "100,0,50,0"}  # 150 tokens each, more than reserved pre-flight
    body = {**BODY, "max_tokens": 50}
    used, allowed = 0, 0
    for i in range(20):
        async with http.post(
            (a, b)[i % 2].url + "/v1/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {key}", **usage},
        ) as resp:
            reply = await resp.json()
            assert resp.headers["x-ratelimit-limit-tokens"] == "1000"
            if resp.status != 200:
                break
            used += reply["usage"]["total_tokens"]
            allowed += 1
        await asyncio.sleep(0.03)  # let settle's correction land
    assert resp.status == 429
    assert reply["error"]["type"] == "tokens"
    assert reply["error"]["code"] == "rate_limit_exceeded"
    # Admitted while used + the pre-flight bound (< 150) fit: 7 requests, one over by < 150.
    assert allowed == 7, allowed
    assert 1000 - 150 < used <= 1000 + 150
