"""Reading a chat completion stream's text out of its raw SSE bytes, in tests."""

from __future__ import annotations

import orjson

__all__ = ["sse_text"]


def sse_text(data: bytes) -> str:
    text = []
    for event in data.split(b"\n\n"):
        if event.startswith(b"data: {"):
            for choice in orjson.loads(event[6:])["choices"]:
                text.append(choice.get("delta", {}).get("content") or "")
    return "".join(text)
