"""Anthropic's Messages API as the fake upstream answers it: bodies, the SSE event
sequence, count_tokens and error bodies, in Anthropic's wire format. Pure.

Usage is Anthropic's: `input_tokens` excludes the cache, reads and writes are counted
apart (`cache_read_input_tokens`, `cache_creation_input_tokens` with its 5m/1h split),
and server-side web searches in `server_tool_use`. What is cached follows the request's
`cache_control` blocks (see `CachePlan`), plus whatever `x-mock-*` headers force.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from proxy.mock_upstream.payloads import StreamPlan, Usage, prompt_tokens, reply_pieces, reply_text

__all__ = [
    "CachePlan",
    "MessageReply",
    "cache_plan",
    "count_tokens_body",
    "error_body",
    "message_body",
    "message_stream",
    "message_usage",
    "prompt_of",
]

# Anthropic's error types by status (docs: API errors).
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def error_body(status: int, message: str | None = None, param: str | None = None) -> bytes:
    kind = _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    text = message or f"Mock {kind.replace('_', ' ')}."
    if param and message:
        text = f"{param}: {message}"
    return orjson.dumps({"type": "error", "error": {"type": kind, "message": text}})


def error_event(kind: str) -> bytes:
    body = {"type": "error", "error": {"type": kind, "message": f"Mock {kind} mid-stream."}}
    return b"event: error\ndata: " + orjson.dumps(body) + b"\n\n"


def prompt_of(payload: Mapping[str, Any]) -> dict[str, Any]:
    """What the prompt-token rule counts: tools, system and messages (the cache order)."""
    return {k: payload[k] for k in ("tools", "system", "messages") if k in payload}


def count_tokens_body(payload: Mapping[str, Any]) -> bytes:
    return orjson.dumps({"input_tokens": prompt_tokens(prompt_of(payload))})


# --- the prompt cache ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CachePlan:
    """The cacheable prefix of a request: up to its last `cache_control` block."""

    key: bytes  # model and prefix, as the cache tells prefixes apart
    tokens: int
    ttl: str  # "5m" or "1h"


def _blocks(payload: Mapping[str, Any]) -> list[Any]:
    """Every block in the order Anthropic caches them: tools, system, messages."""
    blocks: list[Any] = list(payload.get("tools") or ())
    system = payload.get("system")
    if isinstance(system, list):
        blocks.extend(system)
    for message in payload.get("messages") or ():
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            blocks.extend(content)
    return blocks


def cache_plan(payload: Mapping[str, Any]) -> CachePlan | None:
    """None when the request marks nothing for caching."""
    blocks = _blocks(payload)
    marked = [i for i, b in enumerate(blocks) if isinstance(b, dict) and b.get("cache_control")]
    if not marked:
        return None
    last = marked[-1]
    prefix = blocks[: last + 1]
    control = blocks[last]["cache_control"]
    ttl = control.get("ttl", "5m") if isinstance(control, dict) else "5m"
    key = orjson.dumps([payload.get("model"), prefix])
    return CachePlan(key, prompt_tokens(prefix), "1h" if ttl == "1h" else "5m")


# --- usage --------------------------------------------------------------------------------


def message_usage(
    usage: Usage,
    *,
    read: int = 0,
    write_5m: int = 0,
    write_1h: int = 0,
    searches: int = 0,
    tier: str = "standard",
) -> dict[str, Any]:
    """Anthropic's usage object for `usage` (OpenAI's meaning: the prompt holds the cache),
    with cache reads and writes (by lifetime) besides those `usage` carries."""
    parts = usage.parts
    writes_5m = parts.cache_write_5m + write_5m
    writes_1h = parts.cache_write_1h + write_1h
    writes = min(writes_5m + writes_1h, usage.prompt_tokens)
    reads = min(usage.cached_tokens + read, usage.prompt_tokens - writes)
    out: dict[str, Any] = {
        "input_tokens": usage.prompt_tokens - reads - writes,
        "cache_creation_input_tokens": writes,
        "cache_read_input_tokens": reads,
        "cache_creation": {
            "ephemeral_5m_input_tokens": writes - min(writes_1h, writes),
            "ephemeral_1h_input_tokens": min(writes_1h, writes),
        },
        "output_tokens": usage.completion_tokens,
        "service_tier": tier,
    }
    if searches:
        out["server_tool_use"] = {"web_search_requests": searches, "web_fetch_requests": 0}
    return out


# --- answers ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MessageReply:
    """What one answer holds besides its text."""

    mid: str
    model: str
    chunks: int
    usage: dict[str, Any] | None  # Anthropic's usage object; None: the answer carries none
    tool: str | None = None  # a tool the answer calls (tool_choice named or required it)
    searches: int = 0  # web searches run (a web_search server tool was offered)


def _search_blocks(reply: MessageReply) -> list[dict[str, Any]]:
    if not reply.searches:
        return []
    call_id = f"srvtoolu_{reply.mid}"
    result = {
        "type": "web_search_result",
        "url": "https://example.com/mock",
        "title": "Mock result",
        "encrypted_content": "bW9jaw==",
        "page_age": None,
    }
    return [
        {
            "type": "server_tool_use",
            "id": call_id,
            "name": "web_search",
            "input": {"query": "mock query"},
        },
        {"type": "web_search_tool_result", "tool_use_id": call_id, "content": [result]},
    ]


def _tool_block(reply: MessageReply, name: str) -> dict[str, Any]:
    return {"type": "tool_use", "id": f"toolu_{reply.mid}", "name": name, "input": {}}


def _stop_reason(reply: MessageReply) -> str:
    return "tool_use" if reply.tool else "end_turn"


def message_body(reply: MessageReply) -> bytes:
    content = [*_search_blocks(reply), {"type": "text", "text": reply_text(reply.chunks)}]
    if reply.tool:
        content.append(_tool_block(reply, reply.tool))
    body: dict[str, Any] = {
        "id": reply.mid,
        "type": "message",
        "role": "assistant",
        "model": reply.model,
        "content": content,
        "stop_reason": _stop_reason(reply),
        "stop_sequence": None,
    }
    if reply.usage is not None:
        body["usage"] = reply.usage
    return orjson.dumps(body)


def _event(event: dict[str, Any]) -> bytes:
    return b"event: " + event["type"].encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"


def _block_events(index: int, block: dict[str, Any]) -> list[dict[str, Any]]:
    """A whole block as a stream sends it: start (empty), one delta, stop."""
    events: list[dict[str, Any]] = []
    if block["type"] in ("tool_use", "server_tool_use"):
        start = {**block, "input": {}}
        partial = orjson.dumps(block["input"]).decode()
        delta = {"type": "input_json_delta", "partial_json": partial}
        events = [{"type": "content_block_delta", "index": index, "delta": delta}]
    else:
        start = block
    return [
        {"type": "content_block_start", "index": index, "content_block": start},
        *events,
        {"type": "content_block_stop", "index": index},
    ]


def message_stream(reply: MessageReply, stream_error: str | None = None) -> StreamPlan:
    """The Messages event sequence: message_start (the input counts, a provisional output
    count), blocks, ping, the text deltas (the pieces faults apply to), message_delta
    (cumulative counts), message_stop; or, with `stream_error`, an `error` event in place
    of the end."""
    opening: dict[str, Any] = {
        "id": reply.mid,
        "type": "message",
        "role": "assistant",
        "model": reply.model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
    }
    if reply.usage is not None:
        opening["usage"] = {**reply.usage, "output_tokens": 1}
        opening["usage"].pop("server_tool_use", None)
    head: list[dict[str, Any]] = [{"type": "message_start", "message": opening}]
    searches = _search_blocks(reply)
    for index, block in enumerate(searches):
        head.extend(_block_events(index, block))
    text_index = len(searches)
    head.append(
        {
            "type": "content_block_start",
            "index": text_index,
            "content_block": {"type": "text", "text": ""},
        }
    )
    head.append({"type": "ping"})
    pieces = [
        {
            "type": "content_block_delta",
            "index": text_index,
            "delta": {"type": "text_delta", "text": p},
        }
        for p in reply_pieces(reply.chunks)
    ]
    tail: list[dict[str, Any]] = [{"type": "content_block_stop", "index": text_index}]
    if reply.tool:
        tail.extend(_block_events(text_index + 1, _tool_block(reply, reply.tool)))
    end: dict[str, Any] = {
        "type": "message_delta",
        "delta": {"stop_reason": _stop_reason(reply), "stop_sequence": None},
    }
    if reply.usage is not None:
        end["usage"] = {
            k: v for k, v in reply.usage.items() if k not in ("cache_creation", "service_tier")
        }
    tail += [end, {"type": "message_stop"}]
    encoded_tail = [_event(e) for e in tail]
    if stream_error is not None:
        encoded_tail = [error_event(stream_error)]
    return StreamPlan([_event(e) for e in head], [_event(e) for e in pieces], encoded_tail)
