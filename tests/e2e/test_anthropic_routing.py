"""The Messages API under the proxy's controls, between real processes (the proxy and the
fake upstream): a hard budget reserves with the request's `max_tokens` and refuses in
Anthropic's shape before anything goes upstream; a key's requests-per-minute limit
counts count_tokens too; a target answering 529 overloaded_error falls back to the
next anthropic target; a streaming client that hangs up is drained for Anthropic's own
usage; what-if prices the same tokens on another API."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import aiohttp
import anthropic
import orjson
import pytest

from tests.support.anthropic_prices import Counts, anthropic_nusd
from tests.support.anthropic_stack import anthropic_config
from tests.support.money import nusd
from tests.support.procs import ServerProcess, start_proxy
from tests.support.stack import ACME_KEY, ADMIN_TOKEN, BACKEND_KEY, ENV, GLOBEX_KEY

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
USER = [{"role": "user", "content": "Tell me about the sea."}]


@pytest.fixture(scope="module")
def proxy(
    upstream: ServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    directory = tmp_path_factory.mktemp("anthropic-routing")
    store = {"backend": "sqlite", "sqlite_path": str(directory / "usage.db")}
    server = start_proxy(anthropic_config(upstream.url, store), directory, ENV)
    yield server
    server.stop()


async def upstream_requests(http: aiohttp.ClientSession, upstream: ServerProcess) -> list[dict]:
    async with http.get(upstream.url + "/_mock/requests") as resp:
        return await resp.json()


async def eventually(http: aiohttp.ClientSession, url: str, ready, seconds: float = 10) -> dict:
    for _ in range(int(seconds / 0.02)):
        async with http.get(url, headers=ADMIN) as resp:
            if resp.status == 200 and ready(answer := await resp.json()):
                return answer
        await asyncio.sleep(0.02)
    raise AssertionError(f"{url} did not get there in {seconds}s")


async def test_a_budget_reserves_with_max_tokens_and_refuses_in_anthropics_shape(
    proxy: ServerProcess, upstream: ServerProcess, http: aiohttp.ClientSession
) -> None:
    # thrifty's monthly budget is $0.01; 1,000 output tokens of Sonnet 4.5 cost up to
    # $0.015 ($15 per 1M), so the request cannot be held, whatever the prompt.
    async with anthropic.AsyncAnthropic(
        base_url=proxy.url,
        api_key=BACKEND_KEY,
        max_retries=0,
        default_headers={"X-Customer-Id": "thrifty", "x-mock-chunks": "3"},
    ) as client:
        marker = uuid.uuid4().hex
        message = [{"role": "user", "content": f"Too dear {marker}"}]
        with pytest.raises(anthropic.RateLimitError) as refused:
            await client.messages.create(
                model="claude-sonnet-4-5", max_tokens=1000, messages=message
            )
        error = refused.value.body
        assert error["type"] == "error" and error["error"]["type"] == "rate_limit_error"
        assert "budget" in error["error"]["message"].lower()
        assert all(marker not in r["body"] for r in await upstream_requests(http, upstream))
        # 100 output tokens ($0.0015 at most) fit, and are billed what they cost; the
        # next request sees the budget less that cost (the header is the remaining budget
        # before the request's own cost: docs/budgets.md).
        spent = 0
        for _ in range(2):
            raw = await client.messages.with_raw_response.create(
                model="claude-sonnet-4-5", max_tokens=100, messages=USER
            )
            usage = (await raw.parse()).usage
            cost = anthropic_nusd(
                "claude-sonnet-4-5", Counts(usage.input_tokens, usage.output_tokens)
            )
            assert nusd(raw.headers["x-costproxy-cost-usd"]) == cost
            assert nusd(raw.headers["x-costproxy-budget-remaining-usd"]) == 10_000_000 - spent
            spent += cost
            await eventually(  # settled in the background: the next request sees it
                http,
                f"{proxy.url}/admin/v1/budgets/customer/thrifty",
                lambda answer, spent=spent: nusd(answer["budgets"][0]["spent_usd"]) == spent,
            )


async def test_a_requests_per_minute_limit_counts_messages_and_count_tokens(
    proxy: ServerProcess,
) -> None:
    # globex's key takes 3 requests a minute.
    async with anthropic.AsyncAnthropic(base_url=proxy.url, api_key=GLOBEX_KEY, max_retries=0) as c:
        await c.messages.create(model="claude-haiku-4-5", max_tokens=16, messages=USER)
        await c.messages.count_tokens(model="claude-haiku-4-5", messages=USER)
        await c.messages.create(model="claude-haiku-4-5", max_tokens=16, messages=USER)
        with pytest.raises(anthropic.RateLimitError) as limited:
            await c.messages.count_tokens(model="claude-haiku-4-5", messages=USER)
    assert limited.value.body["error"]["type"] == "rate_limit_error"
    assert int(limited.value.response.headers["retry-after"]) > 0


async def test_an_overloaded_target_falls_back_to_the_next_anthropic_target(
    proxy: ServerProcess, http: aiohttp.ClientSession
) -> None:
    async with anthropic.AsyncAnthropic(base_url=proxy.url, api_key=ACME_KEY, max_retries=0) as c:
        raw = await c.messages.with_raw_response.create(
            model="claude-fallback", max_tokens=16, messages=USER
        )
        usage = (await raw.parse()).usage
    assert raw.headers["x-costproxy-provider"] == "anthropic-backup"
    assert raw.headers["x-costproxy-upstream-model"] == "claude-haiku-4-5"
    assert raw.headers["x-costproxy-attempts"] == "2"
    async with http.get(
        f"{proxy.url}/admin/v1/usage/{raw.headers['x-request-id']}", headers=ADMIN
    ) as resp:
        record = await resp.json()
    cost = anthropic_nusd("claude-haiku-4-5", Counts(usage.input_tokens, usage.output_tokens))
    assert (record["status"], record["attempts"], nusd(record["cost_usd"])) == (200, 2, cost)


async def hang_up_after_message_start(
    http: aiohttp.ClientSession, proxy: ServerProcess, model: str
) -> tuple[str, dict]:
    """(request id, message_start's message) of a stream the client left after it."""
    headers = {"x-api-key": ACME_KEY, "x-mock-chunks": "30", "x-mock-chunk-delay-ms": "20"}
    body = {"model": model, "max_tokens": 64, "messages": USER, "stream": True}
    resp = await http.post(proxy.url + "/v1/messages", json=body, headers=headers)
    request_id = resp.headers["x-request-id"]
    first = await resp.content.readuntil(b"\n\n")
    assert first.startswith(b"event: message_start")
    resp.close()  # after message_start: the provider has begun, and bills what it generates
    return request_id, orjson.loads(first.split(b"data: ", 1)[1])["message"]


async def test_a_client_that_hangs_up_is_drained_for_anthropics_own_usage(
    proxy: ServerProcess, upstream: ServerProcess, http: aiohttp.ClientSession
) -> None:
    request_id, started = await hang_up_after_message_start(http, proxy, "claude-haiku-4-5")
    record = await eventually(
        http, f"{proxy.url}/admin/v1/usage/{request_id}", lambda r: r["status"] == 499
    )
    # Drained to the end: the output count is message_delta's, all 30 pieces.
    assert record["usage_source"] == "upstream" and record["output_tokens"] == 30
    assert record["input_tokens"] == started["usage"]["input_tokens"]
    stream = await eventually(http, f"{upstream.url}/_mock/streams/{started['id']}", lambda s: True)
    assert stream["outcome"] == "complete"


async def test_under_close_a_hang_up_is_billed_from_message_start_and_what_was_sent(
    proxy: ServerProcess, upstream: ServerProcess, http: aiohttp.ClientSession
) -> None:
    request_id, started = await hang_up_after_message_start(http, proxy, "claude-close")
    record = await eventually(
        http, f"{proxy.url}/admin/v1/usage/{request_id}", lambda r: r["status"] == 499
    )
    # Cut at once: the prompt as message_start counted it, the output estimated from the
    # few deltas relayed (well short of the 30 the stream would have had).
    assert record["usage_source"] == "estimated"
    assert record["input_tokens"] == started["usage"]["input_tokens"]
    assert 1 <= record["output_tokens"] < 30
    stream = await eventually(
        http, f"{upstream.url}/_mock/streams/{started['id']}", lambda s: s["outcome"] != "open"
    )
    assert stream["outcome"] == "client_gone"


async def test_what_if_prices_the_same_tokens_on_another_api(
    proxy: ServerProcess, http: aiohttp.ClientSession
) -> None:
    async with anthropic.AsyncAnthropic(base_url=proxy.url, api_key=ACME_KEY, max_retries=0) as c:
        raw = await c.messages.with_raw_response.create(
            model="claude-sonnet-4-5", max_tokens=16, messages=USER
        )
        usage = (await raw.parse()).usage
    async with http.get(
        f"{proxy.url}/admin/v1/usage/{raw.headers['x-request-id']}", headers=ADMIN
    ) as resp:
        record = await resp.json()
    # gpt-4o-mini's published prices: $0.15 input, $0.60 output per 1M tokens.
    alt = (usage.input_tokens * 15 + usage.output_tokens * 60) * 10  # nano-dollars
    assert nusd(record["what_if"]["openai/gpt-4o-mini"]) == alt
