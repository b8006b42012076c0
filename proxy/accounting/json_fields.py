"""Top-level fields of a JSON object read from its bytes without parsing all of it. Pure.

A response body is one JSON object whose `usage` sits near its end; parsing a 1 MB body
(embeddings, long answers) to read a few integers would cost milliseconds. Two facts make
a cheap and exact reading possible, for an unescaped occurrence of `"name"` at offset i
of a valid JSON object:

- the tail rule: `{` + body[i:] is itself a valid JSON object exactly when `"name"` is a
  key of the top-level object. A key nested deeper leaves closing brackets over (trailing
  data), and a string value `"name"` is not followed by a colon; text inside a string
  cannot hold an unescaped quote. The parse both checks the position and yields every
  top-level field from that key to the end.
- the head rule: body[:i] with its trailing comma replaced by `}` is a valid object
  exactly when `"name"` starts a key of the top-level object.

So a nested `usage` (Groq's `usage_breakdown.models[].usage`, client metadata echoed after
the real one) is never taken for the top-level one.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

__all__ = ["head_string", "tail_fields"]

# Occurrences of a key tried before giving up (the caller then parses the whole body).
_TRIES = 16
_STRING_VALUE = re.compile(rb'\s*:\s*("(?:[^"\\]|\\.)*")')


def tail_fields(
    body: bytes, key: str, *, end: int | None = None, window: int | None = None
) -> tuple[int, dict[str, Any]] | None:
    """The last top-level occurrence of `key` before `end` (no earlier than `end - window`):
    its offset and the top-level fields from it to the end of the body. None when there is
    none, or none among the last few occurrences."""
    needle = b'"' + key.encode() + b'"'
    stop = len(body) if end is None else end
    floor = 0 if window is None else max(0, stop - window)
    for _ in range(_TRIES):
        at = body.rfind(needle, floor, stop)
        if at < 0:
            return None
        stop = at
        if at and body[at - 1] == 0x5C:  # an escaped quote: text inside a string
            continue
        try:
            fields = orjson.loads(b"{" + body[at:])
        except orjson.JSONDecodeError:
            continue  # nested deeper, or a string value that happens to read "key"
        if isinstance(fields, dict) and key in fields:
            return at, fields
    return None


def head_string(body: bytes, key: str, *, limit: int) -> str | None:
    """The string value of the first top-level `key` within the first `limit` bytes."""
    needle = b'"' + key.encode() + b'"'
    start = 0
    for _ in range(_TRIES):
        at = body.find(needle, start, limit)
        if at < 0:
            return None
        start = at + 1
        prefix = body[:at].rstrip()
        if prefix.endswith(b","):
            prefix = prefix[:-1]
        elif prefix != b"{" and not prefix.endswith(b"{"):
            continue  # not where a key starts
        try:
            parsed = orjson.loads(prefix + b"}")
        except orjson.JSONDecodeError:
            continue  # nested deeper
        if not isinstance(parsed, dict):
            continue
        match = _STRING_VALUE.match(body, at + len(needle))
        if match is None:
            return None  # the top-level key, but its value is not a string
        try:
            value = orjson.loads(match.group(1))
        except orjson.JSONDecodeError:
            return None
        return value if isinstance(value, str) else None
    return None
