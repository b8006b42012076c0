"""Config pieces for the budget end-to-end tests: a model with round prices, so a request's
worst-case reservation and its cost are easy integers ($1 / $2 per 1M tokens in / out)."""

from __future__ import annotations

import orjson

from tests.support.stack import BACKEND_KEY

__all__ = ["METERED", "metered_body", "metered_config", "reservation_nusd", "usage_header"]

METERED = "metered"
IN_NUSD, OUT_NUSD = 1000, 2000  # per token


def metered_config(config: dict) -> dict:
    return {
        **config,
        "models": {
            **config["models"],
            METERED: {"targets": [{"provider": "openai", "model": "metered-model"}]},
        },
        "prices": {**config["prices"], "openai/metered-model": {"input": "1", "output": "2"}},
    }


def metered_body(max_tokens: int = 50, **extra: object) -> bytes:
    body = {
        "model": METERED,
        "messages": [{"role": "user", "content": "Tell me a story."}],
        "max_tokens": max_tokens,
        **extra,
    }
    return orjson.dumps(body)


def reservation_nusd(body: bytes, max_tokens: int) -> int:
    """The proxy's bound: one token per body byte, plus max_tokens, at the route's price."""
    return len(body) * IN_NUSD + max_tokens * OUT_NUSD


def usage_header(body: bytes, max_tokens: int) -> str:
    """x-mock-usage making the upstream report exactly the reserved usage."""
    return f"{len(body)},0,{max_tokens},0"


def headers(customer: str, **extra: str) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {BACKEND_KEY}",
        "X-Customer-Id": customer,
        "Content-Type": "application/json",
        **extra,
    }
