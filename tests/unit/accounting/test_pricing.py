"""proxy.accounting.pricing: the cost formula, exact rounding, USD strings and the price table."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.accounting.pricing import (
    Price,
    PriceTable,
    cost_nusd,
    format_usd,
    load_bundled_prices,
    parse_usd,
)
from proxy.accounting.records import Usage
from proxy.config import PriceConfig
from tests.support.procs import REPO

ROOT = REPO


def per_million(input: str, output: str, cached_input: str | None = None) -> Price:
    return Price.per_million(
        Decimal(input), Decimal(output), None if cached_input is None else Decimal(cached_input)
    )


# --- Price: USD per 1M tokens → femto-dollars per token ----------------------------------


@pytest.mark.parametrize(
    ("input", "output", "cached_input", "expected"),
    [
        ("0.15", "0.60", "0.075", Price(150_000_000, 75_000_000, 600_000_000)),
        ("2.50", "10", None, Price(2_500_000_000, 2_500_000_000, 10_000_000_000)),
        ("0", "0", "0", Price(0, 0, 0)),
        ("0.000000001", "0.000000002", None, Price(1, 1, 2)),  # 9 decimals: 1 fUSD/token
        ("1000", "0.0000005", "0.1", Price(10**12, 10**8, 500)),
    ],
)
def test_price_per_million_is_exact_in_femto_dollars(
    input: str, output: str, cached_input: str | None, expected: Price
) -> None:
    assert per_million(input, output, cached_input) == expected


@pytest.mark.parametrize(
    ("input", "output", "cached_input"),
    [
        ("0.0000000001", "1", None),  # 10 decimals
        ("1", "0.1234567891", None),
        ("1", "1", "0.00000000005"),
        ("-0.01", "1", None),
        ("1", "-1", None),
        ("1", "1", "-0.5"),
    ],
)
def test_price_with_more_than_9_decimals_or_negative_is_rejected(
    input: str, output: str, cached_input: str | None
) -> None:
    with pytest.raises(ValueError, match="at most 9 decimals"):
        per_million(input, output, cached_input)


def test_price_from_config_defaults_cached_input_to_input() -> None:
    config = PriceConfig(input=Decimal("2"), output=Decimal("8"))
    assert Price.from_config(config) == Price(2 * 10**9, 2 * 10**9, 8 * 10**9)


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
def test_cost_formula(usage: Usage, price: Price, expected_nusd: int) -> None:
    assert cost_nusd(usage, price) == expected_nusd


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
    usage: Usage, price: Price, expected_nusd: int
) -> None:
    assert cost_nusd(usage, price) == expected_nusd


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
    assert cost_nusd(usage, per_million("1", "8", "0.10")) == expected_nusd


_prices = st.decimals(min_value=0, max_value=1000, places=9, allow_nan=False, allow_infinity=False)
_tokens = st.integers(min_value=0, max_value=10**8)


@settings(max_examples=300, deadline=None)
@given(
    input_tokens=_tokens,
    cached=_tokens,
    output_tokens=_tokens,
    reasoning=_tokens,
    input_price=_prices,
    output_price=_prices,
    cached_price=st.none() | _prices,
)
def test_cost_equals_half_even_rounding_of_exact_fraction(
    input_tokens: int,
    cached: int,
    output_tokens: int,
    reasoning: int,
    input_price: Decimal,
    output_price: Decimal,
    cached_price: Decimal | None,
) -> None:
    price = Price.per_million(input_price, output_price, cached_price)
    usage = Usage(input_tokens, cached, output_tokens, reasoning)
    billed_cached = min(cached, input_tokens)
    usd = (
        (input_tokens - billed_cached) * Fraction(input_price)
        + billed_cached * Fraction(input_price if cached_price is None else cached_price)
        + output_tokens * Fraction(output_price)
    ) / 1_000_000
    assert cost_nusd(usage, price) == round(usd * 10**9)  # Fraction rounds half to even


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


# --- PriceTable ----------------------------------------------------------------------------

BUNDLED_GPT_4O_MINI = Price(150_000_000, 75_000_000, 600_000_000)
BUNDLED_GPT_4O = Price(2_500_000_000, 1_250_000_000, 10_000_000_000)


@pytest.mark.parametrize(
    ("namespace", "model", "expected"),
    [
        ("openai", "gpt-4o-mini", BUNDLED_GPT_4O_MINI),
        ("openai", "gpt-4o-mini-2024-07-18", BUNDLED_GPT_4O_MINI),
        ("openai", "gpt-4o-2024-08-06", BUNDLED_GPT_4O),
        ("openai", "gpt-4o", BUNDLED_GPT_4O),
        ("openai", "gpt-4o-mini-high", None),  # not a date suffix
        ("openai", "gpt-4o-mini-2024-07", None),  # incomplete date
        ("openai", "no-such-model-2024-07-18", None),
        ("nowhere", "gpt-4o-mini", None),
        (
            "together",
            "meta-llama/Llama-3.3-70B-Instruct-Turbo",
            Price(880_000_000, 880_000_000, 880_000_000),
        ),
    ],
)
def test_bundled_price_lookup(namespace: str, model: str, expected: Price | None) -> None:
    assert PriceTable.build({}).lookup(namespace, model) == expected


def test_exact_dated_entry_wins_over_its_base_model() -> None:
    table = PriceTable(
        {
            "p/m": per_million("1", "1"),
            "p/m-2025-01-01": per_million("2", "2"),
        }
    )
    assert table.lookup("p", "m-2025-01-01") == Price(2 * 10**9, 2 * 10**9, 2 * 10**9)
    assert table.lookup("p", "m-2025-02-02") == Price(10**9, 10**9, 10**9)


def test_config_override_wins_over_bundled_table() -> None:
    overrides = {
        "openai/gpt-4o-mini": PriceConfig(input=Decimal("1"), output=Decimal("2")),
        "local/llama": PriceConfig(
            input=Decimal("0.000000001"), output=Decimal("0"), cached_input=Decimal("0")
        ),
    }
    table = PriceTable.build(overrides)
    assert table.lookup("openai", "gpt-4o-mini") == Price(10**9, 10**9, 2 * 10**9)
    assert table.lookup("openai", "gpt-4o-mini-2024-07-18") == Price(10**9, 10**9, 2 * 10**9)
    assert table.lookup("local", "llama") == Price(1, 0, 0)
    assert table.lookup("openai", "gpt-4o") == BUNDLED_GPT_4O  # the rest is untouched
    assert len(table) == len(PriceTable.build({})) + 1
    assert "local/llama" in table
    assert "local/other" not in table


def test_bundled_table_loads_with_valid_entries() -> None:
    prices = load_bundled_prices()
    assert len(prices) >= 20
    for key, price in prices.items():
        namespace, _, model = key.partition("/")
        assert namespace and model, key
        assert price.input_fusd >= 0, key
        assert price.cached_input_fusd >= 0, key
        assert price.output_fusd >= 0, key
        assert price.cached_input_fusd <= price.input_fusd, key  # a cache hit never costs more


def test_shipped_config_prices_file_matches_the_bundled_one() -> None:
    # config/costproxy.yaml tells operators the bundled table is config/prices.yaml.
    bundled = (ROOT / "proxy" / "data" / "prices.yaml").read_bytes()
    assert (ROOT / "config" / "prices.yaml").read_bytes() == bundled


@pytest.mark.parametrize("value", ["abc", "", "Infinity", "-inf", "NaN", "1,5"])
def test_parse_usd_rejects_non_amounts_with_value_error(value: str) -> None:
    with pytest.raises(ValueError, match="not a"):
        parse_usd(value)
