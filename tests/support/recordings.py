"""The recorded provider responses under tests/fixtures/recordings: each a body (the bytes
the provider sent) and its metadata (status, content type, request, and the billable
figures derived by hand from the provider's documentation: `expected`). `openai/` holds
OpenAI-compatible APIs by provider; `anthropic/` Anthropic's Messages API."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from proxy.accounting.records import Usage

__all__ = [
    "ANTHROPIC_DIR",
    "RECORDINGS_DIR",
    "Recording",
    "anthropic_recordings",
    "billed_figures",
    "expected_figures",
    "recording",
    "recordings",
]

RECORDINGS_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "recordings" / "openai"
ANTHROPIC_DIR = RECORDINGS_DIR.parent / "anthropic"


@dataclass(frozen=True)
class Recording:
    name: str  # "<provider>/<case>"
    meta: dict[str, Any]
    body: bytes

    @property
    def endpoint(self) -> str:
        return self.meta["api"]

    @property
    def stream(self) -> bool:
        return self.meta["stream"]

    @property
    def status(self) -> int:
        return self.meta["status"]

    @property
    def content_type(self) -> str:
        return self.meta["content_type"]

    @property
    def expected(self) -> dict[str, Any]:
        return self.meta["expected"]

    @property
    def counts_known(self) -> bool:
        """False for a failure whose token counts the provider never said (estimated)."""
        return self.expected["input_tokens"] is not None


@cache
def recordings() -> tuple[Recording, ...]:
    found = []
    for meta_path in sorted(RECORDINGS_DIR.glob("*/*.json")):
        name = f"{meta_path.parent.name}/{meta_path.stem}"
        body = meta_path.with_suffix(".body").read_bytes()
        found.append(Recording(name, json.loads(meta_path.read_text()), body))
    return tuple(found)


@cache
def anthropic_recordings() -> tuple[Recording, ...]:
    """Anthropic's Messages API recordings, named "anthropic/<case>"."""
    found = []
    for meta_path in sorted(ANTHROPIC_DIR.glob("*.json")):
        body = meta_path.with_suffix(".body").read_bytes()
        found.append(
            Recording(f"anthropic/{meta_path.stem}", json.loads(meta_path.read_text()), body)
        )
    return tuple(found)


def recording(name: str) -> Recording:
    for item in (*recordings(), *anthropic_recordings()):
        if item.name == name:
            return item
    raise KeyError(name)


def _usd(nusd: int | None) -> Decimal | None:
    return None if nusd is None else Decimal(nusd) / Decimal(1_000_000_000)


def billed_figures(usage: Usage, status: int) -> dict[str, Any]:
    """A Usage in the terms of a recording's `expected` (cost as an exact Decimal)."""
    return {
        "input_tokens": usage.input_tokens,
        "cached_input_tokens": usage.cached_input_tokens,
        "cache_write_tokens": usage.cache_write_5m_tokens + usage.cache_write_1h_tokens,
        "output_tokens": usage.output_tokens,
        "reasoning_tokens": usage.reasoning_tokens,
        "input_audio_tokens": usage.input_audio_tokens,
        "output_audio_tokens": usage.output_audio_tokens,
        "service_tier": usage.service_tier,
        "provider_cost_usd": _usd(usage.provider_cost_nusd),
        "status": status,
    }


def expected_figures(item: Recording) -> dict[str, Any]:
    """The recording's `expected`, with the cost as an exact Decimal."""
    expected = dict(item.expected)
    cost = expected["provider_cost_usd"]
    expected["provider_cost_usd"] = None if cost is None else Decimal(cost)
    return expected
