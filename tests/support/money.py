"""Expected costs computed independently of proxy.accounting.pricing: exact fractions from the price
literals, rounded half-to-even once per request (Python's round() on a Fraction)."""

from __future__ import annotations

from fractions import Fraction

from tests.support.stack import PRICES

__all__ = ["expected_nusd", "nusd", "usd"]


def expected_nusd(model: str, input_tokens: int, cached: int, output: int) -> int:
    price_in, price_cached, price_out = (Fraction(p) for p in PRICES[model])
    usd_times_million = (
        (input_tokens - cached) * price_in + cached * price_cached + output * price_out
    )
    return round(usd_times_million * 1000)  # $/1M tokens → nano-dollars per token: × 1e9 / 1e6


def usd(nusd: int) -> str:
    sign = "-" if nusd < 0 else ""
    return f"{sign}{abs(nusd) // 10**9}.{abs(nusd) % 10**9:09d}"


def nusd(usd_text: str | None) -> int | None:
    """A money field of the API ("0.000001234", or null) back to nano-dollars, exactly."""
    if usd_text is None:
        return None
    whole, _, frac = usd_text.lstrip("-").partition(".")
    value = int(whole) * 10**9 + int(frac.ljust(9, "0"))
    return -value if usd_text.startswith("-") else value
