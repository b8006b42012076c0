"""The fake upstream, driven as its users drive it: the official `openai` SDK and raw HTTP."""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import socket
import struct
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import openai
import orjson
import pytest
from aiohttp import web
from openai import AsyncOpenAI
from openai.types.responses import ResponseCompletedEvent

from proxy.mock_upstream import MockOptions, add_arguments, create_app, prompt_tokens, reply_text
from proxy.mock_upstream.cli import options_from_args
from proxy.mock_upstream.options import Behaviour, MockRequestError, resolve_behaviour
from proxy.mock_upstream.payloads import Usage
from tests.support.procs import REPO

MESSAGES = [{"role": "user", "content": "Say something deterministic."}]
CHAT = {"model": "gpt-4o-mini", "messages": MESSAGES}
STREAM_USAGE = {"stream": True, "stream_options": {"include_usage": True}}


@asynccontextmanager
async def serve(options: MockOptions | None = None) -> AsyncIterator[str]:
    """The fake upstream on a free loopback port; yields its base URL (without /v1)."""
    runner = web.AppRunner(create_app(options))
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
async def client(url: str) -> AsyncIterator[AsyncOpenAI]:
    # No retries: error tests must see the first answer, not the SDK's retry of it.
    sdk = AsyncOpenAI(base_url=f"{url}/v1", api_key="sk-test", max_retries=0)
    yield sdk
    await sdk.close()


@pytest.fixture(scope="module")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def post(
    http: aiohttp.ClientSession, url: str, body: object, **headers: str
) -> tuple[int, dict[str, str], bytes]:
    """POST raw bytes (so malformed bodies are possible) with x-mock-* headers as kwargs."""
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    sent = {name.replace("_", "-"): value for name, value in headers.items()}
    async with http.post(url, data=data, headers=sent) as response:
        return response.status, dict(response.headers), await response.read()


def sse_data(raw: bytes) -> list[Any]:
    """The `data:` payloads of an SSE body, JSON-decoded except for [DONE]."""
    events = []
    for line in raw.decode().split("\n"):
        if line.startswith("data: "):
            value = line[len("data: ") :]
            events.append(value if value == "[DONE]" else orjson.loads(value))
    return events


def usage_of(body: bytes) -> dict[str, Any] | None:
    return orjson.loads(body).get("usage")


# --- official SDK ---------------------------------------------------------------------


async def test_chat_completion(client: AsyncOpenAI) -> None:
    reply = await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    assert reply.choices[0].message.content == reply_text(8)
    assert reply_text(8) == " word0 word1 word2 word3 word4 word5 word6 word7"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.model == "gpt-4o-mini"
    usage = reply.usage
    assert usage is not None
    assert usage.prompt_tokens == prompt_tokens(MESSAGES)
    assert (usage.completion_tokens, usage.total_tokens) == (8, usage.prompt_tokens + 8)
    assert usage.prompt_tokens_details and usage.prompt_tokens_details.cached_tokens == 0
    assert usage.completion_tokens_details
    assert usage.completion_tokens_details.reasoning_tokens == 0


async def test_chat_stream_without_include_usage_has_no_usage(
    client: AsyncOpenAI, http: aiohttp.ClientSession, url: str
) -> None:
    stream = await client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True
    )
    chunks = [chunk async for chunk in stream]

    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == reply_text(8)
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert len(chunks) == 1 + 8 + 1
    _, headers, raw = await post(http, f"{url}/v1/chat/completions", CHAT | {"stream": True})
    assert headers["Content-Type"] == "text/event-stream"
    *events, done = sse_data(raw)
    assert done == "[DONE]"
    assert all("usage" not in event for event in events)


async def test_chat_stream_with_include_usage_ends_with_usage_chunk(
    client: AsyncOpenAI, http: aiohttp.ClientSession, url: str
) -> None:
    stream = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]

    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (prompt_tokens(MESSAGES), 8)
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert all(chunk.usage is None for chunk in chunks[:-1])
    # "usage": null is present (not just absent) on every earlier chunk, as OpenAI does.
    _, _, raw = await post(http, f"{url}/v1/chat/completions", CHAT | STREAM_USAGE)
    *events, usage_event, done = sse_data(raw)
    assert done == "[DONE]"
    assert all("usage" in event and event["usage"] is None for event in events)
    assert usage_event["usage"]["total_tokens"] == prompt_tokens(MESSAGES) + 8


async def test_completions(client: AsyncOpenAI) -> None:
    reply = await client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Once upon")

    assert reply.choices[0].text == reply_text(8)
    assert reply.usage is not None
    assert reply.usage.prompt_tokens == prompt_tokens("Once upon")

    stream = await client.completions.create(
        model="gpt-3.5-turbo-instruct",
        prompt="Once upon",
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    assert "".join(c.choices[0].text for c in chunks if c.choices) == reply_text(8)
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 8


async def test_embeddings_sdk_default_base64_decodes(client: AsyncOpenAI) -> None:
    reply = await client.embeddings.create(model="text-embedding-3-small", input=["a", "bb"])

    assert [item.index for item in reply.data] == [0, 1]
    assert all(len(item.embedding) == 8 for item in reply.data)
    assert reply.usage.prompt_tokens == reply.usage.total_tokens == prompt_tokens(["a", "bb"])
    as_floats = await client.embeddings.create(
        model="text-embedding-3-small", input=["a", "bb"], encoding_format="float"
    )
    assert [item.embedding for item in as_floats.data] == [item.embedding for item in reply.data]

    wide = await client.embeddings.create(model="m", input="one", dimensions=16)
    assert len(wide.data) == 1
    assert len(wide.data[0].embedding) == 16


@pytest.mark.parametrize(
    ("given", "count"),
    [("text", 1), (["a", "b", "c"], 3), ([1, 2, 3], 1), ([[1, 2], [3]], 2)],
)
async def test_embeddings_one_vector_per_input(
    http: aiohttp.ClientSession, url: str, given: object, count: int
) -> None:
    status, _, body = await post(http, f"{url}/v1/embeddings", {"model": "m", "input": given})

    assert status == 200
    data = orjson.loads(body)["data"]
    assert len(data) == count
    assert all(len(item["embedding"]) == 8 for item in data)


async def test_embeddings_base64_is_little_endian_float32(
    http: aiohttp.ClientSession, url: str
) -> None:
    request = {"model": "m", "input": "x", "dimensions": 4}
    _, _, floats = await post(http, f"{url}/v1/embeddings", request)
    _, _, encoded = await post(
        http, f"{url}/v1/embeddings", request | {"encoding_format": "base64"}
    )

    vector = orjson.loads(floats)["data"][0]["embedding"]
    raw = base64.b64decode(orjson.loads(encoded)["data"][0]["embedding"])
    assert list(struct.unpack("<4f", raw)) == vector


async def test_responses(client: AsyncOpenAI) -> None:
    reply = await client.responses.create(model="gpt-4o-mini", input="Hello")

    assert reply.output_text == reply_text(8)
    assert reply.status == "completed"
    assert reply.usage is not None
    assert reply.usage.input_tokens == prompt_tokens("Hello")
    assert reply.usage.output_tokens == 8
    assert reply.usage.input_tokens_details.cached_tokens == 0
    assert reply.usage.output_tokens_details.reasoning_tokens == 0


async def test_responses_stream(client: AsyncOpenAI) -> None:
    stream = await client.responses.create(model="gpt-4o-mini", input="Hello", stream=True)
    events = [event async for event in stream]

    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[0].type == "response.created"
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert "".join(deltas) == reply_text(8)
    completed = events[-1]
    assert isinstance(completed, ResponseCompletedEvent)
    assert completed.response.usage is not None
    assert completed.response.usage.total_tokens == prompt_tokens("Hello") + 8
    assert completed.response.output_text == reply_text(8)


async def test_responses_stream_names_each_event(http: aiohttp.ClientSession, url: str) -> None:
    _, _, raw = await post(
        http, f"{url}/v1/responses", {"model": "m", "input": "x", "stream": True}
    )

    blocks = [block for block in raw.decode().split("\n\n") if block]
    for block in blocks:
        event_line, data_line = block.split("\n")
        assert event_line == "event: " + orjson.loads(data_line[len("data: ") :])["type"]
    assert blocks[-1].startswith("event: response.completed")


async def test_models(client: AsyncOpenAI) -> None:
    models = [model.id async for model in client.models.list()]

    assert "gpt-4o-mini" in models
    assert len(models) >= 3


async def test_sdk_sees_rate_limit(client: AsyncOpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        await client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, extra_headers={"x-mock-status": "429"}
        )
    assert caught.value.response.headers["retry-after"] == "1"
    assert caught.value.code == "rate_limit_exceeded"


# --- per-request behaviour over raw HTTP ----------------------------------------------


@pytest.mark.parametrize("status", [400, 401, 429, 500, 503])
async def test_forced_status_has_openai_error_shape(
    http: aiohttp.ClientSession, url: str, status: int
) -> None:
    got, headers, body = await post(
        http, f"{url}/v1/chat/completions", CHAT, x_mock_status=str(status)
    )

    assert got == status
    error = orjson.loads(body)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    assert ("Retry-After" in headers) == (status == 429)


@pytest.mark.parametrize(("model", "status"), [("mock-error500", 500), ("x-error429", 429)])
async def test_error_chosen_by_model_name(
    http: aiohttp.ClientSession, url: str, model: str, status: int
) -> None:
    got, _, body = await post(http, f"{url}/v1/responses", {"model": model, "input": "x"})

    assert got == status
    assert "error" in orjson.loads(body)


async def test_html_error_page(http: aiohttp.ClientSession, url: str) -> None:
    status, headers, body = await post(
        http, f"{url}/v1/chat/completions", CHAT, x_mock_status="502", x_mock_html_error="1"
    )

    assert status == 502
    assert headers["Content-Type"].startswith("text/html")
    assert body.startswith(b"<html>")
    assert b"502 Bad Gateway" in body


async def test_no_usage_header(http: aiohttp.ClientSession, url: str) -> None:
    chat = f"{url}/v1/chat/completions"
    _, _, body = await post(http, chat, CHAT, x_mock_no_usage="1")
    assert "usage" not in orjson.loads(body)

    _, _, raw = await post(http, chat, CHAT | STREAM_USAGE, x_mock_no_usage="1")
    *events, done = sse_data(raw)
    assert done == "[DONE]"
    assert all("usage" not in event and event["choices"] for event in events)


async def test_no_usage_model(http: aiohttp.ClientSession, url: str) -> None:
    request = {"model": "mock-nousage", "input": "x"}
    _, _, body = await post(http, f"{url}/v1/responses", request)
    assert usage_of(body) is None

    _, _, raw = await post(http, f"{url}/v1/responses", request | {"stream": True})
    assert sse_data(raw)[-1]["response"]["usage"] is None

    _, _, body = await post(http, f"{url}/v1/completions", {"model": "a-nousage", "prompt": "x"})
    assert "usage" not in orjson.loads(body)


async def test_forced_usage(http: aiohttp.ClientSession, url: str) -> None:
    forced = {"x_mock_usage": "100,40,7,3"}
    _, _, body = await post(http, f"{url}/v1/chat/completions", CHAT, **forced)
    assert usage_of(body) == Usage(100, 40, 7, 3).chat()
    assert usage_of(body) == {
        "prompt_tokens": 100,
        "completion_tokens": 7,
        "total_tokens": 107,
        "prompt_tokens_details": {"cached_tokens": 40, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 3,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }

    _, _, raw = await post(http, f"{url}/v1/chat/completions", CHAT | STREAM_USAGE, **forced)
    assert sse_data(raw)[-2]["usage"]["prompt_tokens_details"]["cached_tokens"] == 40

    request = {"model": "m", "input": "x", "stream": True}
    _, _, raw = await post(http, f"{url}/v1/responses", request, **forced)
    usage = sse_data(raw)[-1]["response"]["usage"]
    assert (usage["input_tokens"], usage["output_tokens"], usage["total_tokens"]) == (100, 7, 107)
    assert usage["input_tokens_details"]["cached_tokens"] == 40
    assert usage["output_tokens_details"]["reasoning_tokens"] == 3


async def test_options_apply_to_every_request() -> None:
    options = MockOptions(chunks=3, cached_tokens=2, reasoning_tokens=5)
    async with serve(options) as base, AsyncOpenAI(base_url=f"{base}/v1", api_key="x") as sdk:
        reply = await sdk.chat.completions.create(model="m", messages=MESSAGES)

    assert reply.choices[0].message.content == " word0 word1 word2"
    assert reply.usage is not None
    assert reply.usage.completion_tokens == 3 + 5
    assert reply.usage.prompt_tokens_details
    assert reply.usage.prompt_tokens_details.cached_tokens == 2
    assert reply.usage.completion_tokens_details
    assert reply.usage.completion_tokens_details.reasoning_tokens == 5


async def test_chunks_header(http: aiohttp.ClientSession, url: str) -> None:
    _, _, body = await post(http, f"{url}/v1/chat/completions", CHAT, x_mock_chunks="3")
    reply = orjson.loads(body)
    assert reply["choices"][0]["message"]["content"] == " word0 word1 word2"
    assert reply["usage"]["completion_tokens"] == 3


async def test_fail_after_drops_connection_mid_stream(
    http: aiohttp.ClientSession, url: str
) -> None:
    received = []
    headers = {"x-mock-fail-after": "2"}
    body = CHAT | STREAM_USAGE
    with pytest.raises(aiohttp.ClientPayloadError):
        async with http.post(f"{url}/v1/chat/completions", json=body, headers=headers) as reply:
            assert reply.status == 200
            async for line in reply.content:
                received.append(line)

    events = sse_data(b"".join(received))
    assert [e["choices"][0]["delta"].get("content") for e in events] == ["", " word0", " word1"]


async def test_fail_after_every_piece_still_omits_the_end(
    http: aiohttp.ClientSession, url: str
) -> None:
    received = []
    with pytest.raises(aiohttp.ClientPayloadError):
        async with http.post(
            f"{url}/v1/responses",
            json={"model": "m", "input": "x", "stream": True},
            headers={"x-mock-fail-after": "99"},
        ) as reply:
            async for line in reply.content:
                received.append(line)

    types = [event["type"] for event in sse_data(b"".join(received))]
    assert types.count("response.output_text.delta") == 8
    assert "response.completed" not in types


async def test_latency_and_chunk_delay(http: aiohttp.ClientSession, url: str) -> None:
    started = time.monotonic()
    await post(http, f"{url}/v1/chat/completions", CHAT, x_mock_latency_ms="150")
    assert time.monotonic() - started >= 0.14

    started = time.monotonic()
    await post(
        http,
        f"{url}/v1/chat/completions",
        CHAT | {"stream": True},
        x_mock_chunks="4",
        x_mock_chunk_delay_ms="40",
    )
    assert time.monotonic() - started >= 4 * 0.035


async def test_malformed(http: aiohttp.ClientSession, url: str) -> None:
    status, _, body = await post(http, f"{url}/v1/chat/completions", CHAT, x_mock_malformed="1")
    assert status == 200
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(body)

    _, _, raw = await post(
        http, f"{url}/v1/chat/completions", CHAT | {"stream": True}, x_mock_malformed="1"
    )
    with pytest.raises(orjson.JSONDecodeError):
        sse_data(raw)


@pytest.mark.parametrize(
    ("path", "body", "headers", "param"),
    [
        ("/v1/chat/completions", b"{not json", {}, None),
        ("/v1/chat/completions", b"[]", {}, None),
        ("/v1/chat/completions", {"messages": MESSAGES}, {}, "model"),
        ("/v1/chat/completions", {"model": "m"}, {}, "messages"),
        ("/v1/embeddings", {"model": "m", "input": []}, {}, "input"),
        ("/v1/embeddings", {"model": "m", "input": "x", "dimensions": 0}, {}, "dimensions"),
        ("/v1/completions", {"model": "m"}, {"x_mock_chunks": "many"}, None),
        ("/v1/completions", {"model": "m"}, {"x_mock_status": "200"}, None),
        ("/v1/completions", {"model": "m"}, {"x_mock_typo": "1"}, None),
    ],
)
async def test_bad_requests_get_400(
    http: aiohttp.ClientSession,
    url: str,
    path: str,
    body: object,
    headers: dict[str, str],
    param: str | None,
) -> None:
    status, _, reply = await post(http, url + path, body, **headers)

    assert status == 400
    error = orjson.loads(reply)["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param


async def test_unknown_path_is_openai_404(http: aiohttp.ClientSession, url: str) -> None:
    status, _, body = await post(http, f"{url}/v1/nothing", {"model": "m"})

    assert status == 404
    assert "/v1/nothing" in orjson.loads(body)["error"]["message"]


# --- inspection -----------------------------------------------------------------------


async def test_recorded_requests(
    client: AsyncOpenAI, http: aiohttp.ClientSession, url: str
) -> None:
    async with http.delete(f"{url}/_mock/requests") as cleared:
        assert cleared.status == 204
    await client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, extra_headers={"x-customer": "acme"}
    )
    await post(http, f"{url}/v1/embeddings", {"model": "m", "input": "x"})

    async with http.get(f"{url}/_mock/requests") as listed:
        recorded = await listed.json()
    assert [(r["method"], r["path"]) for r in recorded] == [
        ("POST", "/v1/chat/completions"),
        ("POST", "/v1/embeddings"),
    ]
    first = recorded[0]
    assert first["headers"]["Authorization"] == "Bearer sk-test"
    assert first["headers"]["x-customer"] == "acme"
    assert orjson.loads(first["body"])["messages"] == MESSAGES


async def test_recorded_requests_keep_the_last_100(http: aiohttp.ClientSession, url: str) -> None:
    for number in range(105):
        async with http.get(f"{url}/v1/models?n={number}") as reply:
            await reply.read()

    async with http.get(f"{url}/_mock/requests") as listed:
        recorded = await listed.json()
    assert len(recorded) == 100
    assert recorded[-1]["path"] == "/v1/models?n=104"
    assert recorded[0]["path"] == "/v1/models?n=5"


# --- pure rules and the command line --------------------------------------------------


BASE = Behaviour.from_options(MockOptions())


@pytest.mark.parametrize(
    ("headers", "model", "expected"),
    [
        ({}, "gpt-4o", BASE),
        ({"Authorization": "Bearer x"}, "gpt-4o", BASE),
        ({}, "mock-nousage", Behaviour(no_usage=True)),
        ({}, "mock-error503", Behaviour(status=503)),
        ({"x-mock-status": "400"}, "mock-error503", Behaviour(status=400)),
        ({"X-Mock-Latency-Ms": "250"}, "m", Behaviour(latency_s=0.25)),
        ({"x-mock-usage": "1,2,3,4"}, "m", Behaviour(forced_usage=Usage(1, 2, 3, 4))),
        ({"x-mock-fail-after": "0"}, "m", Behaviour(fail_after=0)),
        ({"x-mock-html-error": "true", "x-mock-malformed": "0"}, "m", Behaviour(html_error=True)),
    ],
)
def test_resolve_behaviour(headers: dict[str, str], model: str, expected: Behaviour) -> None:
    assert resolve_behaviour(BASE, headers, model) == expected


@pytest.mark.parametrize(
    "headers",
    [
        {"x-mock-usage": "1,2,3"},
        {"x-mock-chunks": "-1"},
        {"x-mock-latency-ms": "soon"},
        {"x-mock-no-usage": "maybe"},
        {"x-mock-status": "302"},
    ],
)
def test_resolve_behaviour_rejects_bad_headers(headers: dict[str, str]) -> None:
    with pytest.raises(MockRequestError, match=next(iter(headers))):
        resolve_behaviour(BASE, headers, "m")


def test_usage_rules() -> None:
    behaviour = Behaviour(chunks=4, cached_tokens=50, reasoning_tokens=2)
    # Cached tokens never exceed the prompt, as with a real upstream.
    assert behaviour.usage(10) == Usage(10, 10, 6, 2)
    assert Behaviour(no_usage=True, forced_usage=Usage(1, 1, 1, 1)).usage(10) is None


def test_options_reject_negative_values() -> None:
    with pytest.raises(ValueError, match="latency_ms"):
        MockOptions(latency_ms=-1)


def test_command_line_flags() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)

    defaults = parser.parse_args([])
    assert (defaults.host, defaults.port) == ("127.0.0.1", 9000)
    assert options_from_args(defaults) == MockOptions()
    args = parser.parse_args(
        [
            *("--port", "9100", "--latency-ms", "2.5", "--chunks", "3", "--no-usage"),
            *("--chunk-delay-ms", "1", "--cached-tokens", "4", "--reasoning-tokens", "5"),
        ]
    )
    assert args.port == 9100
    assert options_from_args(args) == MockOptions(2.5, 1.0, 3, True, 4, 5)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_run_announces_once_listening(http: aiohttp.ClientSession) -> None:
    port = _free_port()
    script = (
        "import argparse, sys\n"
        "from proxy.mock_upstream import add_arguments, run\n"
        "parser = argparse.ArgumentParser(); add_arguments(parser)\n"
        "run(parser.parse_args(sys.argv[1:]))\n"
    )
    root = str(REPO)
    env = os.environ | {"PYTHONPATH": root}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, "--port", str(port),
        stdout=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), timeout=20)
        assert line.decode().strip() == f"fake upstream listening on http://127.0.0.1:{port}/v1"
        async with http.get(f"http://127.0.0.1:{port}/v1/models") as reply:
            assert reply.status == 200
    finally:
        process.terminate()
        await process.wait()


# --- every usage field and the service tier ------------------------------------------------

PARTS = "cache_write_5m=100,cache_write_1h=50,input_audio=30,input_image=20,output_audio=7,output_image=5,web_searches=2"  # noqa: E501


async def test_usage_parts_are_reported_inside_their_totals(
    http: aiohttp.ClientSession, url: str
) -> None:
    chat = f"{url}/v1/chat/completions"
    _, _, plain = await post(http, chat, CHAT)
    _, _, body = await post(http, chat, CHAT, x_mock_usage_parts=PARTS)
    base, usage = usage_of(plain), usage_of(body)
    assert base is not None and usage is not None
    assert usage["prompt_tokens"] == base["prompt_tokens"] + 200
    assert usage["completion_tokens"] == base["completion_tokens"] + 12
    assert usage["prompt_tokens_details"] == {
        "cached_tokens": 0,
        "audio_tokens": 30,
        "image_tokens": 20,
        "cache_write_tokens": 150,
    }
    assert usage["completion_tokens_details"]["audio_tokens"] == 7
    assert usage["completion_tokens_details"]["image_tokens"] == 5
    assert usage["cache_creation"] == {
        "ephemeral_5m_input_tokens": 100,
        "ephemeral_1h_input_tokens": 50,
    }
    assert usage["server_tool_use"] == {"web_search_requests": 2}
    # The same in a stream's usage chunk, and cache writes in the Responses shape.
    _, _, raw = await post(http, chat, CHAT | STREAM_USAGE, x_mock_usage_parts=PARTS)
    assert sse_data(raw)[-2]["usage"] == usage
    _, _, body = await post(
        http, f"{url}/v1/responses", {"model": "m", "input": "x"}, x_mock_usage_parts=PARTS
    )
    assert usage_of(body)["input_tokens_details"]["cache_write_tokens"] == 150  # type: ignore[index]


async def test_the_reply_names_the_service_tier(client: AsyncOpenAI, http: aiohttp.ClientSession,
                                                url: str) -> None:  # fmt: skip
    reply = await client.chat.completions.create(
        model="gpt-5", messages=MESSAGES, service_tier="flex"
    )
    assert reply.service_tier == "flex"
    reply = await client.chat.completions.create(
        model="gpt-5", messages=MESSAGES, service_tier="auto"
    )
    assert reply.service_tier == "default"
    _, _, raw = await post(
        http, f"{url}/v1/chat/completions", CHAT | STREAM_USAGE, x_mock_service_tier="priority"
    )
    assert {event["service_tier"] for event in sse_data(raw)[:-1]} == {"priority"}
    _, _, body = await post(http, f"{url}/v1/responses", {"model": "gpt-5-as-flex", "input": "x"})
    assert orjson.loads(body)["service_tier"] == "flex"


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"x-mock-usage-parts": "audio=5"}, "NAME=COUNT pairs"),
        ({"x-mock-usage-parts": "input_audio=-1"}, "between 0"),
        ({"x-mock-service-tier": " "}, "service tier name"),
    ],
)
def test_bad_part_and_tier_headers_are_refused(headers: dict[str, str], message: str) -> None:
    with pytest.raises(MockRequestError, match=message):
        resolve_behaviour(Behaviour(), headers, "m")
