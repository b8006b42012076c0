"""The figures compared on each side, and the proxy's rows. Pure value types.

Money inside is integer nano-dollars, as everywhere in the proxy; the provider's decimal
amounts are summed exactly and rounded once per row, half to even.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from typing import Any

from proxy.accounting.pricing import format_usd

__all__ = ["FIELDS", "Figures", "ProxyRow", "Tolerance", "nusd_of_usd"]

# The compared figures, in the order every output shows them.
FIELDS = (
    "requests",
    "input_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "output_tokens",
    "cost_usd",
)


def nusd_of_usd(amount: Decimal) -> int:
    """Decimal USD → integer nano-dollars, rounded half to even."""
    with localcontext() as context:
        context.prec = 60  # reports write up to 39 decimals: keep every digit
        return int((amount * 10**9).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


@dataclass(frozen=True, slots=True)
class ProxyRow:
    """What the proxy recorded for one provider on one UTC day for one upstream model.

    `requests` counts the requests the provider answered: those that failed upstream
    without any token (`failed_requests`) are not in it, unless `log_incomplete` says the
    usage log no longer held that day's records to tell them apart.
    """

    day: date
    model: str
    requests: int = 0
    input_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    cost_nusd: int = 0
    estimated_requests: int = 0
    unpriced_requests: int = 0
    failed_requests: int = 0
    log_incomplete: bool = False

    def figures(self) -> Figures:
        return Figures(
            requests=self.requests,
            input_tokens=self.input_tokens,
            cached_input_tokens=self.cached_input_tokens,
            cache_write_tokens=self.cache_write_tokens,
            output_tokens=self.output_tokens,
            cost_nusd=self.cost_nusd,
        )


@dataclass(slots=True)
class Figures:
    """One side of a comparison; None: that side's report does not say."""

    requests: int | None = 0
    input_tokens: int | None = 0
    cached_input_tokens: int | None = 0
    cache_write_tokens: int | None = 0
    output_tokens: int | None = 0
    cost_nusd: int | None = 0

    def values(self) -> dict[str, int | None]:
        """By the names of FIELDS (cost in nano-dollars)."""
        return {
            ("cost_usd" if f.name == "cost_nusd" else f.name): getattr(self, f.name)
            for f in fields(self)
        }

    def add(self, other: Figures) -> None:
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            setattr(self, f.name, None if mine is None or theirs is None else mine + theirs)

    def minus(self, other: Figures) -> Figures:
        values = {}
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            values[f.name] = None if mine is None or theirs is None else mine - theirs
        return Figures(**values)

    def is_zero(self) -> bool:
        return not any(getattr(self, f.name) for f in fields(self))

    def as_json(self) -> dict[str, Any]:
        values: dict[str, Any] = self.values()
        cost = values["cost_usd"]
        values["cost_usd"] = None if cost is None else format_usd(cost)
        return values


@dataclass(frozen=True, slots=True)
class Tolerance:
    """In percent of the provider's figure: tokens (requests included), and cost."""

    tokens_pct: Decimal = Decimal(0)
    cost_pct: Decimal = Decimal("0.5")

    def allows(self, name: str, difference: int, provider: int) -> bool:
        pct = self.cost_pct if name == "cost_usd" else self.tokens_pct
        return abs(difference) * 100 <= pct * abs(provider)

    def as_json(self) -> dict[str, str]:
        return {"tokens": str(self.tokens_pct), "cost": str(self.cost_pct)}
