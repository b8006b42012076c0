"""Every recorded provider response, replayed byte for byte through a real proxy: the
client gets exactly the recorded bytes, and the usage record holds what the provider
bills (tokens, status, service tier, the provider's own cost), as derived by hand in
each recording's `expected`. Each recording is sent twice: as raw HTTP (bytes compared
exactly) and through the official openai SDK (plain and streamed).

The clients here ask for `stream_options.include_usage` themselves, so the proxy relays
every event, its usage chunk included (the chunk the proxy hides is the one it asked
for itself: tests/e2e/test_passthrough.py).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest

from tests.support.procs import ServerProcess, start_proxy
from tests.support.recordings import Recording, expected_figures, recordings
from tests.support.replay_upstream import start_replay_upstream
from tests.support.stack import ACME_KEY, ADMIN_TOKEN, ENV

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
PATHS = {
    "chat.completions": "/v1/chat/completions",
    "completions": "/v1/completions",
    "embeddings": "/v1/embeddings",
    "responses": "/v1/responses",
}
# For recordings whose source kept no request: the smallest valid request.
DEFAULT_REQUESTS = {
    "chat.completions": {"messages": [{"role": "user", "content": "Hello"}]},
    "completions": {"prompt": "Hello"},
    "embeddings": {"input": "Hello"},
    "responses": {"input": "Hello"},
}
ALL = recordings()


def config(replay_url: str, directory: Path) -> dict:
    return {
        "store": {"backend": "sqlite", "sqlite_path": str(directory / "usage.db")},
        "admin": {"token": "${T_ADMIN_TOKEN}"},
        "request_log": {"enabled": False},
        "providers": {"replay": {"base_url": replay_url + "/v1", "api_key": "${T_UPSTREAM_KEY}"}},
        # One route per recording, named after it; no retries: one answer, one record.
        "models": {
            item.name: {"targets": [{"provider": "replay", "model": "recorded"}], "retries": 0}
            for item in ALL
        },
        "keys": [{"key": "${T_ACME_KEY}", "customer": "replay"}],
    }


@pytest.fixture(scope="module")
def replay() -> Iterator[ServerProcess]:
    server = start_replay_upstream()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def proxy(
    replay: ServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    directory = tmp_path_factory.mktemp("recordings")
    server = start_proxy(config(replay.url, directory), directory, ENV)
    yield server
    server.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def request_body(item: Recording) -> dict[str, Any]:
    body = dict(item.meta["request"] or DEFAULT_REQUESTS[item.endpoint])
    body["model"] = item.name
    if item.stream:
        body["stream"] = True
        if item.endpoint != "responses":
            body["stream_options"] = {**body.get("stream_options", {}), "include_usage": True}
    return body


async def usage_record(proxy: ServerProcess, http: aiohttp.ClientSession, request_id: str) -> dict:
    # A stream's record is written as the stream ends on the proxy's side.
    for _ in range(100):
        async with http.get(f"{proxy.url}/admin/v1/usage/{request_id}", headers=ADMIN) as resp:
            if resp.status == 200:
                return await resp.json()
        await asyncio.sleep(0.05)
    raise AssertionError(f"no usage record for {request_id}")


def billed(record: dict) -> dict[str, Any]:
    """A record in the terms of a recording's `expected`."""
    cost = record["provider_cost_usd"]
    return {
        "input_tokens": record["input_tokens"],
        "cached_input_tokens": record["cached_input_tokens"],
        "cache_write_tokens": record["cache_write_5m_tokens"] + record["cache_write_1h_tokens"],
        "output_tokens": record["output_tokens"],
        "reasoning_tokens": record["reasoning_tokens"],
        "input_audio_tokens": record["input_audio_tokens"],
        "output_audio_tokens": record["output_audio_tokens"],
        "service_tier": record["service_tier"],
        "provider_cost_usd": None if cost is None else Decimal(cost),
        "status": record["status"],
    }


def check_record(item: Recording, record: dict) -> None:
    if item.counts_known:
        assert billed(record) == expected_figures(item)
        assert record["usage_source"] == "upstream"
        return
    # A failure whose counts the provider never said: billed as estimated, prompt and
    # delivered text (here reasoning deltas) both counted.
    assert record["status"] == item.expected["status"]
    assert record["usage_source"] == "estimated"
    assert record["input_tokens"] > 0 and record["output_tokens"] > 0


@pytest.mark.parametrize("item", ALL, ids=[item.name for item in ALL])
async def test_raw_bytes_reach_the_client_and_the_record_is_what_the_provider_bills(
    proxy: ServerProcess, http: aiohttp.ClientSession, item: Recording
) -> None:
    headers = {"Authorization": f"Bearer {ACME_KEY}", "x-replay": item.name}
    async with http.post(
        proxy.url + PATHS[item.endpoint], json=request_body(item), headers=headers
    ) as resp:
        body = await resp.read()
        assert resp.status == item.status
        assert resp.headers["Content-Type"] == item.content_type
        request_id = resp.headers["x-request-id"]
    assert body == item.body
    check_record(item, await usage_record(proxy, http, request_id))


def sdk_call(client: openai.AsyncOpenAI, endpoint: str) -> Any:
    resource = {
        "chat.completions": client.chat.completions,
        "completions": client.completions,
        "embeddings": client.embeddings,
        "responses": client.responses,
    }[endpoint]
    return resource.with_raw_response.create


def sdk_arguments(create: Any, body: dict[str, Any]) -> dict[str, Any]:
    """The body as the SDK's arguments: its own parameters, the rest in extra_body."""
    known = set(inspect.signature(create).parameters)
    arguments = {k: v for k, v in body.items() if k in known}
    extra = {k: v for k, v in body.items() if k not in known}
    return {**arguments, "extra_body": extra} if extra else arguments


@pytest.mark.parametrize("item", ALL, ids=[item.name for item in ALL])
async def test_the_openai_sdk_reads_the_answer_and_the_record_is_what_the_provider_bills(
    proxy: ServerProcess, http: aiohttp.ClientSession, item: Recording
) -> None:
    client = openai.AsyncOpenAI(
        base_url=proxy.url + "/v1",
        api_key=ACME_KEY,
        default_headers={"x-replay": item.name},
        max_retries=0,
    )
    create = sdk_call(client, item.endpoint)
    try:
        try:
            raw = await create(**sdk_arguments(create, request_body(item)))
        except openai.APIStatusError as error:  # a recorded HTTP error, as the SDK sees it
            assert error.status_code == item.status >= 400
            request_id = error.response.headers["x-request-id"]
        else:
            request_id = raw.headers["x-request-id"]
            answer = raw.parse()
            if item.stream:
                events = []
                try:
                    async for event in answer:
                        events.append(event)
                except openai.APIError:  # the stream's own error event
                    assert item.expected["status"] >= 400
                assert events
            else:
                assert answer.model  # parsed into the SDK's type
    finally:
        await client.close()
    check_record(item, await usage_record(proxy, http, request_id))
