"""Watching a relayed Messages API stream (Anthropic's SSE) for usage and errors, in
constant memory. Pure: fed events, it forwards every one (nothing is injected into an
Anthropic stream, so nothing is hidden) and at the end says what usage the stream
carried, which model answered and which error it ended with.

Only `message_start`, `message_delta` and `error` events are parsed (told by their
`event:` line, or by a `"usage"`/`"error"` key for a stream without event lines);
content events are parsed only while the usage is not final, to count the text they
deliver, and only past 32 KiB of them or when the stream ends without final usage.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from proxy.accounting.anthropic_usage import UsageFold, delta_text
from proxy.accounting.records import Usage
from proxy.accounting.sse import event_data, event_name
from proxy.accounting.stream_errors import StreamError, error_of_event

__all__ = ["MessageStreamWatcher"]

_USAGE_EVENTS = (b"event: message_start", b"event: message_delta")
_USAGE = b'"usage"'
_ERROR = b'"error"'
_RAW_LIMIT = 32 * 1024


class MessageStreamWatcher:
    """One per stream: `observe(event)` (always True: forward it), then `finish()` once
    the stream is over, before reading `usage`, `partial`, `model`, `service_tier` and
    `error`. `usage` is the final usage (None unless a `message_delta` carried it);
    `partial` what `message_start` said when no final usage came: its input and cache
    counts are exact, its output count provisional."""

    __slots__ = ("_fold", "_raw", "_raw_size", "_text_sink", "error", "partial", "usage")

    def __init__(self, *, text_sink: Callable[[str], None]) -> None:
        self._text_sink = text_sink
        self._fold = UsageFold()
        self._raw: list[bytes] = []
        self._raw_size = 0
        self.usage: Usage | None = None
        self.partial: Usage | None = None
        self.error: StreamError | None = None

    @property
    def model(self) -> str | None:
        return self._fold.model

    @property
    def service_tier(self) -> str | None:
        usage = self.usage or self.partial
        return None if usage is None else usage.service_tier

    def observe(self, event: bytes) -> bool:
        if event.startswith(_USAGE_EVENTS) or (not event.startswith(b"event:") and _USAGE in event):
            parsed = _parse(event)
            if parsed is not None:
                self._fold.event(parsed)
                if self._fold.final:
                    self._raw, self._raw_size = [], 0  # no estimate needed any more
            return True
        if event.startswith(b"event: error") or (
            not event.startswith(b"event:") and _ERROR in event
        ):
            self._error_event(event)
            return True
        if not self._fold.final:
            self._raw.append(event)
            self._raw_size += len(event)
            if self._raw_size > _RAW_LIMIT:
                self.flush_text()
        return True

    def finish(self) -> None:
        """The stream is over: settle its usage; without final usage, turn the held
        events into delivered text for the estimate."""
        if self._fold.final:
            self.usage = self._fold.usage()
        if self.usage is None:
            self.partial = self._fold.usage()
            self.flush_text()

    def flush_text(self) -> None:
        raw, self._raw, self._raw_size = self._raw, [], 0
        for event in raw:
            text = delta_text(_parse(event))
            if text:
                self._text_sink(text)

    def _error_event(self, event: bytes) -> None:
        error = error_of_event(event_name(event), _parse(event))
        if error is not None and self.error is None:
            # Before message_start the provider had not begun: nothing to bill.
            self.error = StreamError(error.status, work_started=self._fold.started)


def _parse(event: bytes) -> dict[str, Any] | None:
    data = event_data(event)
    if not data:
        return None
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None
