"""A streaming client that hangs up: `on_client_disconnect: drain` (the default) reads the
rest of the upstream stream for the provider's own usage; `close` cuts the upstream and
estimates from what the client was sent; a drain that outlasts `drain_timeout_s` is cut
and estimated too. The fake upstream says how each of its streams ended."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import aiohttp
import orjson
import pytest

from proxy.accounting import tokens
from tests.support.procs import ServerProcess, start_proxy
from tests.support.stack import ACME_KEY, ADMIN_TOKEN, ENV

MESSAGES = [{"role": "user", "content": "Tell me about the sea."}]
CHUNKS = 30


def route(**settings: object) -> dict:
    return {"targets": [{"provider": "fake", "model": "gpt-4o-mini"}], **settings}


@pytest.fixture(scope="module")
def proxy(
    upstream: ServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    directory = tmp_path_factory.mktemp("disconnect")
    config = {
        "store": {"backend": "sqlite", "sqlite_path": str(directory / "usage.db")},
        "admin": {"token": "${T_ADMIN_TOKEN}"},
        "providers": {
            "fake": {
                "base_url": upstream.url + "/v1",
                "forward_headers": ["x-mock-*"],
                "api_key": "${T_UPSTREAM_KEY}",
            }
        },
        "models": {
            "drained": route(),  # streams.on_client_disconnect defaults to drain
            "closed": route(on_client_disconnect="close"),
            "short-drain": route(on_client_disconnect="drain", drain_timeout_s=0.3),
        },
        "keys": [{"key": "${T_ACME_KEY}", "customer": "acme"}],
    }
    server = start_proxy(config, directory, ENV)
    yield server
    server.stop()


async def hang_up_after_two_events(
    http: aiohttp.ClientSession, proxy: ServerProcess, model: str, delay_ms: int
) -> tuple[str, str, str]:
    """(request id, upstream stream id, text delivered) of a stream the client left."""
    headers = {
        "Authorization": f"Bearer {ACME_KEY}",
        "x-mock-chunks": str(CHUNKS),
        "x-mock-chunk-delay-ms": str(delay_ms),
    }
    body = {"model": model, "messages": MESSAGES, "stream": True}
    resp = await http.post(proxy.url + "/v1/chat/completions", json=body, headers=headers)
    request_id = resp.headers["x-request-id"]
    delivered = ""
    stream_id = ""
    for _ in range(2):
        event = orjson.loads((await resp.content.readuntil(b"\n\n")).removeprefix(b"data: "))
        stream_id = event["id"]
        delivered += "".join(c["delta"].get("content") or "" for c in event["choices"])
    resp.close()
    return request_id, stream_id, delivered


async def eventually(http: aiohttp.ClientSession, url: str, ready, seconds: float = 10) -> dict:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    for _ in range(int(seconds / 0.02)):
        async with http.get(url, headers=headers) as resp:
            if resp.status == 200 and ready(answer := await resp.json()):
                return answer
        await asyncio.sleep(0.02)
    raise AssertionError(f"{url} did not get there in {seconds}s")


async def outcome(http: aiohttp.ClientSession, upstream: ServerProcess, stream_id: str) -> str:
    url = f"{upstream.url}/_mock/streams/{stream_id}"
    return (await eventually(http, url, lambda s: s["outcome"] != "open"))["outcome"]


async def record(http: aiohttp.ClientSession, proxy: ServerProcess, request_id: str) -> dict:
    return await eventually(http, f"{proxy.url}/admin/v1/usage/{request_id}", lambda r: True)


async def test_drain_reads_the_rest_for_the_providers_own_usage(
    proxy: ServerProcess, upstream: ServerProcess
) -> None:
    async with aiohttp.ClientSession() as http:
        request_id, stream_id, _ = await hang_up_after_two_events(http, proxy, "drained", 10)
        assert await outcome(http, upstream, stream_id) == "complete"  # generated to the end
        billed = await record(http, proxy, request_id)
    assert billed["status"] == 499
    assert billed["usage_source"] == "upstream"
    assert billed["output_tokens"] == CHUNKS  # the fake's own count: a token per piece


async def test_close_cuts_the_upstream_and_estimates_what_was_sent(
    proxy: ServerProcess, upstream: ServerProcess
) -> None:
    async with aiohttp.ClientSession() as http:
        request_id, stream_id, delivered = await hang_up_after_two_events(
            http, proxy, "closed", 100
        )
        assert await outcome(http, upstream, stream_id) == "client_gone"
        billed = await record(http, proxy, request_id)
    assert billed["status"] == 499
    assert billed["usage_source"] == "estimated"
    assert billed["input_tokens"] == tokens.count_chat_prompt("gpt-4o-mini", MESSAGES)
    # What reached the proxy before it noticed: at least what the client read, not all.
    assert tokens.count_text("gpt-4o-mini", delivered) <= billed["output_tokens"] < CHUNKS


async def test_a_drain_past_its_timeout_is_cut_and_estimated(
    proxy: ServerProcess, upstream: ServerProcess
) -> None:
    async with aiohttp.ClientSession() as http:
        # 30 pieces 200 ms apart: 6 s of stream, 0.3 s of drain.
        request_id, stream_id, _ = await hang_up_after_two_events(http, proxy, "short-drain", 200)
        assert await outcome(http, upstream, stream_id) == "client_gone"
        billed = await record(http, proxy, request_id)
    assert billed["status"] == 499
    assert billed["usage_source"] == "estimated"
    assert 0 < billed["output_tokens"] < CHUNKS
