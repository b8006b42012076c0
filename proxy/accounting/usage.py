"""Where usage is in upstream answers, and the text they deliver. Pure: no I/O.

Usage is read structurally: the top-level `usage` of a response body, of a stream chunk,
or of the response inside a Responses event (`response.completed`, `.failed`,
`.incomplete`); Groq's `x_groq.usage` where the top level has none. Never an object of
that name nested elsewhere (compound models' per-model breakdowns, echoed metadata).
What the object means is `usage_shapes`' business.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from proxy.accounting.json_fields import head_string, tail_fields
from proxy.accounting.records import Usage
from proxy.accounting.usage_shapes import normalise_usage

__all__ = [
    "Normaliser",
    "Reading",
    "completion_text",
    "delta_text",
    "event_reading",
    "find_usage",
    "parsed_reading",
]

# How far before `usage` the other top-level fields are looked for, and how far into the
# body the model is (OpenAI puts it among the first fields; others just before usage).
_FIELDS_WINDOW = 64 * 1024
_MODEL_HEAD = 8 * 1024
# Below this size orjson parses the whole body faster than the fields can be located
# (~1.4 µs for a typical 600-byte chat answer).
_PARSE_WHOLE_BELOW = 4 * 1024


@dataclass(frozen=True, slots=True)
class Reading:
    """What an answer says about its billing: its usage (None: none usable) and the
    model that answered (None: not said)."""

    usage: Usage | None
    model: str | None = None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


# A usage object (with the endpoint and the response's service_tier) → Usage, or None.
Normaliser = Callable[[Any, str, Any], Usage | None]


def _fields_reading(fields: dict[str, Any], endpoint: str, normalise: Normaliser) -> Reading:
    usage = fields.get("usage")
    if usage is None:
        groq = fields.get("x_groq")  # Groq streams without include_usage put it only here
        if isinstance(groq, dict):
            usage = groq.get("usage")
    return Reading(
        normalise(usage, endpoint, fields.get("service_tier")), _text(fields.get("model"))
    )


def parsed_reading(data: Any, endpoint: str, normalise: Normaliser = normalise_usage) -> Reading:
    """The reading of a whole parsed response body (`normalise`: how its API counts)."""
    return _fields_reading(data, endpoint, normalise) if isinstance(data, dict) else Reading(None)


def find_usage(body: bytes, endpoint: str, normalise: Normaliser = normalise_usage) -> Reading:
    """The reading of a non-streaming response body, parsing as little of it as possible:
    the tail from its top-level `usage` on, the few fields around it; the whole body only
    when it is small, or when no top-level `usage` can be told apart cheaply.
    `normalise` reads the usage object as its API counts (OpenAI's shapes by default)."""
    if len(body) < _PARSE_WHOLE_BELOW:
        try:
            return parsed_reading(orjson.loads(body), endpoint, normalise)
        except orjson.JSONDecodeError:
            return Reading(None)
    found = tail_fields(body, "usage")
    if found is None or found[1]["usage"] is None:
        if b'"usage"' not in body and b'"x_groq"' not in body:
            return Reading(None, head_string(body, "model", limit=_MODEL_HEAD))
        try:
            return parsed_reading(orjson.loads(body), endpoint, normalise)
        except orjson.JSONDecodeError:
            return Reading(None)
    at, fields = found
    for name in ("service_tier", "model"):
        if name not in fields:
            before = tail_fields(body, name, end=at, window=_FIELDS_WINDOW)
            if before is not None:
                fields[name] = before[1][name]
    if not isinstance(fields.get("model"), str):
        fields["model"] = head_string(body, "model", limit=_MODEL_HEAD)
    return _fields_reading(fields, endpoint, normalise)


def event_reading(event: dict[str, Any], endpoint: str) -> Reading:
    """The reading of one parsed stream event: a chat/completions chunk, or a Responses
    event carrying the response (created, completed, failed, incomplete)."""
    response = event.get("response")
    if isinstance(response, dict) and "usage" not in event:
        return _fields_reading(response, endpoint, normalise_usage)
    return _fields_reading(event, endpoint, normalise_usage)


# Text fields of a chat message or delta that the model generated (billed as output):
# the answer, reasoning under both names providers use, a refusal.
_MESSAGE_TEXT = ("content", "reasoning_content", "reasoning", "refusal")


def _function_text(function: Any, out: list[str]) -> None:
    if isinstance(function, dict):
        for field in ("name", "arguments"):
            value = function.get(field)
            if isinstance(value, str):
                out.append(value)


def _message_text(message: dict[str, Any], out: list[str]) -> None:
    for field in _MESSAGE_TEXT:
        value = message.get(field)
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, list):  # content as parts
            out.extend(p["text"] for p in value if isinstance(p, dict) and _text(p.get("text")))
    for call in message.get("tool_calls") or ():
        if isinstance(call, dict):
            _function_text(call.get("function"), out)
    _function_text(message.get("function_call"), out)
    audio = message.get("audio")
    if isinstance(audio, dict) and isinstance(audio.get("transcript"), str):
        out.append(audio["transcript"])


def _text_of_choices(choices: Any, part: str) -> list[str]:
    out: list[str] = []
    if not isinstance(choices, list):
        return out
    for choice in choices:
        if not isinstance(choice, dict):
            continue
        if part == "text":
            text = choice.get("text")
            if isinstance(text, str):
                out.append(text)
            continue
        message = choice.get(part)
        if isinstance(message, dict):
            _message_text(message, out)
    return out


def _is_text_delta(kind: str) -> bool:
    # Every Responses `*.delta` carries generated text (answer, reasoning, refusal, tool
    # arguments, code) except audio, whose delta is base64 sound (its transcript is text).
    return kind.endswith(".delta") and ("audio" not in kind or "transcript" in kind)


def delta_text(endpoint: str, event: Any) -> str:
    """The generated text one streamed event delivers to the client."""
    if not isinstance(event, dict):
        return ""
    if endpoint == "responses":
        kind = event.get("type", "")
        if isinstance(kind, str) and _is_text_delta(kind):
            delta = event.get("delta")
            return delta if isinstance(delta, str) else ""
        return ""
    part = "text" if endpoint == "completions" else "delta"
    return "".join(_text_of_choices(event.get("choices"), part))


def _output_item_text(item: dict[str, Any], out: list[str]) -> None:
    if isinstance(item.get("arguments"), str):
        out.append(item["arguments"])
    for key in ("content", "summary"):  # messages; reasoning items' text and summary
        for content in item.get(key) or ():
            if isinstance(content, dict) and isinstance(content.get("text"), str):
                out.append(content["text"])


def completion_text(endpoint: str, body: Any) -> str:
    """The generated text of a whole non-streaming response (for estimating its tokens)."""
    if not isinstance(body, dict):
        return ""
    if endpoint == "responses":
        pieces: list[str] = []
        for item in body.get("output") or ():
            if isinstance(item, dict):
                _output_item_text(item, pieces)
        return "".join(pieces)
    if endpoint == "embeddings":
        return ""
    part = "text" if endpoint == "completions" else "message"
    return "".join(_text_of_choices(body.get("choices"), part))
