"""Prices and the cost of a request, in integer nano-dollars. Pure: no I/O but the bundled file.

Prices are held as integer femto-dollars (1e-15 USD) per token, which represents every
price given with up to 9 decimals of USD per 1M tokens exactly; a request's cost is an
exact integer in femto-dollars, rounded once to nano-dollars, ties to even.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources

from proxy.accounting.records import Usage
from proxy.config import PriceConfig, load_yaml

__all__ = [
    "NUSD_PER_USD",
    "Price",
    "PriceTable",
    "cost_nusd",
    "format_usd",
    "format_usd_short",
    "load_bundled_prices",
    "parse_usd",
]

NUSD_PER_USD = 10**9
_FUSD_PER_NUSD = 10**6
_FUSD_PER_TOKEN_PER_USD_PER_MTOK = 10**9  # $1 / 1M tokens = 1e-6 $/token = 1e9 fUSD/token
_DATE_SUFFIX = re.compile(r"-\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True, slots=True)
class Price:
    """Femto-dollars per token."""

    input_fusd: int
    cached_input_fusd: int
    output_fusd: int

    @classmethod
    def per_million(
        cls, input: Decimal, output: Decimal, cached_input: Decimal | None = None
    ) -> Price:
        return cls(
            input_fusd=_fusd_per_token(input),
            cached_input_fusd=_fusd_per_token(input if cached_input is None else cached_input),
            output_fusd=_fusd_per_token(output),
        )

    @classmethod
    def from_config(cls, price: PriceConfig) -> Price:
        return cls.per_million(price.input, price.output, price.cached_input)


def _fusd_per_token(usd_per_million: Decimal | int | str) -> int:
    scaled = Decimal(usd_per_million) * _FUSD_PER_TOKEN_PER_USD_PER_MTOK
    if scaled != scaled.to_integral_value() or scaled < 0:
        raise ValueError(f"price {usd_per_million} must be >= 0 with at most 9 decimals")
    return int(scaled)


def _round_half_even(numerator: int, denominator: int) -> int:
    quotient, remainder = divmod(numerator, denominator)
    twice = 2 * remainder
    if twice > denominator or (twice == denominator and quotient % 2 == 1):
        quotient += 1
    return quotient


def cost_nusd(usage: Usage, price: Price) -> int:
    """(input − cached) × input + cached × cached_input + output × output, to the nano-dollar.

    Reasoning tokens are part of output; cached tokens are part of input. Neither is added
    on top of its total.
    """
    cached = min(usage.cached_input_tokens, usage.input_tokens)
    fusd = (
        (usage.input_tokens - cached) * price.input_fusd
        + cached * price.cached_input_fusd
        + usage.output_tokens * price.output_fusd
    )
    return _round_half_even(fusd, _FUSD_PER_NUSD)


def format_usd(nusd: int, *, short: bool = False) -> str:
    """Integer nano-dollars → decimal string with exactly 9 decimals ("1.234567891"), the
    form of every cost field; `short`: at least 2 decimals, more only when they are not
    zero ("500.00", "0.000006"), the form of budget limits and of messages for people."""
    sign = "-" if nusd < 0 else ""
    whole, frac = divmod(abs(nusd), NUSD_PER_USD)
    digits = f"{frac:09d}"
    if short:
        digits = digits.rstrip("0").ljust(2, "0")
    return f"{sign}{whole}.{digits}"


def format_usd_short(nusd: int) -> str:
    return format_usd(nusd, short=True)


def parse_usd(text: str | int | Decimal) -> int:
    """Decimal USD (string, int or Decimal; never float) → integer nano-dollars, exactly."""
    if isinstance(text, float):
        raise TypeError("money is never a float: pass a decimal string")
    try:
        value = Decimal(text) * NUSD_PER_USD
    except ArithmeticError:
        raise ValueError(f"{text!r} is not a decimal amount") from None
    if not value.is_finite():
        raise ValueError(f"{text!r} is not a finite amount")
    if value != value.to_integral_value():
        raise ValueError(f"{text} has more than 9 decimals")
    return int(value)


class PriceTable:
    """`provider/model` → Price, the config's entries merged over the bundled table."""

    def __init__(self, prices: Mapping[str, Price]) -> None:
        self._prices = dict(prices)

    @classmethod
    def build(cls, overrides: Mapping[str, PriceConfig]) -> PriceTable:
        table = load_bundled_prices()
        table.update({key: Price.from_config(value) for key, value in overrides.items()})
        return cls(table)

    def lookup(self, namespace: str, model: str) -> Price | None:
        """The price of `namespace/model`; a dated snapshot falls back to its base model."""
        price = self._prices.get(f"{namespace}/{model}")
        if price is None:
            undated = _DATE_SUFFIX.sub("", model)
            if undated != model:
                price = self._prices.get(f"{namespace}/{undated}")
        return price

    def __contains__(self, key: str) -> bool:
        return key in self._prices

    def __len__(self) -> int:
        return len(self._prices)


def load_bundled_prices() -> dict[str, Price]:
    text = resources.files("proxy").joinpath("data/prices.yaml").read_text(encoding="utf-8")
    raw = load_yaml(text) or {}
    return {key: Price.from_config(PriceConfig.model_validate(value)) for key, value in raw.items()}
