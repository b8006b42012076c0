"""Watching a relayed SSE stream for usage, in constant memory and without parsing every
chunk. Pure: fed events, it says which to forward and what usage the stream carried."""

from __future__ import annotations

import orjson

from proxy.accounting.records import Usage
from proxy.accounting.sse import event_data
from proxy.accounting.usage import delta_text, stream_event_usage

__all__ = ["StreamUsageWatcher"]

_USAGE = b'"usage"'
_NULL_USAGE = (b'"usage":null', b'"usage": null')
# Raw event bytes kept for estimating delivered text, should the stream end without usage.
# Past this size they are reduced to text, and the text to a token count (TokenCounter).
_RAW_LIMIT = 32 * 1024


class StreamUsageWatcher:
    """One per stream. `observe(event)` → forward it to the client or not."""

    __slots__ = ("_endpoint", "_raw", "_raw_size", "_suppress_usage_chunk", "_text_sink", "usage")

    def __init__(self, endpoint: str, *, suppress_usage_chunk: bool, text_sink) -> None:
        self._endpoint = endpoint
        self._suppress_usage_chunk = suppress_usage_chunk
        self._text_sink = text_sink  # a callable taking delivered text (e.g. TokenCounter.add)
        self._raw: list[bytes] = []
        self._raw_size = 0
        self.usage: Usage | None = None

    def observe(self, event: bytes) -> bool:
        if _USAGE in event and not any(null in event for null in _NULL_USAGE):
            parsed = self._parse(event)
            if parsed is not None:
                usage = stream_event_usage(parsed)
                if usage is not None:
                    self.usage = usage
                    if self._suppress_usage_chunk and parsed.get("choices") == []:
                        return False  # the usage-only chunk the proxy asked for itself
            self._raw_text(parsed)
            return True
        if self.usage is None:
            self._raw.append(event)
            self._raw_size += len(event)
            if self._raw_size > _RAW_LIMIT:
                self.flush_text()
        return True

    def flush_text(self) -> None:
        """Turn held raw events into delivered text (only needed when usage is missing)."""
        raw, self._raw, self._raw_size = self._raw, [], 0
        for event in raw:
            self._raw_text(self._parse(event))

    def _raw_text(self, parsed: dict | None) -> None:
        if parsed is not None:
            text = delta_text(self._endpoint, parsed)
            if text:
                self._text_sink(text)

    @staticmethod
    def _parse(event: bytes) -> dict | None:
        data = event_data(event)
        if not data or data == b"[DONE]":
            return None
        try:
            parsed = orjson.loads(data)
        except orjson.JSONDecodeError:
            return None
        return parsed if isinstance(parsed, dict) else None
