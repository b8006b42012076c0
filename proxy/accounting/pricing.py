"""Prices and the cost of a request, in integer money. Pure: no I/O.

A `PriceSpec` is what a route target costs, resolved once per config snapshot (from the
config's `prices:` or the genai-prices catalogue, see `price_book`): for each period it was
in force (`from` dates, UTC), each part of the UTC day (off-peak windows), and each price
variant (a response's `service_tier`, batch), the `Rates` of every billed dimension.
Token prices are integer femto-dollars (1e-15 USD) per token, which is exact for every
price given with up to 9 decimals of USD per 1M tokens; fees are integer nano-dollars.

`cost_nusd` is the request path's only pricing call: a few comparisons to find the rates
in force, ten integer products, and one rounding to the nano-dollar (half to even).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from proxy.accounting.records import Usage

__all__ = [
    "ALWAYS_MS",
    "BATCH",
    "DAY_MS",
    "FUSD_PER_NUSD",
    "INPUT_DIMENSIONS",
    "NO_SIZE_TIERS",
    "NUSD_PER_USD",
    "OUTPUT_DIMENSIONS",
    "STANDARD",
    "TOKEN_DIMENSIONS",
    "DayPart",
    "PriceBound",
    "PriceContext",
    "PriceSpec",
    "PriceVersion",
    "Rates",
    "TokenRates",
    "cost_fusd",
    "cost_nusd",
    "format_usd",
    "format_usd_short",
    "parse_usd",
    "round_half_even",
]

NUSD_PER_USD = 10**9
FUSD_PER_NUSD = 10**6
DAY_MS = 86_400_000
ALWAYS_MS = -(2**63)  # the `from_ms` of a price with no start date

# The parts of a request's tokens that can be priced apart. Input parts are subsets of
# `input` (the rest of the input is billed at `input`), output parts subsets of `output`.
INPUT_DIMENSIONS = (
    "input",
    "cached_input",
    "cache_write_5m",
    "cache_write_1h",
    "input_audio",
    "input_image",
)
OUTPUT_DIMENSIONS = ("output", "reasoning", "output_audio", "output_image")
TOKEN_DIMENSIONS = INPUT_DIMENSIONS + OUTPUT_DIMENSIONS


@dataclass(frozen=True, slots=True)
class TokenRates:
    """Femto-dollars per token of each dimension (every one given: the sources fill a
    dimension they do not price apart with its parent's price, e.g. cache reads at input)."""

    input: int
    cached_input: int
    cache_write_5m: int
    cache_write_1h: int
    input_audio: int
    input_image: int
    output: int
    reasoning: int
    output_audio: int
    output_image: int

    @classmethod
    def flat(cls, input: int, output: int, cached_input: int | None = None) -> TokenRates:
        """Input and output prices, every part at its parent's price (cache reads at
        `cached_input` when given)."""
        cached = input if cached_input is None else cached_input
        return cls(input, cached, input, input, input, input, output, output, output, output)

    def input_max(self) -> int:
        return max(
            self.input,
            self.cached_input,
            self.cache_write_5m,
            self.cache_write_1h,
            self.input_audio,
            self.input_image,
        )

    def output_max(self) -> int:
        return max(self.output, self.reasoning, self.output_audio, self.output_image)


@dataclass(frozen=True, slots=True)
class Rates:
    """The prices of one variant at one time: token rates by prompt size, and fees."""

    base: TokenRates
    # (above_input_tokens, rates), ascending: a request with MORE input tokens than the
    # threshold (cache reads and writes included) pays that tier's rates for EVERY token,
    # as Anthropic, Google and OpenAI bill their long-context tiers.
    tiers: tuple[tuple[int, TokenRates], ...] = ()
    per_request_nusd: int = 0
    per_web_search_nusd: int = 0

    def at(self, input_tokens: int) -> TokenRates:
        for above, rates in reversed(self.tiers):
            if input_tokens > above:
                return rates
        return self.base

    def all_token_rates(self) -> tuple[TokenRates, ...]:
        return (self.base, *(rates for _, rates in self.tiers))


@dataclass(frozen=True, slots=True)
class DayPart:
    """The prices from `start_ms` after UTC midnight until the next part (or midnight)."""

    start_ms: int
    standard: Rates
    # Variant name ("flex", "priority", "batch", ...) -> its rates, where they differ.
    variants: tuple[tuple[str, Rates], ...] = ()

    def rates(self, variant: str | None) -> Rates:
        if variant is not None:
            for name, rates in self.variants:
                if name == variant:
                    return rates
        return self.standard

    def all_rates(self) -> tuple[Rates, ...]:
        return (self.standard, *(rates for _, rates in self.variants))


@dataclass(frozen=True, slots=True)
class PriceBound:
    """The dearest token prices and fixed fee of a version: what budgets reserve with."""

    input_fusd: int
    output_fusd: int
    per_request_nusd: int


@dataclass(frozen=True, slots=True)
class PriceVersion:
    """The prices in force from `from_ms` (UTC epoch ms) until the next version."""

    from_ms: int
    parts: tuple[DayPart, ...]  # ascending start_ms, the first at 0
    bound: PriceBound = field(init=False, compare=False)

    def __post_init__(self) -> None:
        if not self.parts or self.parts[0].start_ms != 0:
            raise ValueError("a price version's first day part starts at midnight")
        rates = [r for part in self.parts for r in part.all_rates()]
        token_rates = [t for r in rates for t in r.all_token_rates()]
        bound = PriceBound(
            input_fusd=max(t.input_max() for t in token_rates),
            output_fusd=max(t.output_max() for t in token_rates),
            per_request_nusd=max(r.per_request_nusd for r in rates),
        )
        object.__setattr__(self, "bound", bound)

    def part(self, when_ms: int) -> DayPart:
        parts = self.parts
        if len(parts) == 1:
            return parts[0]
        ms_of_day = when_ms % DAY_MS
        for part in reversed(parts):
            if part.start_ms <= ms_of_day:
                return part
        return parts[0]


@dataclass(frozen=True, slots=True)
class PriceSpec:
    """Every price of one target, immutable. The first version also covers any time
    before its start (as the catalogue does)."""

    versions: tuple[PriceVersion, ...]  # ascending from_ms

    def __post_init__(self) -> None:
        starts = [v.from_ms for v in self.versions]
        if not starts or starts != sorted(set(starts)):
            raise ValueError("price versions must have distinct, ascending start times")

    @classmethod
    def flat(cls, rates: Rates) -> PriceSpec:
        return cls((PriceVersion(ALWAYS_MS, (DayPart(0, rates),)),))

    def version(self, when_ms: int) -> PriceVersion:
        versions = self.versions
        for version in reversed(versions):
            if version.from_ms <= when_ms:
                return version
        return versions[0]

    def rates(self, when_ms: int, variant: str | None = None) -> Rates:
        return self.version(when_ms).part(when_ms).rates(variant)

    def bound(self, when_ms: int) -> PriceBound:
        return self.version(when_ms).bound


@dataclass(frozen=True, slots=True)
class PriceContext:
    """What the response does not say but the price depends on: batch processing
    (OpenAI's batch results report service_tier "default"), and whether prompt-size
    tiers apply (Anthropic's long-context prices apply only to requests that opt into the
    1M-token context; without it a prompt over 200k tokens is the sum of server-tool
    iterations, each under the limit, and billed at the standard prices)."""

    batch: bool = False
    size_tiers: bool = True


STANDARD = PriceContext()
BATCH = PriceContext(batch=True)
NO_SIZE_TIERS = PriceContext(size_tiers=False)


def cost_fusd(usage: Usage, spec: PriceSpec, when_ms: int, context: PriceContext = STANDARD) -> int:
    """The exact cost in femto-dollars: each part of the tokens at its own price.

    The parts are subsets of their totals (cache reads and writes, audio and image
    tokens of input; reasoning, audio and image tokens of output): each is billed at its
    price and only the remainder at the plain input/output price. A part larger than what
    is left of its total is cut to it, so a token is never billed twice.
    """
    variant = "batch" if context.batch else usage.service_tier
    rates = spec.rates(when_ms, variant)
    r = rates.at(usage.input_tokens) if context.size_tiers else rates.base
    left = usage.input_tokens
    fusd = 0
    for count, price in (
        (usage.cached_input_tokens, r.cached_input),
        (usage.cache_write_5m_tokens, r.cache_write_5m),
        (usage.cache_write_1h_tokens, r.cache_write_1h),
        (usage.input_audio_tokens, r.input_audio),
        (usage.input_image_tokens, r.input_image),
    ):
        if count:
            part = count if count < left else left
            left -= part
            fusd += part * price
    fusd += left * r.input
    left = usage.output_tokens
    for count, price in (
        (usage.reasoning_tokens, r.reasoning),
        (usage.output_audio_tokens, r.output_audio),
        (usage.output_image_tokens, r.output_image),
    ):
        if count:
            part = count if count < left else left
            left -= part
            fusd += part * price
    fusd += left * r.output
    fees = rates.per_request_nusd + usage.web_search_requests * rates.per_web_search_nusd
    return fusd + fees * FUSD_PER_NUSD


def cost_nusd(usage: Usage, spec: PriceSpec, when_ms: int, context: PriceContext = STANDARD) -> int:
    """The request's cost in nano-dollars: the exact cost, rounded once, ties to even."""
    return round_half_even(cost_fusd(usage, spec, when_ms, context), FUSD_PER_NUSD)


def round_half_even(numerator: int, denominator: int) -> int:
    quotient, remainder = divmod(numerator, denominator)
    twice = 2 * remainder
    if twice > denominator or (twice == denominator and quotient % 2 == 1):
        quotient += 1
    return quotient


# --- USD strings at the edges ------------------------------------------------------------


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
