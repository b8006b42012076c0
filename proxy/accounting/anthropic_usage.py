"""Anthropic's Messages API usage, as what Anthropic bills, in the usage record's terms.
Pure: no I/O.

Anthropic counts differently from OpenAI (docs: prompt caching, "Tracking cache
performance"): `input_tokens` excludes the cache, so the prompt is
`input_tokens + cache_read_input_tokens + cache_creation_input_tokens`. The record keeps
OpenAI's meaning (`Usage`: input holds every prompt token), so:

- input = input_tokens + cache_read_input_tokens + cache_creation_input_tokens
- cached input = cache_read_input_tokens
- cache writes by lifetime from `cache_creation.ephemeral_{5m,1h}_input_tokens`; a write
  the split does not cover is a 5-minute write (the default lifetime)
- output = output_tokens (thinking included; `output_tokens_details.thinking_tokens`,
  where given, is recorded as reasoning, a part of output)
- web searches = server_tool_use.web_search_requests (billed per search)
- `usage.iterations[]`: the top-level counts are the final iteration's; a `compaction`
  iteration (context compaction) is an extra sampling step, billed too, and added.

A stream reports usage twice: in `message_start` (input and cache counts with the split,
a provisional output count) and in `message_delta` (cumulative counts, which may repeat
and override the input and cache counts, e.g. after server-tool iterations).
`UsageFold` takes each field from the last event that has it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import orjson

from proxy.accounting.records import Usage

__all__ = [
    "UsageFold",
    "block_text",
    "delta_text",
    "message_text",
    "normalise_message_usage",
]

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_SERVICE_TIER_MAX = 64


def _int(value: Any) -> int | None:
    # `type(...) is int`: a bool is an int subclass, and a "true" token count is garbage.
    return value if type(value) is int and value >= 0 else None


def _dict(value: Any) -> Mapping[str, Any]:
    return value if type(value) is dict else _EMPTY


@dataclass(slots=True)
class _Counts:
    uncached: int = 0
    read: int = 0
    write_5m: int = 0
    write_1h: int = 0
    output: int = 0

    def add(self, usage: Mapping[str, Any]) -> bool:
        """Add one usage object's counts; False when it has no usable input or output."""
        uncached, output = _int(usage.get("input_tokens")), _int(usage.get("output_tokens"))
        if uncached is None or output is None:
            return False
        read = _int(usage.get("cache_read_input_tokens")) or 0
        writes = _int(usage.get("cache_creation_input_tokens")) or 0
        split = _dict(usage.get("cache_creation"))
        one_hour = min(_int(split.get("ephemeral_1h_input_tokens")) or 0, writes)
        self.uncached += uncached
        self.read += read
        self.write_1h += one_hour
        self.write_5m += writes - one_hour
        self.output += output
        return True


def normalise_message_usage(
    usage: Any, endpoint: str = "messages", service_tier: Any = None
) -> Usage | None:
    """A Messages API `usage` object → Usage, or None when it holds no usable input and
    output counts (the caller then estimates: a missing count is never billed as zero).
    The signature matches `usage_shapes.normalise_usage`; the service tier is read from
    the usage object itself, where Anthropic puts it."""
    if type(usage) is not dict:
        return None
    counts = _Counts()
    if not counts.add(usage):
        return None
    iterations = usage.get("iterations")
    for iteration in iterations if type(iterations) is list else ():
        # The top level mirrors the final iteration only; a compaction step before it is
        # billed too (docs: compaction). Other kinds (a fallback's declined attempt, an
        # advisor) have no documented billing: the top level stands for them.
        if type(iteration) is dict and iteration.get("type") == "compaction":
            counts.add(iteration)
    outputs = _dict(usage.get("output_tokens_details"))
    thinking = _int(outputs.get("thinking_tokens")) or 0
    tools = _dict(usage.get("server_tool_use"))
    tier = usage.get("service_tier", service_tier)
    return Usage(
        input_tokens=counts.uncached + counts.read + counts.write_5m + counts.write_1h,
        cached_input_tokens=counts.read,
        output_tokens=counts.output,
        reasoning_tokens=min(thinking, counts.output),
        cache_write_5m_tokens=counts.write_5m,
        cache_write_1h_tokens=counts.write_1h,
        web_search_requests=_int(tools.get("web_search_requests")) or 0,
        service_tier=tier if isinstance(tier, str) and 0 < len(tier) <= _SERVICE_TIER_MAX else None,
    )


@dataclass(slots=True)
class UsageFold:
    """The usage of a stream so far: every field from the last event that carried it,
    a `message_delta`'s (cumulative) over `message_start`'s (provisional), whatever
    order they arrive in.

    `final` once a `message_delta` carried usage: with `message_start`'s, its counts are
    complete. Before that only `message_start`'s are known, its output count provisional
    (1-4 tokens, whatever was generated since).
    """

    start: dict[str, Any] = field(default_factory=dict)
    delta: dict[str, Any] = field(default_factory=dict)
    started: bool = False  # message_start arrived: the provider began work
    final: bool = False
    model: str | None = None

    def event(self, event: Mapping[str, Any]) -> None:
        """Take in one parsed stream event (others than the two below change nothing)."""
        kind = event.get("type")
        if kind == "message_start":
            message = _dict(event.get("message"))
            self.started = True
            model = message.get("model")
            if isinstance(model, str) and model:
                self.model = model
            _take(self.start, message.get("usage"))
        elif kind == "message_delta" and _take(self.delta, event.get("usage")):
            self.final = True

    def usage(self) -> Usage | None:
        """What the stream's usage says so far (None: nothing usable)."""
        fields = {**self.start, **self.delta}
        return normalise_message_usage(fields) if fields else None


def _take(into: dict[str, Any], usage: Any) -> bool:
    if type(usage) is not dict:
        return False
    into.update((k, v) for k, v in usage.items() if v is not None)
    return True


# Generated text, for estimating output when no usage arrives: the answer, thinking and
# the JSON of tool inputs (all billed as output).
_DELTA_TEXT = {
    "text_delta": "text",
    "thinking_delta": "thinking",
    "input_json_delta": "partial_json",
}


def delta_text(event: Any) -> str:
    """The generated text one streamed event delivers to the client."""
    if type(event) is not dict or event.get("type") != "content_block_delta":
        return ""
    delta = _dict(event.get("delta"))
    name = _DELTA_TEXT.get(delta.get("type", ""))
    value = delta.get(name) if name else None
    return value if isinstance(value, str) else ""


def block_text(block: Any) -> str:
    """The generated text of one content block of a whole answer."""
    if type(block) is not dict:
        return ""
    for name in ("text", "thinking"):
        value = block.get(name)
        if isinstance(value, str):
            return value
    if block.get("type") in ("tool_use", "server_tool_use") and "input" in block:
        try:
            return orjson.dumps(block["input"]).decode()
        except orjson.JSONEncodeError:
            return ""
    return ""


def message_text(body: Any) -> str:
    """The generated text of a whole Messages answer (for estimating its output)."""
    if type(body) is not dict:
        return ""
    return "".join(block_text(block) for block in body.get("content") or ())
