"""From prices as sources state them (Decimal USD) to an integer `PriceSpec`. Pure.

Both sources (the config's `prices:` and the genai-prices catalogue) describe a price as
`Sheet`s: the token dimensions it prices apart, each a `Schedule` by prompt size, and its
fees. `build_spec` completes each sheet (a dimension not priced apart costs its parent's
price), merges the prompt-size thresholds of all dimensions into tiers of whole rate sets,
and converts to integers.

Precision: a token price is stored as integer femto-dollars per token (USD per 1M tokens
with up to 9 decimals). The config rejects more decimals (see config.PriceConfig); a
catalogue price with more (genai-prices carries a few float artefacts such as
0.18000000000000002) is rounded half to even to the femto-dollar and reported in
`BuiltSpec.inexact`, which the caller logs. Fees are integer nano-dollars, likewise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Context, Decimal, localcontext

from proxy.accounting.pricing import (
    TOKEN_DIMENSIONS,
    DayPart,
    PriceSpec,
    PriceVersion,
    Rates,
    TokenRates,
)

__all__ = ["PARENT", "BuiltSpec", "Schedule", "Sheet", "SheetPart", "SheetVersion", "build_spec"]

# $1 per 1M tokens = 1e-6 $/token = 1e9 fUSD/token; and $1 = 1e9 nUSD.
_SCALE = 9
_EXACT = Context(prec=80)  # no rounding by the thread's decimal context, whatever it is

# The price a dimension has when its source does not price it apart.
PARENT: Mapping[str, str] = {
    "cached_input": "input",
    "cache_write_5m": "input",
    "cache_write_1h": "cache_write_5m",
    "input_audio": "input",
    "input_image": "input",
    "reasoning": "output",
    "output_audio": "output",
    "output_image": "output",
}


@dataclass(frozen=True, slots=True)
class Schedule:
    """USD per 1M tokens: `base`, or a tier's price for a request with more input tokens
    than the tier's threshold; tiers ascending."""

    base: Decimal
    tiers: tuple[tuple[int, Decimal], ...] = ()

    def at(self, input_tokens: int) -> Decimal:
        for above, price in reversed(self.tiers):
            if input_tokens > above:
                return price
        return self.base


@dataclass(frozen=True, slots=True)
class Sheet:
    """What a source names for one variant at one time; None: not named."""

    tokens: Mapping[str, Schedule] = field(default_factory=dict)
    per_request: Decimal | None = None  # USD
    per_web_search: Decimal | None = None  # USD

    def overlay(self, variant: Sheet) -> Sheet:
        """This sheet with what `variant` names replacing it (a variant's price for a
        dimension replaces that dimension's whole schedule, tiers included)."""
        return Sheet(
            tokens={**self.tokens, **variant.tokens},
            per_request=self.per_request if variant.per_request is None else variant.per_request,
            per_web_search=self.per_web_search
            if variant.per_web_search is None
            else variant.per_web_search,
        )

    def completed(self) -> dict[str, Schedule]:
        """Every token dimension's schedule: named, else its parent's, else free."""
        out: dict[str, Schedule] = {}
        for name in TOKEN_DIMENSIONS:  # parents come before their children
            named = self.tokens.get(name)
            if named is not None:
                out[name] = named
            elif name in PARENT:
                out[name] = out[PARENT[name]]
            else:
                out[name] = Schedule(Decimal(0))
        return out


@dataclass(frozen=True, slots=True)
class SheetPart:
    start_ms: int  # after UTC midnight
    standard: Sheet
    variants: Mapping[str, Sheet] = field(default_factory=dict)  # complete sheets


@dataclass(frozen=True, slots=True)
class SheetVersion:
    from_ms: int
    parts: tuple[SheetPart, ...]


@dataclass(frozen=True, slots=True)
class BuiltSpec:
    spec: PriceSpec
    inexact: tuple[str, ...]  # "what: given -> used" for prices rounded to the femto-dollar


class _Converter:
    def __init__(self) -> None:
        self.inexact: dict[str, None] = {}  # ordered, deduplicated

    def integer(self, value: Decimal, what: str | None) -> int:
        """USD per 1M tokens → fUSD per token, or USD → nUSD: both scale by 1e9. A rounded
        value is reported under `what` (None: a dimension that took its parent's price,
        reported under the parent)."""
        if not value.is_finite() or value < 0:
            raise ValueError(f"{what}: price {value} must be a finite amount >= 0")
        with localcontext(_EXACT):
            scaled = value.scaleb(_SCALE)  # exact: only the exponent changes
            whole = scaled.to_integral_value(rounding=ROUND_HALF_EVEN)
            if whole != scaled and what is not None:
                self.inexact[f"{what}: {value} -> {whole.scaleb(-_SCALE).normalize()}"] = None
        return int(whole)

    def nusd(self, usd: Decimal | None, what: str) -> int:
        return 0 if usd is None else self.integer(usd, what)

    def rates(self, sheet: Sheet) -> Rates:
        schedules = sheet.completed()
        named = sheet.tokens
        thresholds = sorted({above for s in schedules.values() for above, _ in s.tiers})

        def token_rates(input_tokens: int) -> TokenRates:
            return TokenRates(
                **{
                    # A dimension on its parent's price is reported under the parent.
                    name: self.integer(s.at(input_tokens), name if name in named else None)
                    for name, s in schedules.items()
                }
            )

        base = token_rates(0)
        tiers: list[tuple[int, TokenRates]] = []
        for above in thresholds:
            rates = token_rates(above + 1)
            if rates != (tiers[-1][1] if tiers else base):
                tiers.append((above, rates))
        return Rates(
            base=base,
            tiers=tuple(tiers),
            per_request_nusd=self.nusd(sheet.per_request, "per_request"),
            per_web_search_nusd=self.nusd(sheet.per_web_search, "per_web_search"),
        )


def build_spec(versions: Sequence[SheetVersion]) -> BuiltSpec:
    """The integer spec of these dated sheets (ascending `from_ms`); consecutive versions
    that price the same are merged, and so are variants that price as the standard."""
    convert = _Converter()
    built: list[PriceVersion] = []
    for version in versions:
        parts: list[DayPart] = []
        for part in version.parts:
            standard = convert.rates(part.standard)
            variants = tuple(
                (name, rates)
                for name, sheet in sorted(part.variants.items())
                if (rates := convert.rates(sheet)) != standard
            )
            if not parts or (parts[-1].standard, parts[-1].variants) != (standard, variants):
                parts.append(DayPart(part.start_ms, standard, variants))
        if not built or built[-1].parts != tuple(parts):
            built.append(PriceVersion(version.from_ms, tuple(parts)))
    return BuiltSpec(PriceSpec(tuple(built)), tuple(convert.inexact))
