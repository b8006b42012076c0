"""The fake upstream's Messages API, driven by the official `anthropic` SDK and raw HTTP:
what Anthropic's answers look like (usage excluding the cache, reads and writes apart),
with caching that follows `cache_control` blocks, the web search server tool, forced
tool calls, Anthropic-shaped errors, and an `error` event mid-stream on demand."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import anthropic
import orjson
import pytest
from aiohttp import web

from proxy.mock_upstream import create_app, prompt_tokens
from proxy.mock_upstream.messages import prompt_of

USER = [{"role": "user", "content": "Say something deterministic."}]


@asynccontextmanager
async def serve() -> AsyncIterator[str]:
    runner = web.AppRunner(create_app())
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture(scope="module")
async def url() -> AsyncIterator[str]:
    async with serve() as base:
        yield base


@pytest.fixture(scope="module")
async def client(url: str) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(base_url=url, api_key="sk-ant-test", max_retries=0) as c:
        yield c


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_a_message_has_anthropics_shape_and_usage(client: anthropic.AsyncAnthropic) -> None:
    raw = await client.messages.with_raw_response.create(
        model="claude-sonnet-4-5", max_tokens=50, system="Be brief.", messages=USER
    )
    message = await raw.parse()
    assert raw.headers["request-id"].startswith("req_mock")
    assert message.content[0].text == " word0 word1 word2 word3 word4 word5 word6 word7"
    assert message.stop_reason == "end_turn"
    prompt = prompt_tokens(prompt_of({"system": "Be brief.", "messages": USER}))
    assert (message.usage.input_tokens, message.usage.output_tokens) == (prompt, 8)
    assert message.usage.cache_read_input_tokens == 0 and message.usage.service_tier == "standard"


async def test_a_stream_carries_usage_in_message_start_and_message_delta(
    client: anthropic.AsyncAnthropic, http: aiohttp.ClientSession, url: str
) -> None:
    async with client.messages.stream(model="claude-x", max_tokens=50, messages=USER) as stream:
        final = await stream.get_final_message()
    assert final.usage.output_tokens == 8
    body = {"model": "claude-x", "max_tokens": 5, "messages": USER, "stream": True}
    async with http.post(url + "/v1/messages", json=body, headers={"x-mock-chunks": "2"}) as resp:
        assert resp.headers["Content-Type"] == "text/event-stream; charset=utf-8"
        events = (await resp.read()).decode().split("\n\n")[:-1]
    names = [e.split("\n")[0].removeprefix("event: ") for e in events]
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start = orjson.loads(events[0].split("data: ", 1)[1])
    assert start["message"]["usage"]["output_tokens"] == 1  # provisional, as Anthropic's
    end = orjson.loads(events[-2].split("data: ", 1)[1])
    assert end["usage"]["output_tokens"] == 2  # cumulative


@pytest.mark.parametrize("ttl", ["5m", "1h"])
async def test_a_cache_control_prefix_is_written_then_read(
    client: anthropic.AsyncAnthropic, ttl: str
) -> None:
    control = {"type": "ephemeral", "ttl": ttl}
    system = [{"type": "text", "text": f"Manual {uuid.uuid4().hex}", "cache_control": control}]
    first = (
        await client.messages.create(
            model="claude-x",
            max_tokens=5,
            system=system,
            messages=USER,  # type: ignore[arg-type]
        )
    ).usage
    prefix = prompt_tokens(system)
    assert first.cache_creation_input_tokens == prefix and first.cache_read_input_tokens == 0
    split = first.cache_creation
    assert (split.ephemeral_5m_input_tokens, split.ephemeral_1h_input_tokens) == (
        (prefix, 0) if ttl == "5m" else (0, prefix)
    )
    again = (
        await client.messages.create(
            model="claude-x",
            max_tokens=5,
            system=system,
            messages=USER,  # type: ignore[arg-type]
        )
    ).usage
    assert again.cache_read_input_tokens == prefix and again.cache_creation_input_tokens == 0
    # input_tokens excludes the cache, as Anthropic counts it.
    assert first.input_tokens == again.input_tokens
    assert first.input_tokens + prefix == prompt_tokens(
        prompt_of({"system": system, "messages": USER})
    )


async def test_web_search_and_a_forced_tool(client: anthropic.AsyncAnthropic) -> None:
    searched = await client.messages.create(
        model="claude-x",
        max_tokens=5,
        tools=[{"type": "web_search_20250305", "name": "web_search"}],  # type: ignore[list-item]
        messages=USER,
    )
    assert [b.type for b in searched.content] == [
        "server_tool_use",
        "web_search_tool_result",
        "text",
    ]
    assert searched.usage.server_tool_use.web_search_requests == 1
    tool = {"name": "lookup", "input_schema": {"type": "object"}}
    called = await client.messages.create(
        model="claude-x",
        max_tokens=5,
        tools=[tool],  # type: ignore[list-item]
        tool_choice={"type": "any"},
        messages=USER,
    )
    assert called.stop_reason == "tool_use" and called.content[-1].name == "lookup"


async def test_count_tokens(client: anthropic.AsyncAnthropic) -> None:
    counted = await client.messages.count_tokens(model="claude-x", messages=USER)
    assert counted.input_tokens == prompt_tokens(prompt_of({"messages": USER}))


async def test_errors_have_anthropics_shape(client: anthropic.AsyncAnthropic) -> None:
    with pytest.raises(anthropic.InternalServerError) as overloaded:
        await client.messages.create(model="claude-error529", max_tokens=5, messages=USER)
    assert overloaded.value.status_code == 529
    assert overloaded.value.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Mock overloaded error."},
    }
    with pytest.raises(anthropic.BadRequestError) as bad:
        await client.messages.create(model="claude-x", max_tokens=5, messages=[])
    assert bad.value.body["error"] == {
        "type": "invalid_request_error",
        "message": "messages: Field required",
    }


async def test_an_error_event_ends_a_stream_on_demand(client: anthropic.AsyncAnthropic) -> None:
    with pytest.raises(anthropic.APIStatusError) as failed:
        async with client.messages.stream(
            model="claude-x",
            max_tokens=5,
            messages=USER,
            extra_headers={"x-mock-stream-error": "overloaded_error"},
        ) as stream:
            async for _ in stream:
                pass
    assert "overloaded_error" in str(failed.value.body)
