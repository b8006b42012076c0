"""Watching a relayed SSE stream for usage and errors, in constant memory and without
parsing content chunks. Pure: fed events, it says which to forward, and at the end what
usage the stream carried, which model answered and which error it ended with."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from proxy.accounting.records import Usage
from proxy.accounting.sse import event_data, event_name
from proxy.accounting.stream_errors import StreamError, error_of_event
from proxy.accounting.usage import delta_text, event_reading

__all__ = ["StreamUsageWatcher"]

_USAGE = b'"usage"'
_NULL_USAGE = (b'"usage":null', b'"usage": null')
_ERROR = b'"error"'
_NULL_ERROR = (b'"error":null', b'"error": null')
_ERROR_EVENT = b"event: error"
_EMPTY_CHOICES = (b'"choices":[]', b'"choices": []')
# Raw event bytes kept for estimating delivered text, should the stream end without usage.
# Past this size they are reduced to text, and the text to a token count (TokenCounter).
_RAW_LIMIT = 32 * 1024


def _names_any(event: bytes, key: bytes, nulls: tuple[bytes, bytes]) -> bool:
    """Whether `key` occurs in the raw event other than as `key: null`. Content text
    cannot produce an unescaped `"key"`, so only real keys (and string values) match."""
    count = event.count(key)
    return count > 0 and count > event.count(nulls[0]) + event.count(nulls[1])


def _is_error_candidate(event: bytes) -> bool:
    if event.startswith(_ERROR_EVENT) or b"\nevent: error" in event:
        return True
    return _ERROR in event and _names_any(event, _ERROR, _NULL_ERROR)


class StreamUsageWatcher:
    """One per stream. `observe(event)` → forward it to the client or not; `finish()`
    once the stream is over, before reading `usage`, `model` and `error`."""

    __slots__ = (
        "_endpoint",
        "_latest",
        "_raw",
        "_raw_size",
        "_suppress_usage_chunk",
        "_text_sink",
        "error",
        "model",
        "partial",
        "service_tier",
        "usage",
    )

    def __init__(
        self, endpoint: str, *, suppress_usage_chunk: bool, text_sink: Callable[[str], None]
    ) -> None:
        self._endpoint = endpoint
        self._suppress_usage_chunk = suppress_usage_chunk
        self._text_sink = text_sink  # takes delivered text (e.g. TokenCounter.add)
        self._raw: list[bytes] = []
        self._raw_size = 0
        # The latest usage-carrying event not parsed yet: a provider repeating cumulative
        # usage in every chunk (Perplexity) costs one parse at the end, not one per chunk.
        self._latest: bytes | None = None
        self.usage: Usage | None = None
        self.partial: Usage | None = None  # OpenAI's streams give usage whole, or none
        self.model: str | None = None
        self.service_tier: str | None = None
        self.error: StreamError | None = None

    def observe(self, event: bytes) -> bool:
        has_usage = _USAGE in event and _names_any(event, _USAGE, _NULL_USAGE)
        if _is_error_candidate(event):
            return self._error_event(event)
        if has_usage:
            if self.usage is None or (
                self._suppress_usage_chunk and any(e in event for e in _EMPTY_CHOICES)
            ):
                return self._usage_event(self._parse(event))
            self._latest = event
            return True
        if self.usage is None:
            self._raw.append(event)
            self._raw_size += len(event)
            if self._raw_size > _RAW_LIMIT:
                self.flush_text()
        return True

    def finish(self) -> None:
        """The stream is over: read the last usage it carried; if it carried none, turn
        the held events into delivered text for the estimate."""
        latest, self._latest = self._latest, None
        if latest is not None:
            self._read(self._parse(latest))
        if self.usage is None:
            self.flush_text()

    def flush_text(self) -> None:
        """Turn held raw events into delivered text (only needed when usage is missing)."""
        raw, self._raw, self._raw_size = self._raw, [], 0
        for event in raw:
            self._delivered(self._parse(event))

    def _error_event(self, event: bytes) -> bool:
        parsed = self._parse(event)
        error = error_of_event(event_name(event), parsed)
        if error is not None and self.error is None:
            self.error = error
        self._read(parsed)
        self._delivered(parsed)
        return True

    def _usage_event(self, parsed: dict[str, Any] | None) -> bool:
        if parsed is None:
            return True
        self._read(parsed)
        if self._suppress_usage_chunk and self.usage is not None and parsed.get("choices") == []:
            return False  # the usage-only chunk the proxy asked for itself
        self._delivered(parsed)
        return True

    def _read(self, parsed: dict[str, Any] | None) -> None:
        if parsed is None:
            return
        reading = event_reading(parsed, self._endpoint)
        if reading.usage is not None:
            self.usage = reading.usage
            self._raw, self._raw_size = [], 0  # no estimate needed any more
        self.model = reading.model or self.model
        response = parsed.get("response")
        holder = response if isinstance(response, dict) else parsed
        tier = holder.get("service_tier")
        if isinstance(tier, str):
            self.service_tier = tier

    def _delivered(self, parsed: dict[str, Any] | None) -> None:
        if parsed is not None and self.usage is None:
            text = delta_text(self._endpoint, parsed)
            if text:
                self._text_sink(text)

    @staticmethod
    def _parse(event: bytes) -> dict[str, Any] | None:
        data = event_data(event)
        if not data or data == b"[DONE]":
            return None
        try:
            parsed = orjson.loads(data)
        except orjson.JSONDecodeError:
            return None
        return parsed if isinstance(parsed, dict) else None
