"""proxy.accounting.pricing: the cost function over every dimension, tiers, variants, dated
versions and parts of the day; exact rounding; USD strings."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.accounting.config_prices import config_spec, date_ms
from proxy.accounting.pricing import (
    ALWAYS_MS,
    BATCH,
    DayPart,
    PriceBound,
    PriceSpec,
    PriceVersion,
    Rates,
    TokenRates,
    cost_nusd,
    format_usd,
    parse_usd,
)
from proxy.accounting.records import Usage
from proxy.config import PriceConfig

NOW = date_ms(date(2026, 12, 1))


def per_million(
    input: str, output: str, cached_input: str | None = None, **more: object
) -> PriceSpec:
    """A config price (USD per 1M tokens) as the spec the proxy builds from it."""
    fields = {"input": input, "output": output, "cached_input": cached_input, **more}
    return config_spec(PriceConfig.model_validate(fields)).spec


def cost(usage: Usage, spec: PriceSpec, when_ms: int = NOW) -> int:
    return cost_nusd(usage, spec, when_ms)


# --- USD per 1M tokens → femto-dollars per token -------------------------------------------


@pytest.mark.parametrize(
    ("input", "output", "cached_input", "expected"),
    [
        ("0.15", "0.60", "0.075", TokenRates.flat(150_000_000, 600_000_000, 75_000_000)),
        ("2.50", "10", None, TokenRates.flat(2_500_000_000, 10_000_000_000)),
        ("0", "0", "0", TokenRates.flat(0, 0, 0)),
        ("0.000000001", "0.000000002", None, TokenRates.flat(1, 2)),  # 9 decimals: 1 fUSD
        ("1000", "0.0000005", "0.1", TokenRates.flat(10**12, 500, 10**8)),
    ],
)
def test_config_prices_are_exact_in_femto_dollars_per_token(
    input: str, output: str, cached_input: str | None, expected: TokenRates
) -> None:
    spec = per_million(input, output, cached_input)
    assert spec == PriceSpec.flat(Rates(expected))


# --- cost_nusd -----------------------------------------------------------------------------

GPT_4O_MINI = per_million("0.15", "0.60", "0.075")  # 150 / 75 / 600 nUSD per token
HALF_NANO = per_million("0.0005", "0.0005")  # exactly 0.5 nUSD per token
HALF_MICRO_NANO = per_million("0.0000005", "0.0000005")  # 0.0005 nUSD per token


@pytest.mark.parametrize(
    ("usage", "price", "expected_nusd"),
    [
        # 600×150 + 400×75 + 500×600 = 90_000 + 30_000 + 300_000
        (Usage(1000, 400, 500, 200), GPT_4O_MINI, 420_000),
        # reasoning is inside output: the same request without reasoning costs the same
        (Usage(1000, 400, 500, 0), GPT_4O_MINI, 420_000),
        (Usage(1000, 400, 500, 500), GPT_4O_MINI, 420_000),
        # 1M in + 1M out of gpt-4o: $2.50 + $10.00
        (Usage(1_000_000, 0, 1_000_000), per_million("2.50", "10", "1.25"), 12_500_000_000),
        # o1: 50k×15_000 + 150k×7_500 + 100k×60_000
        (Usage(200_000, 150_000, 100_000, 90_000), per_million("15", "60", "7.5"), 7_875_000_000),
        # no cache price: cached tokens bill at the input price
        (Usage(100, 40, 0), per_million("2", "8"), 200_000),
        # embeddings: input only
        (Usage(8191, 0, 0), per_million("0.02", "0"), 163_820),
        (Usage(), GPT_4O_MINI, 0),
    ],
)
def test_cost_formula(usage: Usage, price: PriceSpec, expected_nusd: int) -> None:
    assert cost(usage, price) == expected_nusd


@pytest.mark.parametrize(
    ("usage", "price", "expected_nusd"),
    [
        # exact .5 ties go to the even neighbour
        (Usage(1, 0, 0), HALF_NANO, 0),  # 0.5
        (Usage(3, 0, 0), HALF_NANO, 2),  # 1.5
        (Usage(5, 0, 0), HALF_NANO, 2),  # 2.5
        (Usage(7, 0, 0), HALF_NANO, 4),  # 3.5
        (Usage(0, 0, 9), HALF_NANO, 4),  # 4.5 (output side)
        (Usage(1000, 0, 0), HALF_MICRO_NANO, 0),  # 0.5
        (Usage(3000, 0, 0), HALF_MICRO_NANO, 2),  # 1.5
        (Usage(999, 0, 0), HALF_MICRO_NANO, 0),  # 0.4995
        (Usage(1001, 0, 0), HALF_MICRO_NANO, 1),  # 0.5005
        (Usage(2999, 0, 0), HALF_MICRO_NANO, 1),  # 1.4995
        # rounded once, on the sum: 0.5 + 0.5 = 1 (rounding each part would give 0)
        (Usage(1000, 0, 1000), HALF_MICRO_NANO, 1),
        (Usage(1, 0, 1), HALF_NANO, 1),
        # cached at 37.5 nUSD: 1 → 37.5 → 38, 3 → 112.5 → 112
        (Usage(1, 1, 0), per_million("1", "1", "0.0375"), 38),
        (Usage(3, 3, 0), per_million("1", "1", "0.0375"), 112),
        # 2 uncached × 0.1 + 1 cached × 0.0001 + 4 out × 0.3 = 1.4001 → 1
        (Usage(3, 1, 4), per_million("0.0001", "0.0003", "0.0000001"), 1),
    ],
)
def test_cost_rounds_fractional_nano_dollars_half_to_even(
    usage: Usage, price: PriceSpec, expected_nusd: int
) -> None:
    assert cost(usage, price) == expected_nusd


@pytest.mark.parametrize(
    ("usage", "expected_nusd"),
    [
        # cached > input is clamped to input: 10 tokens all cached at 100 nUSD
        (Usage(10, 50, 0), 1_000),
        (Usage(10, 10, 0), 1_000),
        (Usage(0, 5, 2), 16_000),  # no input at all: only the output is billed
    ],
)
def test_cached_tokens_beyond_input_are_clamped(usage: Usage, expected_nusd: int) -> None:
    assert cost(usage, per_million("1", "8", "0.10")) == expected_nusd


_prices = st.decimals(min_value=0, max_value=1000, places=9, allow_nan=False, allow_infinity=False)
_tokens = st.integers(min_value=0, max_value=10**8)
_INPUT_PARTS = ("cached_input", "cache_write_5m", "cache_write_1h", "input_audio", "input_image")
_OUTPUT_PARTS = ("reasoning", "output_audio", "output_image")
_COUNTS = {
    "cached_input": "cached_input_tokens",
    "cache_write_5m": "cache_write_5m_tokens",
    "cache_write_1h": "cache_write_1h_tokens",
    "input_audio": "input_audio_tokens",
    "input_image": "input_image_tokens",
    "reasoning": "reasoning_tokens",
    "output_audio": "output_audio_tokens",
    "output_image": "output_image_tokens",
}


@settings(max_examples=300, deadline=None)
@given(
    input_tokens=_tokens,
    output_tokens=_tokens,
    parts=st.fixed_dictionaries({name: _tokens for name in _COUNTS}),
    searches=st.integers(min_value=0, max_value=50),
    input_price=_prices,
    output_price=_prices,
    part_prices=st.fixed_dictionaries({name: st.none() | _prices for name in _COUNTS}),
    fees=st.tuples(st.none() | _prices, st.none() | _prices),
)
def test_cost_equals_half_even_rounding_of_exact_fraction(
    input_tokens: int,
    output_tokens: int,
    parts: dict[str, int],
    searches: int,
    input_price: Decimal,
    output_price: Decimal,
    part_prices: dict[str, Decimal | None],
    fees: tuple[Decimal | None, Decimal | None],
) -> None:
    """An independent computation: each part at its price (a part not priced apart at its
    parent's), taken in order from what is left of its total, the rest at the plain price."""
    named = {name: value for name, value in part_prices.items() if value is not None}
    spec = per_million(
        str(input_price), str(output_price), **named,
        per_request=fees[0], per_web_search=fees[1],
    )  # fmt: skip
    usage = Usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        web_search_requests=searches,
        **{_COUNTS[name]: count for name, count in parts.items()},
    )
    prices = {"input": input_price, "output": output_price}
    for name in (*_INPUT_PARTS, *_OUTPUT_PARTS):
        parent = "cache_write_5m" if name == "cache_write_1h" else (
            "input" if name in _INPUT_PARTS else "output")  # fmt: skip
        prices[name] = named.get(name, prices[parent])
    usd = Fraction(0)
    for total, names, whole in (
        (input_tokens, _INPUT_PARTS, "input"),
        (output_tokens, _OUTPUT_PARTS, "output"),
    ):
        left = total
        for name in names:
            part = min(parts[name], left)
            left -= part
            usd += Fraction(part) * Fraction(prices[name]) / 1_000_000
        usd += Fraction(left) * Fraction(prices[whole]) / 1_000_000
    usd += Fraction(fees[0] or 0) + searches * Fraction(fees[1] or 0)
    assert cost(usage, spec) == round(usd * 10**9)  # Fraction rounds half to even


# --- format_usd / parse_usd --------------------------------------------------------------


@pytest.mark.parametrize(
    ("nusd", "text"),
    [
        (0, "0.000000000"),
        (1, "0.000000001"),
        (999_999_999, "0.999999999"),
        (1_000_000_000, "1.000000000"),
        (1_234_567_891, "1.234567891"),
        (420_000, "0.000420000"),
        (-1, "-0.000000001"),
        (-1_500_000_000, "-1.500000000"),
        (10**18 + 7, "1000000000.000000007"),
    ],
)
def test_format_usd_and_parse_usd_round_trip(nusd: int, text: str) -> None:
    assert format_usd(nusd) == text
    assert parse_usd(text) == nusd


@pytest.mark.parametrize(
    ("value", "nusd"),
    [
        ("1", 1_000_000_000),
        ("0.5", 500_000_000),
        ("-0.25", -250_000_000),
        ("1e-9", 1),
        ("12.100000000", 12_100_000_000),  # trailing zeros beyond 9 decimals are fine
        (5, 5_000_000_000),
        (Decimal("0.000000003"), 3),
    ],
)
def test_parse_usd_accepts_strings_ints_and_decimals(value: str | int | Decimal, nusd: int) -> None:
    assert parse_usd(value) == nusd


@pytest.mark.parametrize("value", ["0.0000000001", "1.0000000005", "-0.1234567891"])
def test_parse_usd_rejects_more_than_9_decimals(value: str) -> None:
    with pytest.raises(ValueError, match="more than 9 decimals"):
        parse_usd(value)


@pytest.mark.parametrize("value", [0.1, 1.0, 0.0])
def test_parse_usd_rejects_float(value: float) -> None:
    with pytest.raises(TypeError, match="never a float"):
        parse_usd(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["abc", "", "Infinity", "-inf", "NaN", "1,5"])
def test_parse_usd_rejects_non_amounts_with_value_error(value: str) -> None:
    with pytest.raises(ValueError, match="not a"):
        parse_usd(value)


# --- prompt-size tiers: the whole request moves to the tier's prices ------------------------

# Anthropic's published long-context rule (claude-sonnet-4-5, docs.anthropic.com/en/docs/
# about-claude/pricing#long-context-pricing): above 200K input tokens (cache reads and
# writes included) input $3 → $6, output $15 → $22.50, cache read $0.30 → $0.60.
SONNET = per_million(
    "3", "15", "0.30", cache_write_5m="3.75", cache_write_1h="6",
    tiers=[{"above_input_tokens": 200_000, "input": "6", "output": "22.5",
            "cached_input": "0.6", "cache_write_5m": "7.5", "cache_write_1h": "12"}],
)  # fmt: skip


@pytest.mark.parametrize(
    ("usage", "expected_nusd"),
    [
        # 200,000 × $3 + 1,000 × $15 = 0.6 + 0.015
        (Usage(200_000, 0, 1_000), 615_000_000),
        # one token more: all 200,001 at $6 and the output at $22.50
        (Usage(200_001, 0, 1_000), 1_222_506_000),
        # the threshold counts cache reads: 50,001 × $6 + 150,000 × $0.60 + 1,000 × $22.5
        (Usage(200_001, 150_000, 1_000), 412_506_000),
        # and cache writes: 100,001 × $6 + 60,000 × $7.5 + 40,000 × $12
        (Usage(200_001, 0, 0, cache_write_5m_tokens=60_000, cache_write_1h_tokens=40_000),
         1_530_006_000),
        # output tokens never move the request to the tier
        (Usage(1_000, 0, 500_000), 7_503_000_000),
    ],
)  # fmt: skip
def test_tier_applies_to_every_token_above_the_threshold(usage: Usage, expected_nusd: int) -> None:
    assert cost(usage, SONNET) == expected_nusd


def test_dimensions_tiered_apart_take_the_tiers_of_each() -> None:
    spec = per_million(
        "1", "2",
        tiers=[{"above_input_tokens": 10, "input": "3"}, {"above_input_tokens": 20, "output": "5"}],
    )  # fmt: skip
    assert cost(Usage(10, 0, 1_000_000), spec) == 2_000_010_000
    assert cost(Usage(11, 0, 1_000_000), spec) == 2_000_033_000  # input tier only
    assert cost(Usage(21, 0, 1_000_000), spec) == 5_000_063_000  # both


# --- service tiers and batch ------------------------------------------------------------------

TIERED = per_million(
    "2", "8", "0.5",
    service_tiers={
        "flex": {"input": "1", "output": "4"},
        "priority": {"input": "3.5", "output": "14", "cached_input": "0.875"},
    },
    batch={"input": "1", "output": "4", "cached_input": "0.25"},
)  # fmt: skip


@pytest.mark.parametrize(
    ("tier", "expected_nusd"),
    [
        (None, 10_000_000_000),
        ("default", 10_000_000_000),  # a tier without prices of its own: the standard
        ("auto", 10_000_000_000),
        ("flex", 5_000_000_000),
        ("priority", 17_500_000_000),
        ("scale", 10_000_000_000),
    ],
)
def test_the_response_service_tier_selects_its_prices(tier: str | None, expected_nusd: int) -> None:
    usage = Usage(1_000_000, 0, 1_000_000, service_tier=tier)
    assert cost(usage, TIERED) == expected_nusd


def test_a_variant_keeps_the_standard_prices_it_does_not_name() -> None:
    # flex names input and output only: its cache reads keep the standard $0.50
    # (as genai-prices resolves variants): 600,000 × $1 + 400,000 × $0.50
    usage = Usage(1_000_000, 400_000, 0, service_tier="flex")
    assert cost(usage, TIERED) == 800_000_000
    assert cost_nusd(Usage(1_000_000, 0, 1_000_000), TIERED, NOW, BATCH) == 5_000_000_000
    # batch wins over whatever tier the response names
    assert cost_nusd(Usage(1_000_000, 0, 0, service_tier="priority"), TIERED, NOW, BATCH) == (
        1_000_000_000
    )


# --- prices on a calendar ----------------------------------------------------------------------

CHANGED = config_spec(
    [
        PriceConfig.model_validate({"input": "1", "output": "1"}),
        PriceConfig.model_validate({"from": "2026-06-01", "input": "2", "output": "2"}),
        PriceConfig.model_validate({"from": date(2026, 9, 1), "input": "0.5", "output": "0.5"}),
    ]
).spec


@pytest.mark.parametrize(
    ("when_ms", "expected_nusd"),
    [
        (ALWAYS_MS, 1_000_000),  # 1,000 tokens at $1/M
        (date_ms(date(2026, 6, 1)) - 1, 1_000_000),  # 23:59:59.999 UTC the day before
        (date_ms(date(2026, 6, 1)), 2_000_000),  # from 00:00 UTC
        (date_ms(date(2026, 8, 31)) + 86_399_999, 2_000_000),
        (date_ms(date(2026, 9, 1)), 500_000),
        (NOW, 500_000),
    ],
)
def test_a_request_is_priced_at_the_price_in_force_when_it_arrived(
    when_ms: int, expected_nusd: int
) -> None:
    assert cost_nusd(Usage(1_000, 0, 0), CHANGED, when_ms) == expected_nusd


def test_the_first_dated_price_also_covers_earlier_requests() -> None:
    spec = config_spec(
        PriceConfig.model_validate({"from": "2026-01-01", "input": "1", "output": "1"})
    )
    assert cost_nusd(Usage(1_000, 0, 0), spec.spec, 0) == 1_000_000


def test_parts_of_the_day_are_utc_windows() -> None:
    off_peak = Rates(TokenRates.flat(1, 1))
    peak = Rates(TokenRates.flat(2, 2))
    spec = PriceSpec((PriceVersion(ALWAYS_MS, (DayPart(0, off_peak), DayPart(3_600_000, peak),
                                               DayPart(7_200_000, off_peak))),))  # fmt: skip
    day = date_ms(date(2026, 12, 1))
    assert [cost_nusd(Usage(10**6, 0, 0), spec, day + ms) for ms in
            (0, 3_599_999, 3_600_000, 7_199_999, 7_200_000, 86_399_999)] == [
        1, 1, 2, 2, 1, 1]  # fmt: skip


# --- fees ----------------------------------------------------------------------------------------


def test_per_request_and_per_search_fees_are_added_before_the_one_rounding() -> None:
    # Perplexity sonar as published (docs.perplexity.ai/guides/pricing, low search context
    # size): $1/M input and output tokens, $5 per 1,000 requests.
    sonar = per_million("1", "1", per_request="0.005")
    assert cost(Usage(1000, 0, 1000), sonar) == 7_000_000  # 0.001 + 0.001 + 0.005
    # Anthropic's web search: $10 per 1,000 searches.
    search = per_million("3", "15", per_web_search="0.01")
    assert cost(Usage(1000, 0, 100, web_search_requests=3), search) == 34_500_000
    # 1 token at 0.5 nUSD + a 1 nUSD fee = 1.5 → 2 (rounded apart: 0 + 1 = 1)
    odd = per_million("0.0005", "0", per_request="0.000000001")
    assert cost(Usage(1, 0, 0), odd) == 2
    assert cost(Usage(3, 0, 0), odd) == 2  # 1.5 + 1 = 2.5 → 2


# --- what a budget reserves -------------------------------------------------------------------


def test_the_bound_is_the_dearest_price_of_any_tier_variant_and_part() -> None:
    assert SONNET.bound(NOW) == PriceBound(12_000_000_000, 22_500_000_000, 0)
    assert TIERED.bound(NOW) == PriceBound(3_500_000_000, 14_000_000_000, 0)
    assert CHANGED.bound(0) == PriceBound(10**9, 10**9, 0)
    assert CHANGED.bound(NOW) == PriceBound(5 * 10**8, 5 * 10**8, 0)
    assert per_million("1", "2", per_request="0.01").bound(NOW).per_request_nusd == 10_000_000


def test_a_spec_needs_ascending_distinct_versions() -> None:
    version = PriceVersion(ALWAYS_MS, (DayPart(0, Rates(TokenRates.flat(1, 1))),))
    with pytest.raises(ValueError, match="ascending"):
        PriceSpec((version, version))
    with pytest.raises(ValueError, match="midnight"):
        PriceVersion(0, (DayPart(5, Rates(TokenRates.flat(1, 1))),))
