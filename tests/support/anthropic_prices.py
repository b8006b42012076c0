"""What Anthropic charges for a Messages API answer, computed from its published prices
alone (docs: pricing, platform.claude.com/docs/en/about-claude/pricing), never from the
proxy's price code or the catalogue it reads: base input and output USD per 1M tokens
per model; cache reads 0.1x the input price, 5-minute cache writes 1.25x, 1-hour writes
2x; $10 per 1,000 web searches; Sonnet 4/4.5 with the 1M-context beta above 200k input
tokens $6 input and $22.50 output, multipliers on top. Exact fractions, rounded once to
the nano-dollar, half to even.

The counts are Anthropic's own (`usage` as the API reports it): `input_tokens` excludes
cache reads and writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

__all__ = ["PUBLISHED", "Counts", "anthropic_nusd"]

# Model → (input, output) USD per 1M tokens, as published.
PUBLISHED: dict[str, tuple[Fraction, Fraction]] = {
    "claude-sonnet-4-5": (Fraction(3), Fraction(15)),
    "claude-sonnet-4": (Fraction(3), Fraction(15)),
    "claude-haiku-4-5": (Fraction(1), Fraction(5)),
    "claude-opus-4-1": (Fraction(15), Fraction(75)),
    "claude-sonnet-5": (Fraction(2), Fraction(10)),
}
LONG_CONTEXT = (Fraction(6), Fraction(45, 2))  # Sonnet 4/4.5 above 200k, with the beta
READ, WRITE_5M, WRITE_1H = Fraction(1, 10), Fraction(5, 4), Fraction(2)
PER_SEARCH_USD = Fraction(10, 1000)


@dataclass(frozen=True)
class Counts:
    """A usage object's counts, Anthropic's meaning."""

    input_tokens: int  # after the last cache breakpoint: excludes reads and writes
    output_tokens: int
    cache_read: int = 0
    write_5m: int = 0
    write_1h: int = 0
    web_searches: int = 0


def _family(model: str) -> str:
    """A dated model id ("claude-sonnet-4-5-20250929") → its published name."""
    for name in sorted(PUBLISHED, key=len, reverse=True):
        if model == name or model.startswith(name + "-"):
            return name
    raise KeyError(f"no published price for {model!r} in this table")


def anthropic_nusd(model: str, counts: Counts, *, long_context: bool = False) -> int:
    """Nano-dollars Anthropic bills (`long_context`: the request had the 1M beta)."""
    price_in, price_out = PUBLISHED[_family(model)]
    prompt = counts.input_tokens + counts.cache_read + counts.write_5m + counts.write_1h
    if long_context and prompt > 200_000:
        price_in, price_out = LONG_CONTEXT
    usd_per_million = (
        counts.input_tokens * price_in
        + counts.cache_read * price_in * READ
        + counts.write_5m * price_in * WRITE_5M
        + counts.write_1h * price_in * WRITE_1H
        + counts.output_tokens * price_out
    )
    usd = usd_per_million / 1_000_000 + counts.web_searches * PER_SEARCH_USD
    return round(usd * 10**9)
