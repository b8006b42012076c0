"""Where the upstream gives no usage, the proxy counts tokens itself; secrets stay secret."""

from __future__ import annotations

import asyncio

import aiohttp

from proxy.accounting import tokens
from tests.support.money import expected_nusd, nusd
from tests.support.sse import sse_text
from tests.support.stack import ACME_KEY, BACKEND_KEY, SECRETS, UPSTREAM_KEY, Stack

BODY = {
    "model": "gpt-4o-mini",
    "messages": [
        {"role": "system", "content": "You are a narrator."},
        {"role": "user", "content": "Describe the tavern at dusk, in detail."},
    ],
}
AUTH = {"Authorization": f"Bearer {ACME_KEY}"}


async def wait_for_record(stack: Stack, http: aiohttp.ClientSession, request_id: str) -> dict:
    # A stream's record is written when the stream ends on the proxy's side, which may be
    # just after the client stopped reading.
    for _ in range(100):
        async with http.get(
            f"{stack.url}/admin/v1/usage/{request_id}", headers=stack.admin_headers
        ) as resp:
            if resp.status == 200:
                return await resp.json()
        await asyncio.sleep(0.05)
    raise AssertionError(f"no usage record for {request_id}")


async def test_missing_usage_is_estimated_with_tiktoken(stack: Stack, http: aiohttp.ClientSession):
    headers = {**AUTH, "x-mock-no-usage": "1"}
    async with http.post(stack.url + "/v1/chat/completions", json=BODY, headers=headers) as resp:
        assert resp.status == 200
        reply = await resp.json()
        cost_header = resp.headers["x-costproxy-cost-usd"]
    assert "usage" not in reply
    record = await stack.usage(http, resp.headers["x-request-id"])
    prompt = tokens.count_chat_prompt("gpt-4o-mini", BODY["messages"])
    completion = tokens.count_text("gpt-4o-mini", reply["choices"][0]["message"]["content"])
    assert record["usage_source"] == "estimated"
    assert (record["input_tokens"], record["output_tokens"]) == (prompt, completion)
    assert nusd(record["cost_usd"]) == expected_nusd("gpt-4o-mini", prompt, 0, completion)
    assert cost_header == record["cost_usd"]


async def test_stream_without_usage_is_estimated(stack: Stack, http: aiohttp.ClientSession):
    headers = {**AUTH, "x-mock-no-usage": "1", "x-mock-chunks": "20"}
    body = {**BODY, "stream": True}
    async with http.post(stack.url + "/v1/chat/completions", json=body, headers=headers) as resp:
        data = await resp.read()
    record = await stack.usage(http, resp.headers["x-request-id"])
    assert record["usage_source"] == "estimated"
    assert record["input_tokens"] == tokens.count_chat_prompt("gpt-4o-mini", BODY["messages"])
    assert record["output_tokens"] == tokens.count_text("gpt-4o-mini", sse_text(data)) > 0


async def test_stream_cut_by_the_upstream_ends_cleanly_and_bills_what_was_sent(
    stack: Stack, http: aiohttp.ClientSession
):
    headers = {**AUTH, "x-mock-fail-after": "3", "x-mock-chunks": "10"}
    body = {**BODY, "stream": True}
    async with http.post(stack.url + "/v1/chat/completions", json=body, headers=headers) as resp:
        assert resp.status == 200
        data = await resp.read()  # a clean end: no exception for the client
    assert data.endswith(b"\n\n")
    assert b"[DONE]" not in data
    delivered = sse_text(data)
    record = await wait_for_record(stack, http, resp.headers["x-request-id"])
    assert record["status"] == 502
    assert record["usage_source"] == "estimated"
    assert record["output_tokens"] == tokens.count_text("gpt-4o-mini", delivered) > 0


async def test_client_disconnect_mid_stream_bills_what_the_provider_reports(
    stack: Stack, http: aiohttp.ClientSession
):
    # By default (streams.on_client_disconnect: drain) the proxy reads the rest of the
    # stream for the provider's own usage: the provider bills all it generated.
    headers = {**AUTH, "x-mock-chunks": "50", "x-mock-chunk-delay-ms": "10"}
    body = {**BODY, "stream": True}
    resp = await http.post(stack.url + "/v1/chat/completions", json=body, headers=headers)
    request_id = resp.headers["x-request-id"]
    await resp.content.readuntil(b"\n\n")
    await resp.content.readuntil(b"\n\n")
    resp.close()  # hang up after two events
    record = await wait_for_record(stack, http, request_id)
    assert record["status"] == 499
    assert record["usage_source"] == "upstream"
    assert record["output_tokens"] == 50  # the fake upstream's count: a token per chunk


async def test_credentials_are_swapped_and_attribution_headers_stay_home(
    stack: Stack, http: aiohttp.ClientSession
):
    await stack.clear_upstream_requests(http)
    headers = {
        "Authorization": f"Bearer {BACKEND_KEY}",
        "X-Customer-Id": "tenant-42",
        "X-Cost-Tags": "feature=story",
        "X-End-User-Id": "player-9",
        "OpenAI-Organization": "org-client",
    }
    async with http.post(stack.url + "/v1/chat/completions", json=BODY, headers=headers) as resp:
        assert resp.status == 200
        text = await resp.text()
        response_headers = dict(resp.headers)
        request_id = resp.headers["x-request-id"]
    (received,) = await stack.upstream_requests(http)
    sent = {k.lower(): v for k, v in received["headers"].items()}
    assert sent["authorization"] == f"Bearer {UPSTREAM_KEY}"
    for header in ("x-customer-id", "x-cost-tags", "x-end-user-id", "openai-organization"):
        assert header not in sent
    exposed = text + repr(response_headers)
    assert not any(secret in exposed for secret in SECRETS)
    record = await stack.usage(http, request_id)
    assert (record["customer"], record["end_user"], record["tags"]) == (
        "tenant-42",
        "player-9",
        ["feature=story"],
    )
    assert not any(secret in repr(record) for secret in SECRETS)


def test_no_secret_in_the_proxy_log(stack: Stack):
    log = stack.proxy.logs()
    assert not any(secret in log for secret in SECRETS)
