"""The official openai SDK, unchanged, through the proxy: all five endpoints, both stores."""

from __future__ import annotations

import uuid

import aiohttp
import openai
import pytest
from openai import AsyncOpenAI

from tests.support.money import expected_nusd, nusd, usd
from tests.support.stack import ACME_KEY, BACKEND_KEY, Stack


@pytest.fixture
async def client(stack: Stack):
    async with AsyncOpenAI(base_url=stack.url + "/v1", api_key=ACME_KEY, max_retries=0) as c:
        yield c


def customer_headers() -> tuple[str, dict[str, str]]:
    customer = f"cust-{uuid.uuid4().hex[:10]}"
    return customer, {"X-Customer-Id": customer}


MESSAGES = [
    {"role": "system", "content": "You write short stories."},
    {"role": "user", "content": "A dragon who counts coins."},
]


async def test_chat_non_streaming(stack: Stack, client: AsyncOpenAI, http: aiohttp.ClientSession):
    raw = await client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=MESSAGES, extra_headers={"x-mock-usage": "1200,200,300,50"}
    )
    completion = raw.parse()
    assert completion.choices[0].message.content
    assert completion.usage.prompt_tokens == 1200
    cost = expected_nusd("gpt-4o-mini", 1200, 200, 300)
    assert raw.headers["x-costproxy-cost-usd"] == usd(cost) == "0.000345000"
    assert raw.headers["x-costproxy-provider"] == "openai"
    assert raw.headers["x-costproxy-upstream-model"] == "gpt-4o-mini"
    request_id = raw.headers["x-request-id"]
    record = await stack.usage(http, request_id)
    assert record["customer"] == "acme"
    assert record["key_id"] == "acme-prod"
    assert (record["route"], record["provider"], record["model"]) == (
        "gpt-4o-mini",
        "openai",
        "gpt-4o-mini",
    )
    assert (
        record["input_tokens"],
        record["cached_input_tokens"],
        record["output_tokens"],
        record["reasoning_tokens"],
    ) == (1200, 200, 300, 50)
    assert nusd(record["cost_usd"]) == cost
    assert record["usage_source"] == "upstream"
    assert record["status"] == 200
    assert record["endpoint"] == "chat.completions"


async def test_model_is_rewritten_to_the_upstream_name(stack: Stack, http: aiohttp.ClientSession):
    _, headers = customer_headers()
    async with AsyncOpenAI(
        base_url=stack.url + "/v1", api_key=BACKEND_KEY, max_retries=0, default_headers=headers
    ) as client:
        raw = await client.chat.completions.with_raw_response.create(
            model="story", messages=MESSAGES, extra_headers={"x-mock-usage": "10,0,5,0"}
        )
    assert raw.headers["x-costproxy-upstream-model"] == "cheap-model"
    received = (await stack.upstream_requests(http))[-1]
    assert '"model":"cheap-model"' in received["body"].replace(" ", "")


async def test_chat_stream_hides_the_usage_chunk_it_asked_for(
    stack: Stack, client: AsyncOpenAI, http: aiohttp.ClientSession
):
    raw = await client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        stream=True,
        extra_headers={"x-mock-usage": "40,0,8,0", "x-mock-chunks": "8"},
    )
    chunks = [chunk async for chunk in raw.parse()]
    assert chunks, "the stream delivered nothing"
    assert all(chunk.choices for chunk in chunks), "the usage-only chunk reached the client"
    assert all(chunk.usage is None for chunk in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text
    received = (await stack.upstream_requests(http))[-1]
    assert '"include_usage":true' in received["body"].replace(" ", "")
    record = await stack.usage(http, raw.headers["x-request-id"])
    assert (record["input_tokens"], record["output_tokens"]) == (40, 8)
    assert record["usage_source"] == "upstream"
    assert nusd(record["cost_usd"]) == expected_nusd("gpt-4o-mini", 40, 0, 8)
    assert record["ttft_ms"] is not None


async def test_chat_stream_passes_usage_when_the_client_asked(
    stack: Stack, client: AsyncOpenAI, http: aiohttp.ClientSession
):
    stream = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
        extra_headers={"x-mock-usage": "41,1,9,2"},
    )
    chunks = [chunk async for chunk in stream]
    assert chunks[-1].choices == []
    assert chunks[-1].usage.prompt_tokens == 41
    assert chunks[-1].usage.completion_tokens == 9


async def test_completions_both_ways(
    stack: Stack, client: AsyncOpenAI, http: aiohttp.ClientSession
):
    raw = await client.completions.with_raw_response.create(
        model="gpt-4o-mini", prompt="Once upon a time", extra_headers={"x-mock-usage": "7,0,3,0"}
    )
    assert raw.parse().choices[0].text
    assert raw.headers["x-costproxy-cost-usd"] == usd(expected_nusd("gpt-4o-mini", 7, 0, 3))
    raw = await client.completions.with_raw_response.create(
        model="gpt-4o-mini",
        prompt="Once upon a time",
        stream=True,
        extra_headers={"x-mock-usage": "7,0,4,0"},
    )
    chunks = [chunk async for chunk in raw.parse()]
    assert chunks and all(chunk.choices for chunk in chunks)
    record = await stack.usage(http, raw.headers["x-request-id"])
    assert (record["endpoint"], record["input_tokens"], record["output_tokens"]) == (
        "completions",
        7,
        4,
    )


async def test_embeddings(stack: Stack, client: AsyncOpenAI, http: aiohttp.ClientSession):
    raw = await client.embeddings.with_raw_response.create(
        model="text-embedding-3-small", input=["a dragon", "a coin"]
    )
    result = raw.parse()
    assert len(result.data) == 2 and len(result.data[0].embedding) > 0
    record = await stack.usage(http, raw.headers["x-request-id"])
    assert record["endpoint"] == "embeddings"
    assert record["input_tokens"] == result.usage.prompt_tokens > 0
    assert record["output_tokens"] == 0
    # text-embedding-3-small is priced from the bundled table: $0.02 per 1M input tokens.
    assert nusd(record["cost_usd"]) == result.usage.prompt_tokens * 20


async def test_responses_both_ways(stack: Stack, client: AsyncOpenAI, http: aiohttp.ClientSession):
    raw = await client.responses.with_raw_response.create(
        model="gpt-4o-mini", input="Tell a story.", extra_headers={"x-mock-usage": "30,10,12,4"}
    )
    response = raw.parse()
    assert response.output_text
    assert response.usage.input_tokens == 30
    assert raw.headers["x-costproxy-cost-usd"] == usd(expected_nusd("gpt-4o-mini", 30, 10, 12))

    raw = await client.responses.with_raw_response.create(
        model="gpt-4o-mini",
        input="Tell a story.",
        stream=True,
        extra_headers={"x-mock-usage": "31,0,13,0"},
    )
    events = [event async for event in raw.parse()]
    assert events[-1].type == "response.completed"
    assert events[-1].response.usage.output_tokens == 13
    record = await stack.usage(http, raw.headers["x-request-id"])
    assert (record["endpoint"], record["input_tokens"], record["output_tokens"]) == (
        "responses",
        31,
        13,
    )


async def test_models_lists_the_route_names(stack: Stack, client: AsyncOpenAI):
    names = {model.id async for model in client.models.list()}
    assert {"gpt-4o-mini", "story", "text-embedding-3-small", "unpriced"} <= names
    model = await client.models.retrieve("story")
    assert (model.id, model.object, model.owned_by) == ("story", "model", "costproxy")
    with pytest.raises(openai.NotFoundError) as caught:
        await client.models.retrieve("no-such-model")
    assert caught.value.body == {
        "message": "The model 'no-such-model' does not exist or you do not have access to it.",
        "type": "invalid_request_error",
        "param": "model",
        "code": "model_not_found",
    }


async def test_a_key_limited_to_some_models_sees_only_those(
    stack: Stack, http: aiohttp.ClientSession
):
    async with http.post(
        stack.url + "/admin/v1/keys",
        json={"customer": "acme", "models": ["story", "gpt-4o"]},
        headers=stack.admin_headers,
    ) as resp:
        assert resp.status == 201
        secret = (await resp.json())["key"]
    async with AsyncOpenAI(base_url=stack.url + "/v1", api_key=secret, max_retries=0) as limited:
        assert sorted([model.id async for model in limited.models.list()]) == ["gpt-4o", "story"]
        assert (await limited.models.retrieve("gpt-4o")).id == "gpt-4o"
        with pytest.raises(openai.NotFoundError):
            await limited.models.retrieve("gpt-4o-mini")  # exists, but not for this key
    async with http.get(stack.url + "/v1/models/gpt-4o") as resp:
        assert resp.status == 401  # no key, no answer


async def test_unpriced_model_is_forwarded_and_counted_not_billed_zero(
    stack: Stack, http: aiohttp.ClientSession
):
    customer, headers = customer_headers()
    async with AsyncOpenAI(
        base_url=stack.url + "/v1", api_key=BACKEND_KEY, max_retries=0, default_headers=headers
    ) as client:
        raw = await client.chat.completions.with_raw_response.create(
            model="unpriced", messages=MESSAGES, extra_headers={"x-mock-usage": "10,0,5,0"}
        )
    assert raw.headers["x-costproxy-cost-usd"] == "unknown"
    spend = await stack.spend(http, customer=customer)
    assert spend["total"]["requests"] == 1
    assert spend["total"]["unpriced_requests"] == 1
    assert spend["total"]["cost_usd"] == "0.000000000"
    assert spend["total"]["input_tokens"] == 10
