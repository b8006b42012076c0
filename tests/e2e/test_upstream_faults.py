"""Each upstream fault gives the documented client outcome and billing.

| fault                          | client gets                         | billed (record status)  |
|--------------------------------|-------------------------------------|-------------------------|
| connection refused             | 502 upstream_unreachable            | nothing (502)           |
| DNS failure                    | 502 upstream_unreachable            | nothing (502)           |
| no headers within read timeout | 504 upstream_timeout                | nothing (504)           |
| silent between chunks          | 200, stream ends cleanly, no [DONE] | prompt + delivered (504)|
| connection reset mid-stream    | 200, stream ends cleanly, no [DONE] | prompt + delivered (502)|
| truncated SSE (clean EOF)      | 200, half event dropped, no [DONE]  | prompt + delivered (502)|
| malformed SSE event            | relayed as is (pass-through)        | upstream usage (200)    |
| 2xx with malformed JSON        | 502 upstream_invalid_response       | prompt, estimated (502) |
| 5xx with an HTML body          | same status, OpenAI-style JSON      | nothing (5xx)           |
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import aiohttp
import orjson
import pytest

from proxy.accounting import tokens
from tests.support.money import expected_nusd, nusd
from tests.support.procs import ServerProcess, free_port, start_proxy
from tests.support.sse import sse_text
from tests.support.stack import BACKEND_KEY, ENV, SECRETS, Stack, base_config

CHAT = "/v1/chat/completions"
MESSAGES = [{"role": "user", "content": "Write a short poem about rivers."}]
PROMPT_TOKENS = tokens.count_chat_prompt("gpt-4o-mini", MESSAGES)


@pytest.fixture(scope="module")
def faulty(upstream: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    directory = tmp_path_factory.mktemp("faults")
    config = base_config(
        upstream.url, {"backend": "sqlite", "sqlite_path": str(directory / "usage.db")}
    )
    config["providers"] |= {
        "refused": {"base_url": f"http://127.0.0.1:{free_port()}/v1", "api_key": "x"},
        "nxdomain": {"base_url": "http://costproxy-fault.invalid/v1", "api_key": "x"},
        "slow": {
            "base_url": upstream.url + "/v1",
            "forward_headers": ["x-mock-*"],
            "api_key": "x",
            "read_timeout_s": 0.5,
        },
    }
    config["models"] |= {
        f"{name}-model": {"targets": [{"provider": name, "model": "gpt-4o-mini"}]}
        for name in ("refused", "nxdomain", "slow")
    }
    config["prices"] |= {
        f"{name}/gpt-4o-mini": {"input": "0.15", "cached_input": "0.075", "output": "0.60"}
        for name in ("refused", "nxdomain", "slow")
    }
    # A client that hangs up cuts the upstream (the default drains it: see
    # test_client_disconnect.py).
    config["models"]["closing-model"] = {
        "targets": [{"provider": "openai", "model": "gpt-4o-mini"}],
        "on_client_disconnect": "close",
    }
    proxy = start_proxy(config, directory, ENV)
    yield Stack(proxy=proxy, upstream=upstream, backend="sqlite")
    proxy.stop()


def customer_headers(**extra: str) -> tuple[str, dict[str, str]]:
    customer = f"fault-{uuid.uuid4().hex[:10]}"
    return customer, {"Authorization": f"Bearer {BACKEND_KEY}", "X-Customer-Id": customer, **extra}


async def only_record(stack: Stack, http: aiohttp.ClientSession, customer: str) -> dict:
    spend = await stack.spend(http, customer=customer, group_by="model")
    assert spend["total"]["requests"] == 1
    return spend["total"]


async def record_of(stack: Stack, http: aiohttp.ClientSession, request_id: str) -> dict:
    deadline = time.monotonic() + 5
    while True:
        async with http.get(
            f"{stack.url}/admin/v1/usage/{request_id}", headers=stack.admin_headers
        ) as resp:
            if resp.status == 200:
                return await resp.json()
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)


@pytest.mark.parametrize(
    ("model", "extra", "status", "code"),
    [
        ("refused-model", {}, 502, "upstream_unreachable"),
        ("nxdomain-model", {}, 502, "upstream_unreachable"),
        ("slow-model", {"x-mock-latency-ms": "3000"}, 504, "upstream_timeout"),
        ("gpt-4o-mini", {"x-mock-status": "503", "x-mock-html-error": "1"}, 503, "upstream_error"),
        ("gpt-4o-mini", {"x-mock-status": "502", "x-mock-html-error": "1"}, 502, "upstream_error"),
    ],
    ids=["connection-refused", "dns-failure", "timeout-before-headers", "html-503", "html-502"],
)
async def test_no_answer_is_a_clear_error_and_costs_nothing(
    faulty: Stack, http: aiohttp.ClientSession, model, extra, status, code
):
    customer, headers = customer_headers(**extra)
    started = time.monotonic()
    body = {"model": model, "messages": MESSAGES}
    async with http.post(faulty.url + CHAT, json=body, headers=headers) as resp:
        text = await resp.text()
        assert resp.status == status, text
        assert resp.content_type == "application/json"
        error = orjson.loads(text)["error"]
    assert time.monotonic() - started < 2.5
    assert error["code"] == code and error["type"] == "upstream_error"
    assert "<html" not in text.lower()
    assert not any(secret in text for secret in SECRETS)
    total = await only_record(faulty, http, customer)
    assert (total["cost_usd"], total["input_tokens"], total["output_tokens"]) == (
        "0.000000000",
        0,
        0,
    )


async def test_malformed_json_answer_is_502_and_bills_the_prompt(
    faulty: Stack, http: aiohttp.ClientSession
):
    customer, headers = customer_headers(**{"x-mock-malformed": "1"})
    body = {"model": "gpt-4o-mini", "messages": MESSAGES}
    async with http.post(faulty.url + CHAT, json=body, headers=headers) as resp:
        assert resp.status == 502
        assert (await resp.json())["error"]["code"] == "upstream_invalid_response"
    total = await only_record(faulty, http, customer)
    assert (total["input_tokens"], total["output_tokens"]) == (PROMPT_TOKENS, 0)


async def stream(
    stack: Stack, http: aiohttp.ClientSession, model: str, headers: dict[str, str]
) -> tuple[bytes, str]:
    body = {"model": model, "messages": MESSAGES, "stream": True}
    async with http.post(stack.url + CHAT, json=body, headers=headers) as resp:
        assert resp.status == 200
        return await resp.read(), resp.headers["x-request-id"]


@pytest.mark.parametrize(
    ("model", "extra", "record_status"),
    [
        ("slow-model", {"x-mock-chunks": "6", "x-mock-chunk-delay-ms": "1500"}, 504),
        ("gpt-4o-mini", {"x-mock-chunks": "10", "x-mock-fail-after": "4"}, 502),
        ("gpt-4o-mini", {"x-mock-chunks": "10", "x-mock-truncate-after": "4"}, 502),
    ],
    ids=["idle-timeout-between-chunks", "reset-mid-stream", "truncated-sse"],
)
async def test_a_broken_stream_ends_cleanly_and_bills_what_was_delivered(
    faulty: Stack, http: aiohttp.ClientSession, model, extra, record_status
):
    _, headers = customer_headers(**extra)
    data, request_id = await stream(faulty, http, model, headers)
    assert data.endswith(b"\n\n")
    assert b"[DONE]" not in data
    for event in data.split(b"\n\n")[:-1]:  # every event relayed is whole JSON
        orjson.loads(event.removeprefix(b"data: "))
    record = await record_of(faulty, http, request_id)
    delivered = tokens.count_text("gpt-4o-mini", sse_text(data))
    assert record["status"] == record_status
    assert record["usage_source"] == "estimated"
    assert (record["input_tokens"], record["output_tokens"]) == (PROMPT_TOKENS, delivered)
    assert nusd(record["cost_usd"]) == expected_nusd("gpt-4o-mini", PROMPT_TOKENS, 0, delivered)


async def test_a_malformed_sse_event_is_relayed_and_usage_still_counts(
    faulty: Stack, http: aiohttp.ClientSession
):
    _, headers = customer_headers(**{"x-mock-malformed": "1", "x-mock-chunks": "5"})
    data, request_id = await stream(faulty, http, "gpt-4o-mini", headers)
    assert b'"chatcmpl-broken"' in data and data.endswith(b"data: [DONE]\n\n")
    record = await record_of(faulty, http, request_id)
    assert (record["status"], record["usage_source"]) == (200, "upstream")
    assert record["output_tokens"] == 5


async def test_client_disconnect_closes_the_upstream_within_a_second(
    faulty: Stack, http: aiohttp.ClientSession
):
    # A long silence between chunks: the proxy must notice the client left without
    # waiting for its next write.
    _, headers = customer_headers(**{"x-mock-chunks": "50", "x-mock-chunk-delay-ms": "3000"})
    body = {"model": "closing-model", "messages": MESSAGES, "stream": True}
    resp = await http.post(faulty.url + CHAT, json=body, headers=headers)
    request_id = resp.headers["x-request-id"]
    first = await resp.content.readuntil(b"\n\n")
    stream_id = orjson.loads(first.removeprefix(b"data: "))["id"]
    resp.close()
    hung_up = time.time()

    async def outcome() -> dict:
        async with http.get(f"{faulty.upstream.url}/_mock/streams/{stream_id}") as r:
            return await r.json()

    deadline = time.monotonic() + 5
    while (state := await outcome())["outcome"] == "open":
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    assert state["outcome"] == "client_gone"
    assert state["ended_at"] - hung_up < 1.0
    record = await record_of(faulty, http, request_id)
    assert record["status"] == 499
    assert (record["input_tokens"], record["output_tokens"]) == (PROMPT_TOKENS, 0)


def test_no_secret_and_no_traceback_in_the_proxy_log(faulty: Stack) -> None:
    log = faulty.proxy.logs()
    assert not any(secret in log for secret in SECRETS)
    assert "Traceback" not in log


async def test_credentials_and_hop_by_hop_headers_are_never_forwarded(
    faulty: Stack, http: aiohttp.ClientSession
):
    await faulty.clear_upstream_requests(http)
    _, headers = customer_headers(
        **{
            "Connection": "keep-alive, X-Per-Hop",
            "X-Per-Hop": "1",
            "Proxy-Authorization": "Basic c2VjcmV0",
            "Keep-Alive": "timeout=5",
            "TE": "trailers",
            "api-key": "sk-client-should-not-travel",
            "Cookie": "session=1",
        }
    )
    body = {"model": "gpt-4o-mini", "messages": MESSAGES}
    async with http.post(faulty.url + CHAT, json=body, headers=headers) as resp:
        assert resp.status == 200
    (received,) = await faulty.upstream_requests(http)
    sent = {k.lower() for k in received["headers"]}
    for header in ("x-per-hop", "proxy-authorization", "keep-alive", "te", "api-key", "cookie"):
        assert header not in sent
    assert received["headers"].get("Authorization", received["headers"].get("authorization")) != (
        f"Bearer {BACKEND_KEY}"
    )
