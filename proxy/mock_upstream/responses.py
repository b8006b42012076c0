"""Bodies and the SSE event sequence of the Responses API (`POST /v1/responses`), pure."""

from __future__ import annotations

from typing import Any

import orjson

from proxy.mock_upstream.payloads import StreamPlan, Usage, reply_pieces, reply_text

__all__ = ["response_object", "responses_stream"]


def _message_item(mid: str, text: str | None) -> dict[str, Any]:
    """The assistant message output item; `text=None` means still in progress and empty."""
    content = [] if text is None else [_output_text(text)]
    status = "in_progress" if text is None else "completed"
    return {"id": mid, "type": "message", "status": status, "role": "assistant", "content": content}


def _output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def response_object(
    rid: str,
    mid: str,
    created: int,
    model: str,
    chunks: int | None,
    usage: Usage | None,
    tier: str = "default",
) -> dict[str, Any]:
    """A Response; `chunks=None` gives the in-progress shape used by the opening events."""
    done = chunks is not None
    return {
        "id": rid,
        "object": "response",
        "created_at": created,
        "status": "completed" if done else "in_progress",
        "completed_at": created if done else None,
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "max_output_tokens": None,
        "model": model,
        "output": [_message_item(mid, reply_text(chunks))] if done else [],
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "service_tier": tier,
        "store": False,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": usage.responses() if done and usage is not None else None,
        "user": None,
        "metadata": {},
    }


def responses_stream(
    rid: str,
    mid: str,
    created: int,
    model: str,
    chunks: int,
    usage: Usage | None,
    tier: str = "default",
) -> StreamPlan:
    """The Responses event sequence, each with `event:` line and a running `sequence_number`."""
    text = reply_text(chunks)
    at = {"item_id": mid, "output_index": 0, "content_index": 0}
    opening = response_object(rid, mid, created, model, None, None, tier)
    head: list[dict[str, Any]] = [
        {"type": "response.created", "response": opening},
        {"type": "response.in_progress", "response": opening},
        {"type": "response.output_item.added", "output_index": 0, "item": _message_item(mid, None)},
        {"type": "response.content_part.added", **at, "part": _output_text("")},
    ]
    pieces: list[dict[str, Any]] = [
        {"type": "response.output_text.delta", **at, "delta": piece, "logprobs": []}
        for piece in reply_pieces(chunks)
    ]
    tail: list[dict[str, Any]] = [
        {"type": "response.output_text.done", **at, "text": text, "logprobs": []},
        {"type": "response.content_part.done", **at, "part": _output_text(text)},
        {"type": "response.output_item.done", "output_index": 0, "item": _message_item(mid, text)},
        {
            "type": "response.completed",
            "response": response_object(rid, mid, created, model, chunks, usage, tier),
        },
    ]
    events = [*head, *pieces, *tail]
    encoded = [_named_event(number, event) for number, event in enumerate(events)]
    return StreamPlan(encoded[: len(head)], encoded[len(head) : -len(tail)], encoded[-len(tail) :])


def _named_event(sequence_number: int, event: dict[str, Any]) -> bytes:
    event["sequence_number"] = sequence_number
    return b"event: " + event["type"].encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"
