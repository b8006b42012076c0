"""Reading request and response bodies in tests: what a JSON body's top level holds,
duplicate keys included (json's pairs hook sees every pair; dict() keeps the last)."""

from __future__ import annotations

import json
import struct

__all__ = ["top_level_values", "wav"]


def top_level_values(body: bytes, key: str) -> list[object]:
    """Every value of `key` in the body's top-level object, in order."""
    top: list[tuple[str, object]] = []

    def keep(pairs: list[tuple[str, object]]) -> dict:
        top[:] = pairs  # objects close inside out: the top-level one is the last
        return dict(pairs)

    json.loads(body, object_pairs_hook=keep)
    return [value for name, value in top if name == key]


def wav(seconds: float, rate: int = 16_000) -> bytes:
    """A WAV file (16-bit mono PCM, silence) of `seconds`, built by the format's spec."""
    data = b"\x00\x00" * int(rate * seconds)
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    return (
        b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE"
        + b"fmt " + struct.pack("<I", 16) + fmt
        + b"data" + struct.pack("<I", len(data)) + data
    )  # fmt: skip
