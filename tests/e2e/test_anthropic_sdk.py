"""The official `anthropic` SDK, unchanged, through a real proxy in front of the fake
upstream's Messages API (both stores): plain, streamed, with `cache_control` blocks (5m
and 1h writes, then reads), with a tool, with the web search server tool, and
count_tokens. Every cost is checked to the nano-dollar against Anthropic's published
prices applied to the usage the SDK itself parsed (tests/support/anthropic_prices.py),
never against the proxy's own price code.

The SDK (2.x) sends the key as `Authorization: Bearer` and `anthropic-version:
2026-10-21`; the proxy takes either auth header and passes the version on unchanged.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import anthropic
import pytest

from tests.support.anthropic_prices import Counts, anthropic_nusd
from tests.support.anthropic_stack import anthropic_config
from tests.support.money import nusd, usd
from tests.support.procs import ServerProcess, start_proxy
from tests.support.redis_server import RedisServer
from tests.support.stack import ACME_KEY, ADMIN_TOKEN, BACKEND_KEY, ENV, UPSTREAM_KEY

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
USER = [{"role": "user", "content": "Tell me about the sea."}]


@pytest.fixture(scope="module", params=["sqlite", "redis"])
def proxy(
    request: pytest.FixtureRequest,
    upstream: ServerProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServerProcess]:
    directory = tmp_path_factory.mktemp(f"anthropic-{request.param}")
    store: dict[str, Any] = {"backend": "sqlite", "sqlite_path": str(directory / "usage.db")}
    if request.param == "redis":
        redis: RedisServer = request.getfixturevalue("redis_server")
        store = {"backend": "redis", "redis_url": redis.url, "key_prefix": f"a{id(directory)}:"}
    server = start_proxy(anthropic_config(upstream.url, store), directory, ENV)
    yield server
    server.stop()


@pytest.fixture
async def customer() -> str:
    return f"claude-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def client(proxy: ServerProcess, customer: str) -> AsyncIterator[anthropic.AsyncAnthropic]:
    """The SDK as a backend uses it: the proxy's root as base URL, the costproxy key as
    api_key (a trusted key naming the customer, so each test has its own spend)."""
    async with anthropic.AsyncAnthropic(
        base_url=proxy.url,
        api_key=BACKEND_KEY,
        max_retries=0,
        default_headers={"X-Customer-Id": customer},
    ) as c:
        yield c


def counts(usage: Any) -> Counts:
    """The SDK's parsed usage as Anthropic's counts."""
    split = usage.cache_creation
    write_1h = split.ephemeral_1h_input_tokens if split else 0
    tools = usage.server_tool_use
    return Counts(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_read=usage.cache_read_input_tokens or 0,
        write_5m=(usage.cache_creation_input_tokens or 0) - write_1h,
        write_1h=write_1h,
        web_searches=tools.web_search_requests if tools else 0,
    )


async def record(proxy: ServerProcess, http: aiohttp.ClientSession, request_id: str) -> dict:
    async with http.get(f"{proxy.url}/admin/v1/usage/{request_id}", headers=ADMIN) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def spend(proxy: ServerProcess, http: aiohttp.ClientSession, customer: str) -> dict:
    async with http.get(
        f"{proxy.url}/admin/v1/spend", params={"customer": customer}, headers=ADMIN
    ) as resp:
        assert resp.status == 200, await resp.text()
        return (await resp.json())["total"]


async def test_a_plain_message(
    proxy: ServerProcess,
    client: anthropic.AsyncAnthropic,
    http: aiohttp.ClientSession,
    customer: str,
) -> None:
    raw = await client.messages.with_raw_response.create(
        model="claude-sonnet-4-5",
        max_tokens=256,
        system="You are terse.",
        messages=USER,
        metadata={"user_id": "reader-7"},
    )
    message = await raw.parse()
    assert message.content[0].type == "text" and message.content[0].text
    cost = anthropic_nusd("claude-sonnet-4-5", counts(message.usage))
    assert cost > 0
    assert raw.headers["x-costproxy-cost-usd"] == usd(cost)
    assert raw.headers["x-costproxy-provider"] == "anthropic"
    assert raw.headers["request-id"].startswith("req_mock")  # the upstream's id, passed back
    row = await record(proxy, http, raw.headers["x-request-id"])
    assert (row["customer"], row["end_user"], row["endpoint"]) == (customer, "reader-7", "messages")
    prompt = message.usage.input_tokens  # no cache: the whole prompt
    assert (row["input_tokens"], row["output_tokens"]) == (prompt, message.usage.output_tokens)
    assert nusd(row["cost_usd"]) == cost and row["usage_source"] == "upstream"


async def test_a_streamed_message(
    proxy: ServerProcess,
    client: anthropic.AsyncAnthropic,
    http: aiohttp.ClientSession,
    customer: str,
) -> None:
    async with client.messages.stream(
        model="claude-haiku-4-5", max_tokens=256, messages=USER
    ) as stream:
        text = "".join([piece async for piece in stream.text_stream])
        final = await stream.get_final_message()
        request_id = stream.response.headers["x-request-id"]
    assert text == final.content[0].text and text
    cost = anthropic_nusd("claude-haiku-4-5", counts(final.usage))
    row = await record(proxy, http, request_id)
    assert nusd(row["cost_usd"]) == cost
    assert row["output_tokens"] == final.usage.output_tokens
    assert row["ttft_ms"] is not None
    total = await spend(proxy, http, customer)
    assert (total["requests"], nusd(total["cost_usd"])) == (1, cost)


def cached_system(text: str, ttl: str | None = None) -> list[dict]:
    control: dict[str, str] = {"type": "ephemeral"}
    if ttl:
        control["ttl"] = ttl
    return [{"type": "text", "text": text, "cache_control": control}]


@pytest.mark.parametrize("ttl", [None, "1h"])
async def test_cache_control_blocks_write_then_read(
    proxy: ServerProcess,
    client: anthropic.AsyncAnthropic,
    http: aiohttp.ClientSession,
    customer: str,
    ttl: str | None,
) -> None:
    system = cached_system(f"A long manual, edition {uuid.uuid4().hex}. " * 40, ttl)
    costs = []
    for turn in ("first", "second"):
        raw = await client.messages.with_raw_response.create(
            model="claude-sonnet-4-5",
            max_tokens=64,
            system=system,  # type: ignore[arg-type]
            messages=[{"role": "user", "content": f"The {turn} question."}],
        )
        usage = (await raw.parse()).usage
        cost = anthropic_nusd("claude-sonnet-4-5", counts(usage))
        costs.append(cost)
        assert raw.headers["x-costproxy-cost-usd"] == usd(cost)
        row = await record(proxy, http, raw.headers["x-request-id"])
        written = usage.cache_creation_input_tokens
        if turn == "first":  # the prefix is written, at its lifetime's price
            assert written > 0 and usage.cache_read_input_tokens == 0
            split = usage.cache_creation
            assert (split.ephemeral_1h_input_tokens > 0) == (ttl == "1h")
        else:  # and read the next time
            assert usage.cache_read_input_tokens > 0 and written == 0
        prompt = usage.input_tokens + usage.cache_read_input_tokens + written
        assert row["input_tokens"] == prompt  # the record counts every prompt token
        assert row["cached_input_tokens"] == usage.cache_read_input_tokens
        assert row["cache_write_5m_tokens"] + row["cache_write_1h_tokens"] == written
        assert row["cache_write_1h_tokens"] == (written if ttl == "1h" else 0)
        assert nusd(row["cost_usd"]) == cost
    assert costs[1] < costs[0]  # reading is cheaper than writing
    total = await spend(proxy, http, customer)
    assert nusd(total["cost_usd"]) == sum(costs)


async def test_a_tool_call(
    proxy: ServerProcess, client: anthropic.AsyncAnthropic, http: aiohttp.ClientSession
) -> None:
    tool = {
        "name": "get_weather",
        "description": "The weather in a city.",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
    raw = await client.messages.with_raw_response.create(
        model="claude-sonnet-4-5",
        max_tokens=128,
        tools=[tool],  # type: ignore[list-item]
        tool_choice={"type": "tool", "name": "get_weather"},
        messages=[{"role": "user", "content": "Weather in Paris?"}],
    )
    message = await raw.parse()
    assert message.stop_reason == "tool_use"
    assert [b.type for b in message.content][-1] == "tool_use"
    row = await record(proxy, http, raw.headers["x-request-id"])
    assert nusd(row["cost_usd"]) == anthropic_nusd("claude-sonnet-4-5", counts(message.usage))


async def test_the_web_search_server_tool_is_billed_per_search(
    proxy: ServerProcess, client: anthropic.AsyncAnthropic, http: aiohttp.ClientSession
) -> None:
    async with client.messages.stream(
        model="claude-sonnet-4-5",
        max_tokens=128,
        tools=[{"type": "web_search_20250305", "name": "web_search"}],  # type: ignore[list-item]
        messages=[{"role": "user", "content": "What happened today?"}],
    ) as stream:
        final = await stream.get_final_message()
        request_id = stream.response.headers["x-request-id"]
    assert final.usage.server_tool_use.web_search_requests == 1
    row = await record(proxy, http, request_id)
    assert row["web_search_requests"] == 1
    cost = anthropic_nusd("claude-sonnet-4-5", counts(final.usage))
    assert nusd(row["cost_usd"]) == cost
    tokens_only = Counts(final.usage.input_tokens, final.usage.output_tokens)
    without_search = anthropic_nusd("claude-sonnet-4-5", tokens_only)
    assert cost - without_search == 10_000_000  # $10 per 1,000 searches


async def test_count_tokens_is_free(
    proxy: ServerProcess,
    client: anthropic.AsyncAnthropic,
    http: aiohttp.ClientSession,
    customer: str,
) -> None:
    counted = await client.messages.count_tokens(model="claude-sonnet-4-5", messages=USER)
    assert counted.input_tokens > 0
    total = await spend(proxy, http, customer)
    assert (total["requests"], total["cost_usd"]) == (0, "0.000000000")


async def test_the_key_in_x_api_key_and_anthropics_errors(
    proxy: ServerProcess, http: aiohttp.ClientSession
) -> None:
    # Older SDKs (and curl examples) send the key in x-api-key.
    body = {"model": "claude-haiku-4-5", "max_tokens": 16, "messages": USER}
    async with http.post(
        proxy.url + "/v1/messages", json=body, headers={"x-api-key": ACME_KEY}
    ) as resp:
        assert resp.status == 200
        assert (await resp.json())["type"] == "message"
    async with anthropic.AsyncAnthropic(
        base_url=proxy.url, api_key="sk-not-a-key", max_retries=0
    ) as stranger:
        with pytest.raises(anthropic.AuthenticationError) as refused:
            await stranger.messages.create(model="claude-haiku-4-5", max_tokens=16, messages=USER)
    assert refused.value.body["error"]["type"] == "authentication_error"
    async with anthropic.AsyncAnthropic(base_url=proxy.url, api_key=ACME_KEY, max_retries=0) as c:
        with pytest.raises(anthropic.NotFoundError) as missing:
            await c.messages.create(model="gpt-4o-mini", max_tokens=16, messages=USER)
        assert missing.value.body["error"]["type"] == "not_found_error"
        # The provider's own errors reach the client as Anthropic sent them.
        with pytest.raises(anthropic.InternalServerError) as overloaded:
            await c.messages.create(
                model="claude-haiku-4-5",
                max_tokens=16,
                messages=USER,
                extra_headers={"x-mock-status": "529"},
            )
        assert overloaded.value.status_code == 529
        assert overloaded.value.body["error"]["type"] == "overloaded_error"
    assert UPSTREAM_KEY not in str(overloaded.value.body)
