"""The fake upstream's aiohttp application: routes, request recording, streaming and faults."""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, NamedTuple

import orjson
from aiohttp import web
from multidict import CIMultiDictProxy

from proxy.mock_upstream import embeddings, messages, payloads, responses
from proxy.mock_upstream.options import (
    Behaviour,
    MockOptions,
    MockRequestError,
    resolve_behaviour,
)

__all__ = ["RECORDED_REQUESTS", "STREAMS", "RecordedRequest", "StreamOutcome", "create_app"]

_RECORD_LIMIT = 100
_MAX_DIMENSIONS = 4096
_JSON = {"Content-Type": "application/json"}
_SSE = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
# What api.openai.com sends with every API answer besides its content headers: the
# organisation and project the key belongs to, their rate limits, timing and a request
# id; and an open CORS policy, as some OpenAI-compatible providers send. None of it but
# the request id describes the answer to a proxy's client.
_ORGANISATION_HEADERS = {
    "openai-organization": "org-mock-organisation",
    "openai-project": "proj_mock_project",
    "openai-version": "2020-10-01",
    "openai-processing-ms": "12",
    "x-ratelimit-limit-requests": "10000",
    "x-ratelimit-limit-tokens": "30000000",
    "x-ratelimit-remaining-requests": "9999",
    "x-ratelimit-remaining-tokens": "29999000",
    "x-ratelimit-reset-requests": "6ms",
    "x-ratelimit-reset-tokens": "2ms",
    "access-control-allow-origin": "*",
}
# And what api.anthropic.com sends: the organisation, its rate limits.
_ANTHROPIC_ORGANISATION_HEADERS = {
    "anthropic-organization-id": "mock-organisation-uuid",
    "anthropic-ratelimit-requests-limit": "4000",
    "anthropic-ratelimit-requests-remaining": "3999",
    "anthropic-ratelimit-requests-reset": "2026-12-01T00:00:01Z",
    "anthropic-ratelimit-tokens-limit": "400000",
    "anthropic-ratelimit-tokens-remaining": "399000",
    "anthropic-ratelimit-tokens-reset": "2026-12-01T00:00:01Z",
}
_ANTHROPIC_SSE = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
_CACHE_LIMIT = 10_000


class RecordedRequest(NamedTuple):
    method: str
    path: str
    headers: CIMultiDictProxy[str]
    body: bytes

    def as_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            # str(): header names are multidict's istr, which orjson refuses as keys.
            "headers": {str(name): value for name, value in self.headers.items()},
            "body": self.body.decode("utf-8", "replace"),
        }


class StreamOutcome(NamedTuple):
    """How a stream ended on the fake upstream's side, and when (time.time())."""

    outcome: str  # "open", "complete", "aborted" (by the fake) or "client_gone"
    ended_at: float | None = None


RECORDED_REQUESTS = web.AppKey("mock_recorded_requests", deque[RecordedRequest])
# Stream id (the id of its events) -> outcome; the last _RECORD_LIMIT streams.
STREAMS = web.AppKey("mock_streams", dict[str, StreamOutcome])
_BASE = web.AppKey("mock_base_behaviour", Behaviour)
_IDS: web.AppKey[Iterator[int]] = web.AppKey("mock_ids")
# Messages API prompt cache: prefixes written so far (see messages.cache_plan), oldest first.
_PROMPT_CACHE = web.AppKey("mock_prompt_cache", dict[bytes, None])

Payload = dict[str, Any]
Builder = Callable[[web.Request, Payload, Behaviour], Awaitable[web.StreamResponse]]
ErrorBody = Callable[[int, str | None, str | None], bytes]


def create_app(options: MockOptions | None = None) -> web.Application:
    app = web.Application()
    app[_BASE] = Behaviour.from_options(options or MockOptions())
    app[RECORDED_REQUESTS] = deque(maxlen=_RECORD_LIMIT)
    app[STREAMS] = {}
    app[_IDS] = itertools.count(1)
    app[_PROMPT_CACHE] = {}
    app.router.add_post("/v1/chat/completions", _endpoint(_chat))
    app.router.add_post("/v1/completions", _endpoint(_completions))
    app.router.add_post("/v1/embeddings", _endpoint(_embeddings))
    app.router.add_post("/v1/responses", _endpoint(_responses))
    # Azure OpenAI's addressing: a deployment per model in the path, `?api-version=`.
    deployment = "/openai/deployments/{deployment}"
    app.router.add_post(deployment + "/chat/completions", _endpoint(_chat))
    app.router.add_post(deployment + "/completions", _endpoint(_completions))
    app.router.add_post(deployment + "/embeddings", _endpoint(_embeddings))
    app.router.add_post("/openai/responses", _endpoint(_responses))
    # Anthropic's Messages API, at the API root (its base URL has no /v1).
    app.router.add_post("/v1/messages", _endpoint(_messages, messages.error_body))
    app.router.add_post("/v1/messages/count_tokens", _endpoint(_count_tokens, messages.error_body))
    app.router.add_get("/v1/models", _models)
    app.router.add_get("/_mock/requests", _list_recorded)
    app.router.add_delete("/_mock/requests", _clear_recorded)
    app.router.add_get("/_mock/streams/{stream_id}", _stream_outcome)
    app.router.add_route("*", "/{tail:.*}", _not_found)
    app.on_response_prepare.append(_provider_headers)
    return app


async def _provider_headers(request: web.Request, response: web.StreamResponse) -> None:
    if request.path.startswith("/_mock/"):
        return
    if request.path.startswith("/v1/messages"):  # Anthropic's (its request-id is set above)
        response.headers.update(_ANTHROPIC_ORGANISATION_HEADERS)
        return
    response.headers.update(_ORGANISATION_HEADERS)
    response.headers["x-request-id"] = "req_mock" + os.urandom(8).hex()


def _json(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=body, status=status, headers=headers or _JSON)


def _bad_request(error: MockRequestError, error_body: ErrorBody) -> web.Response:
    return _json(error_body(400, str(error), error.param), status=400)


def _record(request: web.Request, body: bytes) -> None:
    # Cheap on purpose: the headers proxy is immutable, so keep it and convert on demand.
    request.app[RECORDED_REQUESTS].append(
        RecordedRequest(request.method, request.path_qs, request.headers, body)
    )


def _endpoint(
    build: Builder, error_body: ErrorBody = payloads.error_body
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Wraps a reply builder with what every POST endpoint shares: recording, parsing,
    per-request behaviour, latency, forced errors (in `error_body`'s shape: OpenAI's or
    Anthropic's) and malformed bodies."""

    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        _record(request, body)
        try:
            payload = _parse(body)
            behaviour = resolve_behaviour(request.app[_BASE], request.headers, payload["model"])
        except MockRequestError as error:
            return _bad_request(error, error_body)
        if behaviour.latency_s:
            await asyncio.sleep(behaviour.latency_s)
        if behaviour.status is not None:
            return _forced_error(behaviour.status, behaviour.html_error, error_body)
        if behaviour.malformed and not payload.get("stream"):
            return _json(payloads.MALFORMED_BODY)
        try:
            return await build(request, payload, behaviour)
        except MockRequestError as error:
            return _bad_request(error, error_body)

    return handle


def _parse(body: bytes) -> Payload:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise MockRequestError("We could not parse the JSON body of your request.") from None
    if not isinstance(payload, dict):
        raise MockRequestError("The request body must be a JSON object.")
    if not isinstance(payload.get("model"), str):
        raise MockRequestError("you must provide a model parameter", "model")
    try:
        orjson.dumps(payload)  # as OpenAI does, refuse what is nested too deeply
    except orjson.JSONEncodeError:
        raise MockRequestError("The JSON body is nested too deeply.") from None
    return payload


def _forced_error(status: int, html: bool, error_body: ErrorBody) -> web.Response:
    headers = {"Retry-After": "1"} if status == 429 else {}
    if html:
        headers["Content-Type"] = "text/html"
        return web.Response(body=payloads.html_error_page(status), status=status, headers=headers)
    return _json(error_body(status, None, None), status=status, headers=_JSON | headers)


def _ids(request: web.Request, b: Behaviour) -> tuple[int, int]:
    if b.fixed_ids:
        return 0, 1_700_000_000
    ids = request.app[_IDS]
    return next(ids), int(time.time())


def _include_usage(payload: Payload) -> bool:
    options = payload.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


class _TextKind(NamedTuple):
    """Chat and legacy completions: same flow, different id prefix and shapes."""

    id_prefix: str
    body: Callable[[str, int, str, int, payloads.Usage | None, str], bytes]
    stream: Callable[[str, int, str, int, payloads.Usage | None, bool, str], payloads.StreamPlan]


_CHAT = _TextKind("chatcmpl-mock", payloads.chat_completion, payloads.chat_stream)
_COMPLETION = _TextKind("cmpl-mock", payloads.completion, payloads.completion_stream)


async def _chat(request: web.Request, payload: Payload, b: Behaviour) -> web.StreamResponse:
    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages:
        raise MockRequestError("messages must be a non-empty array", "messages")
    return await _text_reply(request, payload, b, _CHAT, messages)


async def _completions(request: web.Request, payload: Payload, b: Behaviour) -> web.StreamResponse:
    return await _text_reply(request, payload, b, _COMPLETION, payload.get("prompt"))


async def _text_reply(
    request: web.Request, payload: Payload, b: Behaviour, kind: _TextKind, prompt: object
) -> web.StreamResponse:
    usage = b.usage(payloads.prompt_tokens(prompt))
    number, created = _ids(request, b)
    cid, model = f"{kind.id_prefix}{number}", payload["model"]
    tier = b.tier(payload)
    if not payload.get("stream"):
        return _json(kind.body(cid, created, model, b.chunks, usage, tier))
    # Streams carry usage only when asked for, as OpenAI's do.
    usage = usage if _include_usage(payload) else None
    plan = kind.stream(cid, created, model, b.chunks, usage, usage is not None, tier)
    return await _send_stream(request, b, plan, cid)


async def _responses(request: web.Request, payload: Payload, b: Behaviour) -> web.StreamResponse:
    usage = b.usage(payloads.prompt_tokens(payload.get("input")))
    number, created = _ids(request, b)
    rid, mid, model = f"resp_mock{number}", f"msg_mock{number}", payload["model"]
    tier = b.tier(payload)
    if payload.get("stream"):
        plan = responses.responses_stream(rid, mid, created, model, b.chunks, usage, tier)
        return await _send_stream(request, b, plan, rid)
    body = responses.response_object(rid, mid, created, model, b.chunks, usage, tier)
    return _json(orjson.dumps(body))


async def _embeddings(request: web.Request, payload: Payload, b: Behaviour) -> web.StreamResponse:
    try:
        items = embeddings.embedding_items(payload.get("input"))
    except ValueError as error:
        raise MockRequestError(str(error), "input") from None
    dimensions = payload.get("dimensions", 8)
    if not isinstance(dimensions, int) or not 1 <= dimensions <= _MAX_DIMENSIONS:
        raise MockRequestError(f"dimensions must be 1-{_MAX_DIMENSIONS}", "dimensions")
    usage = b.usage(payloads.prompt_tokens(payload["input"]))
    as_base64 = payload.get("encoding_format") == "base64"
    return _json(embeddings.embeddings(payload["model"], items, dimensions, as_base64, usage))


def _offers_web_search(payload: Payload) -> bool:
    tools = payload.get("tools")
    return isinstance(tools, list) and any(
        isinstance(t, dict) and str(t.get("type", "")).startswith("web_search") for t in tools
    )


def _called_tool(payload: Payload) -> str | None:
    """The tool the answer calls: the one `tool_choice` names, or the first custom tool
    when it requires one (`any`); otherwise none."""
    choice, tools = payload.get("tool_choice"), payload.get("tools")
    if not isinstance(choice, dict) or not isinstance(tools, list):
        return None
    if choice.get("type") == "tool" and isinstance(choice.get("name"), str):
        return choice["name"]
    if choice.get("type") == "any":
        names = [t["name"] for t in tools if isinstance(t, dict) and isinstance(t.get("name"), str)]
        return names[0] if names else None
    return None


def _cached(request: web.Request, plan: messages.CachePlan | None) -> tuple[int, int, int]:
    """(read, 5m write, 1h write) tokens of the request's cacheable prefix: written the
    first time it is seen, read from then on (no expiry: tests run well within a TTL)."""
    if plan is None:
        return 0, 0, 0
    cache = request.app[_PROMPT_CACHE]
    if plan.key in cache:
        return plan.tokens, 0, 0
    if len(cache) >= _CACHE_LIMIT:
        del cache[next(iter(cache))]
    cache[plan.key] = None
    return (0, plan.tokens, 0) if plan.ttl == "5m" else (0, 0, plan.tokens)


def _check_messages(payload: Payload) -> list[Any]:
    content = payload.get("messages")
    if not isinstance(content, list) or not content:
        raise MockRequestError("Field required", "messages")
    return content


async def _messages(request: web.Request, payload: Payload, b: Behaviour) -> web.StreamResponse:
    _check_messages(payload)
    max_tokens = payload.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise MockRequestError("Field required", "max_tokens")
    number, _ = _ids(request, b)
    searches = b.parts.web_searches or (1 if _offers_web_search(payload) else 0)
    read, write_5m, write_1h = _cached(request, messages.cache_plan(payload))
    base = b.usage(payloads.prompt_tokens(messages.prompt_of(payload)))
    usage = None
    if base is not None:
        if b.forced_usage is not None:  # forced counts are the whole story
            read = write_5m = write_1h = 0
        tier = b.service_tier or "standard"
        usage = messages.message_usage(
            base, read=read, write_5m=write_5m, write_1h=write_1h, searches=searches, tier=tier
        )
    reply = messages.MessageReply(
        mid=f"msg_mock{number}",
        model=payload["model"],
        chunks=b.chunks,
        usage=usage,
        tool=_called_tool(payload),
        searches=searches,
    )
    request_id = {"request-id": f"req_mock{number}"}
    if payload.get("stream"):
        plan = messages.message_stream(reply, b.stream_error)
        return await _send_stream(request, b, plan, reply.mid, _ANTHROPIC_SSE | request_id)
    return _json(messages.message_body(reply), headers=_JSON | request_id)


async def _count_tokens(request: web.Request, payload: Payload, b: Behaviour) -> web.Response:
    _check_messages(payload)
    number, _ = _ids(request, b)
    headers = _JSON | {"request-id": f"req_mock{number}"}
    return _json(messages.count_tokens_body(payload), headers=headers)


async def _send_stream(
    request: web.Request,
    b: Behaviour,
    plan: payloads.StreamPlan,
    stream_id: str,
    headers: dict[str, str] = _SSE,
) -> web.StreamResponse:
    streams = request.app[STREAMS]
    if len(streams) >= _RECORD_LIMIT:
        del streams[next(iter(streams))]
    streams[stream_id] = StreamOutcome("open")
    response = web.StreamResponse(headers=headers)
    try:
        await response.prepare(request)
        outcome = await _write_events(request, response, b, plan)
    except ConnectionError:
        # The client (usually the proxy cancelling a stream) went away: routine for a
        # fake upstream, so not worth aiohttp's "Error handling request" traceback.
        outcome = "client_gone"
    streams[stream_id] = StreamOutcome(outcome, time.time())
    return response


async def _write_events(
    request: web.Request, response: web.StreamResponse, b: Behaviour, plan: payloads.StreamPlan
) -> str:
    # One write per event and no buffering of our own: aiohttp hands each write to the
    # transport at once, which is what lets tests observe time-to-first-token.
    for event in plan.head:
        await response.write(event)
    for index, event in enumerate(plan.pieces):
        if index == b.fail_after:
            _abort(request)
            return "aborted"
        if b.chunk_delay_s:
            await _pause(request, b.chunk_delay_s)
        if index == b.truncate_after:
            # A well-formed end of the HTTP body in the middle of an event.
            await response.write(event[: len(event) // 2])
            await response.write_eof()
            return "aborted"
        await response.write(payloads.MALFORMED_EVENT if b.malformed and index == 0 else event)
    if b.fail_after is not None and b.fail_after >= len(plan.pieces):
        _abort(request)
        return "aborted"
    for event in plan.tail:
        await response.write(event)
    await response.write_eof()
    return "complete"


async def _pause(request: web.Request, seconds: float) -> None:
    """Sleep, but notice within 10 ms when the client hangs up (tests time that)."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        transport = request.transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("the client closed the connection")
        await asyncio.sleep(min(left, 0.01))


def _abort(request: web.Request) -> None:
    """Drop the connection mid-body, as a crashing upstream does: no terminating chunk.

    aiohttp then fails its own write_eof() with a ConnectionError, which it treats as
    a client disconnect: nothing is logged.
    """
    if request.transport is not None:
        request.transport.close()


async def _models(request: web.Request) -> web.Response:
    _record(request, b"")
    return _json(payloads.models_list())


async def _list_recorded(request: web.Request) -> web.Response:
    recorded = [entry.as_json() for entry in request.app[RECORDED_REQUESTS]]
    return _json(orjson.dumps(recorded))


async def _stream_outcome(request: web.Request) -> web.Response:
    outcome = request.app[STREAMS].get(request.match_info["stream_id"])
    if outcome is None:
        return _json(payloads.error_body(404, "no such stream"), status=404)
    return _json(orjson.dumps(outcome._asdict()))


async def _clear_recorded(request: web.Request) -> web.Response:
    request.app[RECORDED_REQUESTS].clear()
    return web.Response(status=204)


async def _not_found(request: web.Request) -> web.Response:
    _record(request, await request.read())
    message = f"Invalid URL ({request.method} {request.path}) (mock upstream)"
    return _json(payloads.error_body(404, message), status=404)
