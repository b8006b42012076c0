"""The request path in process: the proxy app with a `MockTransport` in place of HTTP to
the provider (the embedded SQLite store is real). Fast enough for many small cases; the
end-to-end tests run the same paths between real processes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from fractions import Fraction
from pathlib import Path

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from multidict import CIMultiDict

from proxy.app import create_app
from proxy.config import ProviderConfig, parse_config
from proxy.providers.transport import MockResponse, MockTransport, UpstreamRequest

KEY = "sk-client-in-process-0123"
ADMIN = "admin-token-in-process-0123"
JSON = {"Content-Type": "application/json"}
SSE = {"Content-Type": "text/event-stream"}
BODY = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}


def _config(tmp_path: Path) -> dict:
    return {
        "store": {"backend": "sqlite", "sqlite_path": str(tmp_path / "costproxy.db")},
        "admin": {"token": ADMIN},
        "providers": {
            "first": {"base_url": "http://first.invalid/v1", "api_key": "sk-first"},
            "second": {"base_url": "http://second.invalid/v1", "api_key": "sk-second"},
        },
        "models": {
            "chat": {
                "targets": [
                    {"provider": "first", "model": "m1"},
                    {"provider": "second", "model": "m2"},
                ],
                "retries": 1,
                "backoff_base_s": 0.001,
            }
        },
        "prices": {
            "first/m1": {"input": "1", "output": "2"},
            "second/m2": {"input": "3", "output": "4"},
        },
        "keys": [{"key": KEY, "customer": "acme"}],
    }


def _chat_answer(model: str, prompt: int, completion: int) -> bytes:
    return orjson.dumps(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"}}],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
        }
    )


Handler = Callable[[UpstreamRequest], MockResponse]


class Upstreams:
    """One MockTransport per provider, answering with the handler set for it."""

    def __init__(self) -> None:
        self.handlers: dict[str, Handler] = {}
        self.transports: dict[str, MockTransport] = {}

    def factory(self, config: ProviderConfig) -> MockTransport:
        name = "first" if "first" in config.base_url else "second"
        transport = MockTransport(lambda request: self.handlers[name](request))
        self.transports[name] = transport
        return transport


@pytest.fixture
async def proxy(tmp_path: Path) -> AsyncIterator[tuple[TestClient, Upstreams]]:
    upstreams = Upstreams()
    app = create_app(parse_config(_config(tmp_path)), make_transport=upstreams.factory)
    async with TestClient(TestServer(app)) as client:
        yield client, upstreams


async def _post(client: TestClient, body: dict) -> tuple[int, bytes, CIMultiDict[str]]:
    async with client.post(
        "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {KEY}"}
    ) as resp:
        return resp.status, await resp.read(), resp.headers.copy()


async def _record(client: TestClient, request_id: str) -> dict:
    async with client.get(
        f"/admin/v1/usage/{request_id}", headers={"Authorization": f"Bearer {ADMIN}"}
    ) as resp:
        assert resp.status == 200
        return await resp.json()


def _usd(nusd_fraction: Fraction) -> str:
    nusd = round(nusd_fraction)  # half to even, once
    return f"{nusd // 10**9}.{nusd % 10**9:09d}"


async def test_an_answer_is_relayed_as_sent_and_billed_from_its_usage(proxy) -> None:
    client, upstreams = proxy
    answer = _chat_answer("m1", 10, 5)
    upstreams.handlers["first"] = lambda request: MockResponse(200, JSON, answer)
    status, body, headers = await _post(client, BODY)
    assert status == 200 and body == answer
    # $1 and $2 per 1M tokens: (10 × 1 + 5 × 2) / 1e6 USD
    assert headers["x-costproxy-cost-usd"] == _usd(Fraction(10 * 1 + 5 * 2, 10**6) * 10**9)
    sent = upstreams.transports["first"].requests[0]
    assert sent.url == "http://first.invalid/v1/chat/completions"
    assert sent.headers["Authorization"] == "Bearer sk-first"  # the client's key stays home
    assert orjson.loads(sent.body)["model"] == "m1"
    record = await _record(client, headers["x-request-id"])
    assert (record["input_tokens"], record["output_tokens"]) == (10, 5)


async def test_a_5xx_moves_on_to_the_next_target(proxy) -> None:
    client, upstreams = proxy
    upstreams.handlers["first"] = lambda request: MockResponse(503, JSON, b'{"error": {}}')
    upstreams.handlers["second"] = lambda request: MockResponse(200, JSON, _chat_answer("m2", 4, 2))
    status, _, headers = await _post(client, BODY)
    assert status == 200
    assert headers["x-costproxy-provider"] == "second"
    assert headers["x-costproxy-attempts"] == "2"
    assert headers["x-costproxy-cost-usd"] == _usd(Fraction(4 * 3 + 2 * 4, 10**6) * 10**9)


async def test_a_stream_is_relayed_chunk_by_chunk(proxy) -> None:
    client, upstreams = proxy
    chunks = [
        b'data: {"choices":[{"index":0,"delta":{"content":"a"}}]}\n\n',
        b'data: {"choices":[{"index":0,"delta":{"content":"b"}}]}\n\n',
        b'data: {"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":2,'
        b'"total_tokens":9}}\n\n',
        b"data: [DONE]\n\n",
    ]
    upstreams.handlers["first"] = lambda request: MockResponse(200, SSE, chunks=chunks)
    body = {**BODY, "stream": True, "stream_options": {"include_usage": True}}
    status, received, headers = await _post(client, body)
    assert status == 200 and received == b"".join(chunks)
    record = await _record(client, headers["x-request-id"])
    assert (record["input_tokens"], record["output_tokens"]) == (7, 2)
    assert record["usage_source"] == "upstream"


async def test_a_stream_cut_by_the_provider_ends_cleanly_and_is_recorded_as_502(proxy) -> None:
    client, upstreams = proxy
    chunk = b'data: {"choices":[{"index":0,"delta":{"content":"partial"}}]}\n\n'
    canned = MockResponse(200, SSE, chunks=[chunk, chunk, chunk], fail_after=2)
    upstreams.handlers["first"] = lambda request: canned
    status, received, headers = await _post(client, {**BODY, "stream": True})
    assert status == 200 and received == chunk * 2
    record = await _record(client, headers["x-request-id"])
    assert record["status"] == 502 and record["usage_source"] == "estimated"
    assert canned.closed  # the broken upstream was let go of, not kept in the pool
