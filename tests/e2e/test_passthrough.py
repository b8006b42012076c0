"""Byte-exact pass-through: the client gets what the upstream sent, apart from the proxy's
documented headers and the usage chunk the proxy asked for itself."""

from __future__ import annotations

import aiohttp
import orjson
import pytest

from tests.support.stack import ACME_KEY, UPSTREAM_KEY, Stack

PROXY_HEADERS = {
    "x-request-id",
    "x-upstream-request-id",  # the upstream's own x-request-id, renamed
    "x-costproxy-provider",
    "x-costproxy-upstream-model",
    "x-costproxy-attempts",
}
FIXED = {"x-mock-fixed-ids": "1", "x-mock-usage": "25,5,8,1", "x-mock-chunks": "12"}
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Tell me a story"}]}


async def fetch(http: aiohttp.ClientSession, url: str, key: str, body: dict, **headers: str):
    async with http.post(
        url, json=body, headers={"Authorization": f"Bearer {key}", **FIXED, **headers}
    ) as resp:
        return resp.status, resp.headers, await resp.read()


async def direct(stack: Stack, http: aiohttp.ClientSession, path: str, body: dict, **headers: str):
    return await fetch(http, stack.upstream.url + path, UPSTREAM_KEY, body, **headers)


async def proxied(stack: Stack, http: aiohttp.ClientSession, path: str, body: dict, **headers: str):
    return await fetch(http, stack.url + path, ACME_KEY, body, **headers)


def split_events(data: bytes) -> list[bytes]:
    return [event + b"\n\n" for event in data.split(b"\n\n") if event]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", CHAT),
        ("/v1/completions", {"model": "gpt-4o-mini", "prompt": "Once"}),
        ("/v1/responses", {"model": "gpt-4o-mini", "input": "Once"}),
        ("/v1/embeddings", {"model": "text-embedding-3-small", "input": ["a", "b"]}),
    ],
)
async def test_non_streaming_body_is_byte_identical(
    stack: Stack, http: aiohttp.ClientSession, path: str, body: dict
):
    d_status, d_headers, d_body = await direct(stack, http, path, body)
    p_status, p_headers, p_body = await proxied(stack, http, path, body)
    assert p_status == d_status == 200
    assert p_body == d_body
    assert p_headers["Content-Type"] == d_headers["Content-Type"]
    added = {h.lower() for h in p_headers} - {h.lower() for h in d_headers}
    assert added <= PROXY_HEADERS | {"x-costproxy-cost-usd"}


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/completions"])
async def test_stream_is_byte_identical_minus_the_injected_usage_chunk(
    stack: Stack, http: aiohttp.ClientSession, path: str
):
    body = (
        {**CHAT, "stream": True}
        if "chat" in path
        else {"model": "gpt-4o-mini", "prompt": "Once", "stream": True}
    )
    # Upstream as the proxy asks it: with usage. Then drop the usage-only event.
    _, _, d_body = await direct(
        stack, http, path, {**body, "stream_options": {"include_usage": True}}
    )
    expected = b"".join(
        event
        for event in split_events(d_body)
        if not (event.startswith(b"data: {") and orjson.loads(event[6:])["choices"] == [])
    )
    assert len(split_events(expected)) == len(split_events(d_body)) - 1
    p_status, p_headers, p_body = await proxied(stack, http, path, body)
    assert p_status == 200
    assert p_headers["Content-Type"].startswith("text/event-stream")
    assert p_body == expected
    assert "x-costproxy-cost-usd" not in p_headers  # unknown until the stream ends


async def test_stream_with_client_usage_is_byte_identical(
    stack: Stack, http: aiohttp.ClientSession
):
    body = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
    _, _, d_body = await direct(stack, http, "/v1/chat/completions", body)
    _, _, p_body = await proxied(stack, http, "/v1/chat/completions", body)
    assert p_body == d_body


async def test_responses_stream_is_byte_identical(stack: Stack, http: aiohttp.ClientSession):
    body = {"model": "gpt-4o-mini", "input": "Once", "stream": True}
    _, _, d_body = await direct(stack, http, "/v1/responses", body)
    _, _, p_body = await proxied(stack, http, "/v1/responses", body)
    assert p_body == d_body
    assert b"response.completed" in p_body


@pytest.mark.parametrize("status", [400, 429, 500, 503])
@pytest.mark.parametrize("stream", [False, True])
async def test_upstream_errors_reach_the_client_unchanged(
    stack: Stack, http: aiohttp.ClientSession, status: int, stream: bool
):
    body = {**CHAT, "stream": stream}
    d_status, d_headers, d_body = await direct(
        stack, http, "/v1/chat/completions", body, **{"x-mock-status": str(status)}
    )
    p_status, p_headers, p_body = await proxied(
        stack, http, "/v1/chat/completions", body, **{"x-mock-status": str(status)}
    )
    assert p_status == d_status == status
    assert p_body == d_body
    if status == 429:
        assert p_headers["Retry-After"] == d_headers["Retry-After"]
