"""Anthropic's Messages API on the request path, in process: the proxy app with a
`MockTransport` per provider (the embedded SQLite store is real). The end-to-end tests
(tests/e2e/test_anthropic_*.py) drive the same paths with the official SDK between real
processes. Prices here are Anthropic's published ones for claude-sonnet-4-5 (docs:
pricing): $3 input, $15 output, cache reads 0.1x, 5-minute writes 1.25x, 1-hour 2x,
$10 per 1,000 web searches, and above 200k input tokens with the 1M-context beta $6 and
$22.50."""

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
from proxy.providers.transport import MockResponse, MockTransport, TransportError, UpstreamRequest

KEY = "sk-client-messages-0123"
ADMIN = "admin-token-messages-0123"
JSON = {"Content-Type": "application/json", "request-id": "req_upstream_1"}
SSE = {"Content-Type": "text/event-stream; charset=utf-8"}
BODY = {"model": "claude", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}
M = 10**6  # tokens per price unit


def _config(tmp_path: Path) -> dict:
    return {
        "server": {"max_body_bytes": 64 * 1024},
        "store": {"backend": "sqlite", "sqlite_path": str(tmp_path / "costproxy.db")},
        "admin": {"token": ADMIN},
        "providers": {
            "first": {"kind": "anthropic", "base_url": "http://first.invalid", "api_key": "sk-1"},
            "second": {"kind": "anthropic", "base_url": "http://second.invalid", "api_key": "sk-2"},
            "gpt": {"base_url": "http://gpt.invalid/v1", "api_key": "sk-gpt"},
        },
        "models": {
            "claude": {
                "targets": [
                    {"provider": "first", "model": "claude-sonnet-4-5"},
                    {"provider": "second", "model": "claude-haiku-4-5"},
                ],
                "retries": 1,
                "backoff_base_s": 0.001,
            },
            "gpt": {"targets": [{"provider": "gpt", "model": "gpt-4o-mini"}]},
        },
        "what_if": ["first/claude-sonnet-4-5 -> gpt/gpt-4o-mini"],
        "prices": {"gpt/gpt-4o-mini": {"input": "0.15", "cached_input": "0.075", "output": "0.6"}},
        "keys": [{"key": KEY, "customer": "acme"}],
    }


def answer(model: str, usage: dict, content: str = "Hello") -> bytes:
    return orjson.dumps(
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": content}],
            "stop_reason": "end_turn",
            "usage": usage,
        }
    )


def sse(event: dict) -> bytes:
    return b"event: " + event["type"].encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"


def message_start(usage: dict) -> bytes:
    return sse({"type": "message_start", "message": {"model": "claude-sonnet-4-5", "usage": usage}})


def text(piece: str) -> bytes:
    return sse(
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}
    )


OVERLOADED = sse({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})

Handler = Callable[[UpstreamRequest], MockResponse]


class Upstreams:
    """One MockTransport per provider, answering with the handler set for it."""

    def __init__(self) -> None:
        self.handlers: dict[str, Handler] = {}
        self.transports: dict[str, MockTransport] = {}

    def factory(self, config: ProviderConfig) -> MockTransport:
        name = config.base_url.removeprefix("http://").split(".")[0]
        transport = MockTransport(lambda request: self.handlers[name](request))
        self.transports[name] = transport
        return transport


@pytest.fixture
async def proxy(tmp_path: Path) -> AsyncIterator[tuple[TestClient, Upstreams]]:
    upstreams = Upstreams()
    app = create_app(parse_config(_config(tmp_path)), make_transport=upstreams.factory)
    async with TestClient(TestServer(app)) as client:
        yield client, upstreams


async def _post(
    client: TestClient,
    body: object,
    headers: dict[str, str] | None = None,
    path: str = "/v1/messages",
) -> tuple[int, bytes, CIMultiDict[str]]:
    sent = {"x-api-key": KEY, **(headers or {})}
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    async with client.post(path, data=data, headers=sent) as resp:
        return resp.status, await resp.read(), resp.headers.copy()


async def _record(client: TestClient, request_id: str) -> dict:
    async with client.get(
        f"/admin/v1/usage/{request_id}", headers={"Authorization": f"Bearer {ADMIN}"}
    ) as resp:
        assert resp.status == 200
        return await resp.json()


def usd(fusd_per_m: Fraction) -> str:
    """USD per 1M tokens x tokens → the 9-decimal string, rounded once, half to even."""
    nusd = round(fusd_per_m * 1000)  # (USD/M tokens x tokens) x 1e9 / 1e6
    return f"{nusd // 10**9}.{nusd % 10**9:09d}"


async def test_a_message_is_relayed_as_sent_and_billed_with_its_cache(proxy) -> None:
    client, upstreams = proxy
    usage = {
        "input_tokens": 3,
        "cache_read_input_tokens": 1111,
        "cache_creation_input_tokens": 418,
        "cache_creation": {"ephemeral_5m_input_tokens": 118, "ephemeral_1h_input_tokens": 300},
        "output_tokens": 33,
        "server_tool_use": {"web_search_requests": 2},
    }
    body = answer("claude-sonnet-4-5-20250929", usage)
    upstreams.handlers["first"] = lambda request: MockResponse(200, JSON, body)
    status, received, headers = await _post(client, BODY)
    assert status == 200 and received == body
    tenth, five_4ths = Fraction(1, 10), Fraction(5, 4)
    cost = 3 * 3 + 1111 * 3 * tenth + 118 * 3 * five_4ths + 300 * 3 * 2 + 33 * 15 + 2 * 10_000
    assert headers["x-costproxy-cost-usd"] == usd(Fraction(cost))
    assert headers["request-id"] == "req_upstream_1"  # Anthropic's id, beside the proxy's
    assert (
        headers["x-request-id"].startswith("req_") and headers["x-request-id"] != "req_upstream_1"
    )
    sent = upstreams.transports["first"].requests[0]
    assert sent.url == "http://first.invalid/v1/messages"
    assert sent.headers["x-api-key"] == "sk-1"  # the client's key stays home
    assert "Authorization" not in sent.headers
    assert sent.headers["anthropic-version"] == "2023-06-01"  # the client sent none
    assert orjson.loads(sent.body)["model"] == "claude-sonnet-4-5"
    record = await _record(client, headers["x-request-id"])
    assert record["endpoint"] == "messages"
    assert (record["input_tokens"], record["cached_input_tokens"]) == (1532, 1111)
    assert (record["cache_write_5m_tokens"], record["cache_write_1h_tokens"]) == (118, 300)
    assert (record["output_tokens"], record["web_search_requests"]) == (33, 2)
    assert record["cost_usd"] == headers["x-costproxy-cost-usd"]
    # What-if across APIs: the same token counts at gpt-4o-mini's prices (its cache
    # writes at its input price, having none of their own).
    alt = Fraction(3 * 15 + 1111 * Fraction(75, 10) + 418 * 15 + 33 * 60, 100)
    assert record["what_if"] == {"gpt/gpt-4o-mini": usd(alt)}


async def test_versions_betas_and_the_query_string_pass_through(proxy) -> None:
    client, upstreams = proxy
    body = answer("claude-sonnet-4-5", {"input_tokens": 1, "output_tokens": 1})
    upstreams.handlers["first"] = lambda request: MockResponse(200, JSON, body)
    headers = {"anthropic-version": "2026-10-21", "anthropic-beta": "a-1,b-2"}
    status, _, _ = await _post(client, BODY, headers, path="/v1/messages?beta=true")
    assert status == 200
    sent = upstreams.transports["first"].requests[0]
    assert sent.url == "http://first.invalid/v1/messages?beta=true"
    assert sent.headers["anthropic-version"] == "2026-10-21"
    assert sent.headers["anthropic-beta"] == "a-1,b-2"


@pytest.mark.parametrize("auth", ["x-api-key", "Authorization"])
async def test_the_client_key_is_taken_from_either_header(proxy, auth: str) -> None:
    client, upstreams = proxy
    body = answer("claude-sonnet-4-5", {"input_tokens": 1, "output_tokens": 1})
    upstreams.handlers["first"] = lambda request: MockResponse(200, JSON, body)
    value = KEY if auth == "x-api-key" else f"Bearer {KEY}"
    async with client.post("/v1/messages", json=BODY, headers={auth: value}) as resp:
        assert resp.status == 200
    sent = upstreams.transports["first"].requests[0]
    assert KEY not in str(dict(sent.headers))


def anthropic_error(status: int, kind: str):
    def check(code: int, body: bytes) -> None:
        assert code == status
        error = orjson.loads(body)
        assert error["type"] == "error" and error["error"]["type"] == kind
        assert set(error["error"]) == {"type", "message"} and error["error"]["message"]

    return check


@pytest.mark.parametrize(
    ("body", "headers", "path", "status", "kind"),
    [
        (BODY, {"x-api-key": ""}, "/v1/messages", 401, "authentication_error"),
        (BODY, {"x-api-key": "sk-unknown"}, "/v1/messages", 401, "authentication_error"),
        (b"{not json", {}, "/v1/messages", 400, "invalid_request_error"),
        ({"model": "claude", "max_tokens": 5}, {}, "/v1/messages", 400, "invalid_request_error"),
        ({**BODY, "max_tokens": "5"}, {}, "/v1/messages", 400, "invalid_request_error"),
        ({**BODY, "max_tokens": 2**31}, {}, "/v1/messages", 400, "invalid_request_error"),
        ({**BODY, "metadata": {"user_id": 7}}, {}, "/v1/messages", 400, "invalid_request_error"),
        ({**BODY, "model": "nope"}, {}, "/v1/messages", 404, "not_found_error"),
        ({**BODY, "model": "gpt"}, {}, "/v1/messages", 404, "not_found_error"),
        ({**BODY, "model": "gpt"}, {}, "/v1/messages/count_tokens", 404, "not_found_error"),
        (BODY, {}, "/v1/messages/batches", 404, "not_found_error"),
        (b"x" * (64 * 1024 + 1), {}, "/v1/messages", 413, "request_too_large"),
    ],
)
async def test_the_proxys_own_errors_take_anthropics_shape(
    proxy, body: object, headers: dict, path: str, status: int, kind: str
) -> None:
    client, upstreams = proxy
    code, received, _ = await _post(client, body, headers, path)
    anthropic_error(status, kind)(code, received)
    assert not upstreams.transports.get("first") or not upstreams.transports["first"].requests


async def test_a_wrong_method_gets_anthropics_shape_and_openai_paths_keep_theirs(proxy) -> None:
    client, _ = proxy
    async with client.get("/v1/messages", headers={"x-api-key": KEY}) as resp:
        anthropic_error(405, "invalid_request_error")(resp.status, await resp.read())
    chat = {"model": "claude", "messages": [{"role": "user", "content": "hi"}]}
    async with client.post(
        "/v1/chat/completions", json=chat, headers={"Authorization": f"Bearer {KEY}"}
    ) as resp:
        assert resp.status == 404  # a Messages API route is not on the OpenAI endpoints
        error = (await resp.json())["error"]
        assert error["code"] == "model_not_found" and "Messages API" in error["message"]


async def test_an_unreachable_provider_is_an_api_error_and_the_next_target_answers(proxy) -> None:
    client, upstreams = proxy

    def unreachable(request: UpstreamRequest) -> MockResponse:
        raise TransportError("ClientConnectorError")

    upstreams.handlers["first"] = unreachable
    upstreams.handlers["second"] = unreachable
    status, received, headers = await _post(client, BODY)
    anthropic_error(502, "api_error")(status, received)
    assert headers["x-costproxy-attempts"] == "2"
    overloaded = orjson.dumps({"type": "error", "error": {"type": "overloaded_error"}})
    upstreams.handlers["first"] = lambda request: MockResponse(529, JSON, overloaded)
    body = answer("claude-haiku-4-5", {"input_tokens": 10, "output_tokens": 2})
    upstreams.handlers["second"] = lambda request: MockResponse(200, JSON, body)
    status, received, headers = await _post(client, BODY)
    assert status == 200 and received == body
    assert headers["x-costproxy-provider"] == "second"
    assert headers["x-costproxy-cost-usd"] == usd(Fraction(10 * 1 + 2 * 5))  # Haiku 4.5: $1/$5


async def test_long_context_prices_need_the_1m_context_beta(proxy) -> None:
    # 250k input: over 200k only as the sum of server-tool iterations without the beta.
    client, upstreams = proxy
    body = answer("claude-sonnet-4-5", {"input_tokens": 250_000, "output_tokens": 100})
    upstreams.handlers["first"] = lambda request: MockResponse(200, JSON, body)
    _, _, standard = await _post(client, BODY)
    assert standard["x-costproxy-cost-usd"] == usd(Fraction(250_000 * 3 + 100 * 15))
    beta = {"anthropic-beta": "interleaved-thinking-2025-05-14, context-1m-2025-08-07"}
    _, _, long_context = await _post(client, BODY, beta)
    assert long_context["x-costproxy-cost-usd"] == usd(250_000 * 6 + 100 * Fraction(45, 2))


async def test_an_error_after_message_start_bills_the_prompt_and_the_text_delivered(proxy) -> None:
    client, upstreams = proxy
    start = message_start({"input_tokens": 40, "cache_read_input_tokens": 60, "output_tokens": 1})
    chunks = [start, text("Hello"), text(" there, friend"), OVERLOADED]
    upstreams.handlers["first"] = lambda request: MockResponse(200, SSE, chunks=chunks)
    status, received, headers = await _post(client, {**BODY, "stream": True})
    assert status == 200 and received == b"".join(chunks)  # relayed as sent
    record = await _record(client, headers["x-request-id"])
    assert record["status"] == 529  # what overloaded_error stands for
    assert record["usage_source"] == "estimated"
    # The prompt as message_start counted it; the output counted from the text sent.
    assert (record["input_tokens"], record["cached_input_tokens"]) == (100, 60)
    assert record["output_tokens"] >= 4  # "Hello there, friend": 4+ tokens
    assert record["cost_usd"] != "0.000000000"


async def test_an_error_before_message_start_bills_nothing(proxy) -> None:
    client, upstreams = proxy
    upstreams.handlers["first"] = lambda request: MockResponse(200, SSE, chunks=[OVERLOADED])
    status, received, headers = await _post(client, {**BODY, "stream": True})
    assert status == 200 and received == OVERLOADED
    record = await _record(client, headers["x-request-id"])
    assert (record["status"], record["cost_usd"], record["input_tokens"]) == (529, "0.000000000", 0)


async def test_count_tokens_is_forwarded_but_never_billed_nor_recorded(proxy) -> None:
    client, upstreams = proxy
    counted = b'{"input_tokens":1114}'
    upstreams.handlers["first"] = lambda request: MockResponse(200, JSON, counted)
    body = {"model": "claude", "messages": [{"role": "user", "content": "hi"}]}
    status, received, headers = await _post(client, body, path="/v1/messages/count_tokens")
    assert status == 200 and received == counted
    assert headers["x-costproxy-cost-usd"] == "0.000000000"
    sent = upstreams.transports["first"].requests[0]
    assert sent.url == "http://first.invalid/v1/messages/count_tokens"
    async with client.get(
        f"/admin/v1/usage/{headers['x-request-id']}", headers={"Authorization": f"Bearer {ADMIN}"}
    ) as resp:
        assert resp.status == 404  # free: no usage record


async def test_metadata_user_id_is_the_end_user(proxy) -> None:
    client, upstreams = proxy
    body = answer("claude-sonnet-4-5", {"input_tokens": 1, "output_tokens": 1})
    upstreams.handlers["first"] = lambda request: MockResponse(200, JSON, body)
    _, _, headers = await _post(client, {**BODY, "metadata": {"user_id": "u-42"}})
    record = await _record(client, headers["x-request-id"])
    assert record["end_user"] == "u-42"
