"""Deterministic embeddings (`POST /v1/embeddings`), as floats or base64 float32, pure."""

from __future__ import annotations

import base64
import struct
import zlib
from functools import lru_cache
from typing import Any

import orjson

from proxy.mock_upstream.payloads import Usage

__all__ = ["embedding_items", "embeddings"]


def embedding_items(value: object) -> list[object]:
    """The separate inputs of an embeddings request; ValueError if `input` has no valid shape."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not value:
        raise ValueError("input must be a string, a token array or a non-empty list of them")
    if all(isinstance(item, int) for item in value):
        return [value]  # one input given as token ids
    if all(isinstance(item, str) for item in value) or all(
        isinstance(item, list) and all(isinstance(t, int) for t in item) for item in value
    ):
        return list(value)
    raise ValueError("input must be a string, a token array or a non-empty list of them")


@lru_cache(maxsize=1024)
def _vector(seed: int, dimensions: int) -> tuple[float, ...]:
    # Multiples of 1/1024 in [-1, 1): exact in float32, so float and base64 forms agree.
    return tuple(((seed * (j + 1) * 2654435761) % 2048 - 1024) / 1024 for j in range(dimensions))


def embeddings(
    model: str, items: list[object], dimensions: int, as_base64: bool, usage: Usage | None
) -> bytes:
    data = []
    for index, item in enumerate(items):
        vector = _vector(zlib.crc32(orjson.dumps(item)), dimensions)
        encoded: Any = vector
        if as_base64:
            encoded = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    body: dict[str, Any] = {"object": "list", "data": data, "model": model}
    if usage is not None:
        body["usage"] = {"prompt_tokens": usage.prompt_tokens, "total_tokens": usage.prompt_tokens}
    return orjson.dumps(body)
