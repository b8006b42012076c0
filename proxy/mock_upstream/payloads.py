"""Chat and legacy-completion bodies and SSE events, plus what every endpoint shares:
usage, reply text, prompt-token rule, models list and error bodies. OpenAI's wire format, pure.

The reply text is deterministic: `chunks` pieces " word0", " word1", ...; parts that only
depend on (model, chunks) are built once and cached, because the benchmark hammers them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from http import HTTPStatus
from typing import Any

import orjson

__all__ = [
    "FINGERPRINT",
    "MALFORMED_BODY",
    "MALFORMED_EVENT",
    "MODEL_NAMES",
    "NO_PARTS",
    "StreamPlan",
    "Usage",
    "UsageParts",
    "chat_completion",
    "chat_stream",
    "completion",
    "completion_stream",
    "error_body",
    "html_error_page",
    "models_list",
    "prompt_tokens",
    "reply_pieces",
    "reply_text",
]

FINGERPRINT = "fp_costproxy_mock"
MODEL_NAMES = ("gpt-4o-mini", "gpt-4o", "o3-mini", "text-embedding-3-small", "mock-nousage")
MALFORMED_BODY = b'{"id": "chatcmpl-broken", "choices": ['
MALFORMED_EVENT = b"data: " + MALFORMED_BODY + b"\n\n"


@dataclass(frozen=True, slots=True)
class UsageParts:
    """Parts of the totals beyond cache reads and reasoning: each is included in its total
    (prompt or completion tokens), as providers count them."""

    cache_write_5m: int = 0
    cache_write_1h: int = 0
    input_audio: int = 0
    input_image: int = 0
    output_audio: int = 0
    output_image: int = 0
    web_searches: int = 0  # not tokens: server-side searches billed per call

    @property
    def input(self) -> int:
        return self.cache_write_5m + self.cache_write_1h + self.input_audio + self.input_image

    @property
    def output(self) -> int:
        return self.output_audio + self.output_image


NO_PARTS = UsageParts()


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int  # includes reasoning_tokens, as OpenAI counts them
    reasoning_tokens: int
    parts: UsageParts = NO_PARTS

    def chat(self) -> dict[str, Any]:
        """OpenAI's shape; the parts as OpenAI-compatible providers report them: audio in
        `*_tokens_details.audio_tokens` (OpenAI), images in `image_tokens` and cache writes
        in `prompt_tokens_details.cache_write_tokens` (OpenRouter), the 1-hour share of
        writes in `cache_creation` and web searches in `server_tool_use` (Anthropic's
        names, as Anthropic-compatible gateways pass them on)."""
        p = self.parts
        prompt_details: dict[str, int] = {
            "cached_tokens": self.cached_tokens,
            "audio_tokens": p.input_audio,
        }
        completion_details = {
            "reasoning_tokens": self.reasoning_tokens,
            "audio_tokens": p.output_audio,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        }
        if p.input_image:
            prompt_details["image_tokens"] = p.input_image
        if p.output_image:
            completion_details["image_tokens"] = p.output_image
        writes = p.cache_write_5m + p.cache_write_1h
        if writes:
            prompt_details["cache_write_tokens"] = writes
        usage: dict[str, Any] = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "prompt_tokens_details": prompt_details,
            "completion_tokens_details": completion_details,
        }
        if p.cache_write_1h:
            usage["cache_creation"] = {
                "ephemeral_5m_input_tokens": p.cache_write_5m,
                "ephemeral_1h_input_tokens": p.cache_write_1h,
            }
        if p.web_searches:
            usage["server_tool_use"] = {"web_search_requests": p.web_searches}
        return usage

    def responses(self) -> dict[str, Any]:
        writes = self.parts.cache_write_5m + self.parts.cache_write_1h
        return {
            "input_tokens": self.prompt_tokens,
            "input_tokens_details": {
                "cached_tokens": self.cached_tokens,
                "cache_write_tokens": writes,
            },
            "output_tokens": self.completion_tokens,
            "output_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }


@dataclass(frozen=True, slots=True)
class StreamPlan:
    """SSE events to send: `pieces` carry the content (delays and faults apply between them)."""

    head: Sequence[bytes]
    pieces: Sequence[bytes]
    tail: Sequence[bytes]


def prompt_tokens(value: object) -> int:
    """Deterministic stand-in for tokenising: a quarter of the compact JSON length, rounded up."""
    return -(-len(orjson.dumps(value)) // 4)


@lru_cache(maxsize=64)
def reply_pieces(chunks: int) -> tuple[str, ...]:
    return tuple(f" word{i}" for i in range(chunks))


@lru_cache(maxsize=64)
def reply_text(chunks: int) -> str:
    return "".join(reply_pieces(chunks))


# --- chat and legacy completions -----------------------------------------------------
# Both share one body shape and one stream shape; they differ in `object` and in choices.

_DONE = b"data: [DONE]\n\n"


def _text_choice(text: str, finish_reason: str | None) -> dict[str, Any]:
    return {"text": text, "index": 0, "logprobs": None, "finish_reason": finish_reason}


def _chat_choice(delta: dict[str, Any], finish_reason: str | None) -> dict[str, Any]:
    return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}


@lru_cache(maxsize=64)
def _chat_choices(chunks: int) -> tuple[dict[str, Any], ...]:
    # Shared between requests: only ever serialised, never mutated.
    message = {"role": "assistant", "content": reply_text(chunks), "refusal": None}
    return ({"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"},)


def _body(
    cid: str,
    obj: str,
    created: int,
    model: str,
    choices: object,
    usage: Usage | None,
    service_tier: str = "default",
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": cid,
        "object": obj,
        "created": created,
        "model": model,
        "choices": choices,
        "service_tier": service_tier,
        "system_fingerprint": FINGERPRINT,
    }
    if usage is not None:
        body["usage"] = usage.chat()
    return body


def chat_completion(
    cid: str, created: int, model: str, chunks: int, usage: Usage | None, tier: str = "default"
) -> bytes:
    choices = _chat_choices(chunks)
    return orjson.dumps(_body(cid, "chat.completion", created, model, choices, usage, tier))


def completion(
    cid: str, created: int, model: str, chunks: int, usage: Usage | None, tier: str = "default"
) -> bytes:
    choices = [_text_choice(reply_text(chunks), "stop")]
    return orjson.dumps(_body(cid, "text_completion", created, model, choices, usage, tier))


def _event_tail(model: str, choice: dict[str, Any], usage_null: bool, tier: str) -> bytes:
    """An event's JSON after the per-request `{"id":..,"object":..,"created":..,` prefix."""
    rest = _body("", "", 0, model, [choice], None, tier)
    for per_request in ("id", "object", "created"):
        del rest[per_request]
    if usage_null:
        rest["usage"] = None
    return orjson.dumps(rest)[1:] + b"\n\n"


@lru_cache(maxsize=256)
def _chat_tails(model: str, chunks: int, usage_null: bool, tier: str) -> tuple[bytes, ...]:
    role = {"role": "assistant", "content": "", "refusal": None}
    choices = [_chat_choice(role, None)]
    choices += [_chat_choice({"content": piece}, None) for piece in reply_pieces(chunks)]
    choices.append(_chat_choice({}, "stop"))
    return tuple(_event_tail(model, choice, usage_null, tier) for choice in choices)


@lru_cache(maxsize=256)
def _completion_tails(model: str, chunks: int, usage_null: bool, tier: str) -> tuple[bytes, ...]:
    choices = [_text_choice(piece, None) for piece in reply_pieces(chunks)]
    choices.append(_text_choice("", "stop"))
    return tuple(_event_tail(model, choice, usage_null, tier) for choice in choices)


def _stream(
    cid: str,
    obj: str,
    created: int,
    model: str,
    tails: Sequence[bytes],
    usage: Usage | None,
    tier: str,
) -> StreamPlan:
    """Events `tails` behind this request's id prefix; the last is the finish chunk.

    `usage` goes in a final usage-only chunk (choices []), then [DONE].
    """
    prefix = f'data: {{"id":"{cid}","object":"{obj}","created":{created},'.encode()
    *events, finish = (prefix + tail for tail in tails)
    tail = [finish]
    if usage is not None:
        event = _body(cid, obj, created, model, [], usage, tier)
        tail.append(b"data: " + orjson.dumps(event) + b"\n\n")
    tail.append(_DONE)
    return StreamPlan(head=(), pieces=events, tail=tail)


def chat_stream(
    cid: str,
    created: int,
    model: str,
    chunks: int,
    usage: Usage | None,
    usage_null: bool,
    tier: str = "default",
) -> StreamPlan:
    """`usage` goes in a final usage-only chunk; `usage_null` adds "usage": null to the others."""
    tails = _chat_tails(model, chunks, usage_null, tier)
    plan = _stream(cid, "chat.completion.chunk", created, model, tails, usage, tier)
    # The role chunk comes before the content: delays and faults apply only after it.
    return StreamPlan(head=plan.pieces[:1], pieces=plan.pieces[1:], tail=plan.tail)


def completion_stream(
    cid: str,
    created: int,
    model: str,
    chunks: int,
    usage: Usage | None,
    usage_null: bool,
    tier: str = "default",
) -> StreamPlan:
    tails = _completion_tails(model, chunks, usage_null, tier)
    return _stream(cid, "text_completion", created, model, tails, usage, tier)


# --- models and errors ----------------------------------------------------------------


@lru_cache(maxsize=1)
def models_list() -> bytes:
    data = [
        {"id": name, "object": "model", "created": 1700000000, "owned_by": "costproxy-mock"}
        for name in MODEL_NAMES
    ]
    return orjson.dumps({"object": "list", "data": data})


# status -> (type, code, message), as OpenAI sends them for those statuses
_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Mock bad request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided (mock)."),
    403: ("permission_error", None, "You are not allowed to do that (mock)."),
    404: ("invalid_request_error", None, "The requested resource does not exist (mock)."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached (mock)."),
    500: ("server_error", None, "The server had an error while processing your request (mock)."),
    503: ("server_error", "engine_overloaded", "The engine is currently overloaded (mock)."),
}


def error_body(status: int, message: str | None = None, param: str | None = None) -> bytes:
    kind, code, default_message = _ERRORS.get(
        status,
        ("server_error", None, "Mock upstream error.")
        if status >= 500
        else ("invalid_request_error", None, "Mock client error."),
    )
    error = {"message": message or default_message, "type": kind, "param": param, "code": code}
    return orjson.dumps({"error": error})


def html_error_page(status: int) -> bytes:
    try:
        title = f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        title = str(status)
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"
    ).encode()
