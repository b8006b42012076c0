"""What the proxy does with what the upstream answers, against replayed real answers:

- a stream that ends in an error event is recorded with the error's status and billed as
  the provider bills it (nothing for a quota failure, its usage when it sends one, an
  estimate of prompt and delivered reasoning otherwise), the client getting every byte;
- an upstream error body reaches the client unchanged whatever its content type; the
  proxy answers itself only for an empty body or an HTML page, always with x-request-id;
- the body sent upstream names exactly one model, the target's; an answer naming another
  model is counted and logged.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator

import aiohttp
import orjson
import pytest
from multidict import CIMultiDict

from proxy.accounting import tokens
from tests.support.bodies import top_level_values
from tests.support.money import usd
from tests.support.procs import ServerProcess, start_proxy
from tests.support.recordings import recording
from tests.support.replay_upstream import replay_proxy_config
from tests.support.stack import ACME_KEY, ADMIN_TOKEN, ENV

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
AUTH = {"Authorization": f"Bearer {ACME_KEY}"}
CHAT = "/v1/chat/completions"
MESSAGES = [{"role": "user", "content": "Hello"}]
# Routes: name -> upstream model. "$1 per 1M tokens in, $2 out" for every model.
ROUTES = {
    "gpt-oss": "openai/gpt-oss-120b",
    "minimax": "minimax/minimax-m2:free",
    "gpt-5-nano": "gpt-5-nano",
    "deepseek": "deepseek-v4-flash",
    "cheap": "gpt-4.1-nano",
    "gpt-4.1": "gpt-4.1",
    "gpt-5": "gpt-5",
    "gpt-5-mini": "gpt-5-mini",
    "same": "same",
    "errors": "m",
}


@pytest.fixture(scope="module")
def proxy(
    replay_upstream: ServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    directory = tmp_path_factory.mktemp("answers")
    config = replay_proxy_config(
        replay_upstream.url, directory, ROUTES, prices={"input": "1", "output": "2"}
    )
    server = start_proxy(config, directory, ENV)
    yield server
    server.stop()


async def post(
    http: aiohttp.ClientSession, proxy: ServerProcess, body: dict | bytes, **headers: str
) -> tuple[int, bytes, CIMultiDict[str]]:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    all_headers = {**AUTH, "Content-Type": "application/json", **headers}
    async with http.post(proxy.url + CHAT, data=data, headers=all_headers) as resp:
        return resp.status, await resp.read(), CIMultiDict(resp.headers)


async def usage(http: aiohttp.ClientSession, proxy: ServerProcess, request_id: str) -> dict:
    async with http.get(f"{proxy.url}/admin/v1/usage/{request_id}", headers=ADMIN) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


def cost(input_tokens: int, output_tokens: int) -> str:
    """$1 per 1M input tokens, $2 per 1M output: 1,000 and 2,000 nano-dollars a token."""
    return usd(input_tokens * 1_000 + output_tokens * 2_000)


# --- streams that end in an error ---------------------------------------------------------


async def test_a_quota_failure_mid_stream_is_a_429_that_costs_nothing(
    http: aiohttp.ClientSession, proxy: ServerProcess
) -> None:
    item = recording("openai/responses-stream-failed-insufficient-quota")
    body = {"model": "gpt-5-nano", "input": "Hello", "stream": True}
    async with http.post(
        proxy.url + "/v1/responses", json=body, headers={**AUTH, "x-replay": item.name}
    ) as resp:
        assert resp.status == 200  # the stream had started: the client sees what was sent
        assert await resp.read() == item.body
        record = await usage(http, proxy, resp.headers["x-request-id"])
    assert record["status"] == 429
    assert (record["input_tokens"], record["output_tokens"], record["cost_usd"]) == (
        0,
        0,
        "0.000000000",
    )
    assert record["service_tier"] == "auto"


async def test_an_error_event_without_usage_bills_an_estimate_of_what_was_done(
    http: aiohttp.ClientSession, proxy: ServerProcess
) -> None:
    item = recording("groq/stream-event-error-tool-use-failed")
    body = {**item.meta["request"], "model": "gpt-oss"}
    status, answer, headers = await post(http, proxy, body, **{"x-replay": item.name})
    assert (status, answer) == (200, item.body)
    record = await usage(http, proxy, headers["x-request-id"])
    assert record["status"] == 400  # the error's status_code
    assert record["usage_source"] == "estimated"
    # The prompt, and the reasoning the stream delivered before its error.
    reasoning = "".join(
        choice["delta"].get("reasoning") or ""
        for line in item.body.split(b"\n")
        if line.startswith(b"data: {") and b'"choices"' in line
        for choice in orjson.loads(line[6:])["choices"]
    )
    model = ROUTES["gpt-oss"]
    assert record["input_tokens"] == tokens.count_prompt("chat.completions", body, model)
    assert record["output_tokens"] == tokens.count_text(model, reasoning) > 50
    assert record["cost_usd"] == cost(record["input_tokens"], record["output_tokens"])


async def test_an_error_event_with_usage_bills_that_usage(
    http: aiohttp.ClientSession, proxy: ServerProcess
) -> None:
    item = recording("openrouter/stream-error-chunk-with-usage")
    body = {"model": "minimax", "messages": MESSAGES, "stream": True}
    status, answer, headers = await post(http, proxy, body, **{"x-replay": item.name})
    assert (status, answer) == (200, item.body)
    record = await usage(http, proxy, headers["x-request-id"])
    assert (record["status"], record["usage_source"]) == (400, "upstream")
    assert (record["input_tokens"], record["output_tokens"]) == (43, 10)
    assert record["provider_cost_usd"] == "0.000000000"  # OpenRouter's own figure
    assert record["cost_usd"] == cost(43, 10)  # ours, at the configured price


# --- errors pass through as sent ----------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "deepseek/responses-error-400-octet-stream",  # JSON labelled application/octet-stream
        "voyage/embeddings-error-400",  # not OpenAI's error shape
        "openrouter/error-429-rate-limited",
        "groq/error-404-model-not-found",
    ],
)
async def test_an_upstream_error_reaches_the_client_as_sent(
    http: aiohttp.ClientSession, proxy: ServerProcess, name: str
) -> None:
    item = recording(name)
    status, answer, headers = await post(
        http, proxy, {"model": "errors", "messages": MESSAGES}, **{"x-replay": name}
    )
    assert (status, answer, headers["Content-Type"]) == (item.status, item.body, item.content_type)
    record = await usage(http, proxy, headers["x-request-id"])
    assert (record["status"], record["cost_usd"], record["input_tokens"]) == (
        item.status,
        "0.000000000",
        0,
    )


@pytest.mark.parametrize(
    ("status", "content_type", "body", "passed_on"),
    [
        pytest.param(503, "application/json", b"", False, id="empty"),
        pytest.param(502, "text/plain", b"  \n", False, id="blank"),
        pytest.param(502, "text/html", b"<html><body>Bad Gateway</body></html>", False,
                     id="html-page"),
        pytest.param(500, "text/plain", b"<!DOCTYPE html><p>oops", False, id="html-mislabelled"),
        pytest.param(500, "text/plain", b'{"error": {"message": "boom"}}', True, id="json-as-text"),
        pytest.param(418, "text/plain", b"I'm a teapot", True, id="plain-text"),
    ],
)  # fmt: skip
async def test_the_proxy_answers_itself_only_when_there_is_nothing_to_pass_on(
    http: aiohttp.ClientSession,
    proxy: ServerProcess,
    status: int,
    content_type: str,
    body: bytes,
    passed_on: bool,
) -> None:
    # Synthetic answers (no recording shows these): the replay sends what it is told.
    synthetic = {
        "x-replay-status": str(status),
        "x-replay-content-type": content_type,
        "x-replay-body": base64.b64encode(body).decode(),
    }
    got_status, answer, headers = await post(
        http, proxy, {"model": "errors", "messages": MESSAGES}, **synthetic
    )
    assert got_status == status
    assert headers["x-request-id"].startswith("req_")
    if passed_on:
        assert answer == body
        assert headers["Content-Type"].startswith(content_type)
    else:
        error = orjson.loads(answer)["error"]
        assert (error["type"], error["code"]) == ("upstream_error", "upstream_error")
        assert headers["Content-Type"].startswith("application/json")
    record = await usage(http, proxy, headers["x-request-id"])
    assert (record["status"], record["cost_usd"]) == (status, "0.000000000")


# --- the body names the billed model ------------------------------------------------------


async def last_upstream_body(http: aiohttp.ClientSession, replay: ServerProcess) -> bytes:
    async with http.get(replay.url + "/_replay/requests") as resp:
        return base64.b64decode((await resp.json())[-1])


async def test_a_body_naming_two_models_goes_upstream_with_the_billed_one(
    http: aiohttp.ClientSession, proxy: ServerProcess, replay_upstream: ServerProcess
) -> None:
    # An upstream keeping the first key would serve gpt-4.1 billed as the cheap route.
    raw = b'{"model": "gpt-4.1", "model": "cheap", "messages": [{"role": "user", "content": "Hi"}]}'
    status, _, headers = await post(http, proxy, raw, **{"x-replay": "groq/chat-plain"})
    assert status == 200
    assert top_level_values(await last_upstream_body(http, replay_upstream), "model") == [
        "gpt-4.1-nano"
    ]
    record = await usage(http, proxy, headers["x-request-id"])
    assert (record["route"], record["model"]) == ("cheap", "gpt-4.1-nano")


async def test_a_rewritten_model_goes_upstream_once(
    http: aiohttp.ClientSession, proxy: ServerProcess, replay_upstream: ServerProcess
) -> None:
    body = {"model": "cheap", "messages": MESSAGES, "metadata": {"model": "ignored"}}
    await post(http, proxy, body, **{"x-replay": "groq/chat-plain"})
    sent = await last_upstream_body(http, replay_upstream)
    assert top_level_values(sent, "model") == ["gpt-4.1-nano"]
    assert orjson.loads(sent)["metadata"] == {"model": "ignored"}


async def test_a_body_with_one_model_and_nested_ones_goes_upstream_untouched(
    http: aiohttp.ClientSession, proxy: ServerProcess, replay_upstream: ServerProcess
) -> None:
    # A tool whose schema has a "model" property: two "model" strings, one top-level key.
    raw = (
        b'{"model":"same","messages":[{"role":"user","content":"Hi"}],"tools":[{"type":'
        b'"function","function":{"name":"pick","parameters":{"type":"object","properties":'
        b'{"model":{"type":"string"}}}}}]}'
    )
    assert (await post(http, proxy, raw, **{"x-replay": "groq/chat-plain"}))[0] == 200
    assert await last_upstream_body(http, replay_upstream) == raw


async def mismatches(http: aiohttp.ClientSession, proxy: ServerProcess, model: str) -> float:
    async with http.get(proxy.url + "/metrics") as resp:
        text = await resp.text()
    for line in text.splitlines():
        if line.startswith("costproxy_model_mismatch_total{") and f'model="{model}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.mark.parametrize(
    ("route", "name", "mismatch"),
    [
        ("gpt-5", "openai/chat-service-tier-priority", False),  # answered gpt-5-2025-08-07
        ("gpt-5-mini", "openai/chat-service-tier-priority", True),
        ("cheap", "openai/chat-stream-gpt-4.1-nano-service-tier", False),  # a snapshot of it
        ("gpt-4.1", "openai/chat-stream-gpt-4.1-nano-service-tier", True),
    ],
)
async def test_an_answer_naming_another_model_is_counted_and_logged(
    http: aiohttp.ClientSession, proxy: ServerProcess, route: str, name: str, mismatch: bool
) -> None:
    model = ROUTES[route]
    before = await mismatches(http, proxy, model)
    body = {"model": route, "messages": MESSAGES, "stream": recording(name).stream}
    status, _, headers = await post(http, proxy, body, **{"x-replay": name})
    assert status == 200
    await usage(http, proxy, headers["x-request-id"])  # settled: the counter is up to date
    assert await mismatches(http, proxy, model) == before + (1 if mismatch else 0)
    # The warning, not the request log's line (flushed every 0.1 s: there or not yet).
    logged = [
        line
        for line in proxy.logs().splitlines()
        if headers["x-request-id"] in line and not line.startswith('{"request_id"')
    ]
    assert bool(logged) == mismatch
    if mismatch:
        assert f"billed as {model!r}" in logged[0]
