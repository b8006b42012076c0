"""Every recorded Messages API answer (tests/fixtures/recordings/anthropic), replayed
through a real proxy by the replay upstream: the client gets exactly the recorded bytes
(and Anthropic's `request-id`), and the usage record holds what Anthropic bills, as
derived by hand in each recording's `expected` (input including cache reads and 5m/1h
writes, web searches), at a cost computed from Anthropic's published prices
(tests/support/anthropic_prices.py). Each recording is sent twice: as raw HTTP (bytes
compared exactly) and through the official anthropic SDK.

Which bytes are the wire's: the simonw/llm-anthropic streams and the Helicone error
stream are Anthropic's bytes as received; the pydantic-ai plain bodies are
re-serialised JSON (the cassettes keep parsed bodies) and the vercel and Claude Code
streams re-framed (`event:`/`data:` rebuilt from stored payloads), as each recording's
`source.note` says. The proxy must relay all of them byte for byte either way: that is
what is checked; where a fixture is a re-serialisation, it shows the proxy's fidelity to
what it was sent, not Anthropic's original framing.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator
from typing import Any

import aiohttp
import anthropic
import pytest

from tests.support.anthropic_prices import Counts, anthropic_nusd
from tests.support.money import nusd, usd
from tests.support.procs import ServerProcess, start_proxy
from tests.support.recordings import Recording, anthropic_recordings
from tests.support.stack import ACME_KEY, ADMIN_TOKEN, ENV

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
PATHS = {"messages": "/v1/messages", "count_tokens": "/v1/messages/count_tokens"}
# For recordings whose source kept no request: the smallest valid request.
DEFAULT_REQUEST = {"max_tokens": 1024, "messages": [{"role": "user", "content": "Hello"}]}
ALL = anthropic_recordings()


def billed_model(item: Recording) -> str:
    """The model a recording's route targets: the one that answered (errors name none)."""
    return item.meta.get("model") or "claude-sonnet-4-5"


@pytest.fixture(scope="module")
def proxy(
    replay_upstream: ServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    directory = tmp_path_factory.mktemp("anthropic-recordings")
    config = {
        "store": {"backend": "sqlite", "sqlite_path": str(directory / "usage.db")},
        "admin": {"token": "${T_ADMIN_TOKEN}"},
        # Named "replay", the provider is priced as its kind says: Anthropic's catalogue.
        "providers": {
            "replay": {
                "kind": "anthropic",
                "base_url": replay_upstream.url,
                "api_key": "${T_UPSTREAM_KEY}",
                "forward_headers": ["x-replay", "x-replay-*"],  # the replay's controls
            }
        },
        # One route per recording, named after it; no retries: one answer, one record.
        "models": {
            item.name: {
                "targets": [{"provider": "replay", "model": billed_model(item)}],
                "retries": 0,
            }
            for item in ALL
        },
        "keys": [{"key": "${T_ACME_KEY}", "customer": "acme"}],
    }
    server = start_proxy(config, directory, ENV)
    yield server
    server.stop()


def request_body(item: Recording) -> dict[str, Any]:
    body = dict(item.meta["request"] or DEFAULT_REQUEST)
    body["model"] = item.name
    if item.meta["api"] == "messages":
        body["stream"] = item.stream
    return body


def expected_nusd(item: Recording) -> int:
    e = item.expected
    writes = e["cache_write_5m_tokens"] + e["cache_write_1h_tokens"]
    counts = Counts(
        input_tokens=e["input_tokens"] - e["cache_read_tokens"] - writes,
        output_tokens=e["output_tokens"],
        cache_read=e["cache_read_tokens"],
        write_5m=e["cache_write_5m_tokens"],
        write_1h=e["cache_write_1h_tokens"],
        web_searches=e["web_search_requests"],
    )
    # No request here sends the 1M-context beta: plain_web_search_pause_turn_over_200k
    # passes 200k only as the sum of its ten search iterations, billed at standard rates.
    return anthropic_nusd(billed_model(item), counts)


async def usage_record(proxy: ServerProcess, http: aiohttp.ClientSession, request_id: str) -> dict:
    # A stream's record is written as the stream ends on the proxy's side.
    for _ in range(100):
        async with http.get(f"{proxy.url}/admin/v1/usage/{request_id}", headers=ADMIN) as resp:
            if resp.status == 200:
                return await resp.json()
        await asyncio.sleep(0.05)
    raise AssertionError(f"no usage record for {request_id}")


async def check_billed(
    proxy: ServerProcess, http: aiohttp.ClientSession, item: Recording, request_id: str
) -> None:
    e = item.expected
    if item.meta["api"] == "count_tokens":  # free: never recorded as usage
        async with http.get(f"{proxy.url}/admin/v1/usage/{request_id}", headers=ADMIN) as resp:
            assert resp.status == 404
        return
    record = await usage_record(proxy, http, request_id)
    billed = {
        "input_tokens": record["input_tokens"],
        "cache_read_tokens": record["cached_input_tokens"],
        "cache_write_5m_tokens": record["cache_write_5m_tokens"],
        "cache_write_1h_tokens": record["cache_write_1h_tokens"],
        "output_tokens": record["output_tokens"],
        "web_search_requests": record["web_search_requests"],
    }
    assert billed == {k: e[k] for k in billed}
    if e.get("billable") is False:
        assert record["cost_usd"] == "0.000000000"
        # An error the API answered keeps its status; a stream's error event (after the
        # HTTP 200 in `expected`) is recorded with the status it stands for.
        status = {"overloaded_error": 529}.get(e.get("stream_error_type"), e["status"])
        assert record["status"] == status
        return
    assert record["status"] == 200 and record["usage_source"] == "upstream"
    assert nusd(record["cost_usd"]) == expected_nusd(item)
    assert record["model"] == billed_model(item)


@pytest.mark.parametrize("item", ALL, ids=[item.name for item in ALL])
async def test_raw_bytes_reach_the_client_and_the_record_is_what_anthropic_bills(
    proxy: ServerProcess, http: aiohttp.ClientSession, item: Recording
) -> None:
    headers = {"x-api-key": ACME_KEY, "anthropic-version": "2023-06-01", "x-replay": item.name}
    async with http.post(
        proxy.url + PATHS[item.meta["api"]], json=request_body(item), headers=headers
    ) as resp:
        body = await resp.read()
        assert resp.status == item.status
        assert resp.headers["Content-Type"] == item.content_type
        upstream_id = (item.meta.get("response_headers") or {}).get("request-id")
        assert resp.headers.get("request-id") == upstream_id
        request_id = resp.headers["x-request-id"]
        if item.status == 200 and not item.stream:
            billable = item.expected.get("billable") is not False
            cost = usd(expected_nusd(item)) if billable else "0.000000000"
            assert resp.headers["x-costproxy-cost-usd"] == cost
    assert body == item.body
    await check_billed(proxy, http, item, request_id)


def sdk_arguments(create: Any, body: dict[str, Any]) -> dict[str, Any]:
    """The body as the SDK's arguments: its own parameters, the rest in extra_body."""
    known = set(inspect.signature(create).parameters)
    arguments = {k: v for k, v in body.items() if k in known}
    extra = {k: v for k, v in body.items() if k not in known}
    return {**arguments, "extra_body": extra} if extra else arguments


@pytest.mark.parametrize("item", ALL, ids=[item.name for item in ALL])
async def test_the_anthropic_sdk_reads_the_answer_and_the_record_is_what_anthropic_bills(
    proxy: ServerProcess, http: aiohttp.ClientSession, item: Recording
) -> None:
    client = anthropic.AsyncAnthropic(
        base_url=proxy.url,
        api_key=ACME_KEY,
        default_headers={"x-replay": item.name},
        max_retries=0,
    )
    resource = client.messages.with_raw_response
    create = resource.count_tokens if item.meta["api"] == "count_tokens" else resource.create
    try:
        try:
            raw = await create(**sdk_arguments(create, request_body(item)))
        except anthropic.APIStatusError as error:  # a recorded HTTP error, as the SDK sees it
            assert error.status_code == item.status >= 400
            assert error.body["error"]["type"] == item.expected["error_type"]
            request_id = error.response.headers["x-request-id"]
        else:
            request_id = raw.headers["x-request-id"]
            answer = await raw.parse()
            if item.stream:
                events = []
                try:
                    async for event in answer:
                        events.append(event)
                except anthropic.APIStatusError as error:  # the stream's own error event
                    assert item.expected["stream_error_type"] in str(error.body)
                else:
                    assert events[-1].type == "message_stop"
            elif item.meta["api"] == "count_tokens":
                assert answer.input_tokens == item.meta["reported_usage"]["input_tokens"]
            else:
                assert answer.usage.output_tokens == item.expected["output_tokens"]
    finally:
        await client.close()
    await check_billed(proxy, http, item, request_id)
