"""Splitting a byte stream into whole Server-Sent Events without altering a byte. Pure."""

from __future__ import annotations

import re

__all__ = ["SSESplitter", "event_data", "event_name"]

_SEPARATOR = re.compile(rb"\r\n\r\n|\n\n|\r\r")


class SSESplitter:
    """Feed it bytes as they arrive; it returns the complete events (each with its
    terminating blank line) and keeps an incomplete tail for the next feed."""

    __slots__ = ("_tail",)

    def __init__(self) -> None:
        self._tail = b""

    def feed(self, data: bytes) -> list[bytes]:
        if self._tail:
            data = self._tail + data
        if b"\r" not in data:  # the usual case: "\n\n" framing, no regex needed
            end = data.rfind(b"\n\n")
            if end < 0:
                self._tail = data
                return []
            self._tail = data[end + 2 :]
            body = data[: end + 2]
            if body.count(b"\n\n") == 1:
                return [body]
            return [part + b"\n\n" for part in body[:-2].split(b"\n\n")]
        events: list[bytes] = []
        start = 0
        for match in _SEPARATOR.finditer(data):
            events.append(data[start : match.end()])
            start = match.end()
        self._tail = data[start:]
        return events

    def remainder(self) -> bytes:
        """Bytes of an event that never got its blank line (the stream ended first)."""
        tail, self._tail = self._tail, b""
        return tail


def event_data(event: bytes) -> bytes:
    """The payload of an event: its `data:` lines joined by newlines (per the SSE spec)."""
    body_end = len(event) - 2  # a line ending before the terminating blank line: 2+ lines
    if (
        event.startswith(b"data: ")
        and event.find(b"\n", 0, body_end) < 0
        and event.find(b"\r", 0, body_end) < 0
    ):
        return event[6:].rstrip(b"\r\n")  # one data line: the overwhelmingly common case
    lines = []
    for line in event.splitlines():
        if line.startswith(b"data:"):
            value = line[5:]
            lines.append(value[1:] if value.startswith(b" ") else value)
    return b"\n".join(lines)


def event_name(event: bytes) -> str:
    """The event's `event:` field ("" when it has none: a plain `message`)."""
    if not event.startswith(b"event:") and b"\nevent:" not in event:
        return ""
    for line in event.splitlines():
        if line.startswith(b"event:"):
            return line[6:].strip().decode("utf-8", "replace")
    return ""
