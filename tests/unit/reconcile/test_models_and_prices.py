"""Which row a report's model name belongs to, and the table's prices as the comparison
reads them."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from proxy.accounting.config_prices import date_ms
from proxy.accounting.price_book import PriceBook
from proxy.config import PriceConfig
from proxy.reconcile.models import match_models, undated
from proxy.reconcile.prices import table_prices


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("gpt-4o-mini", "gpt-4o-mini"),
        ("claude-3-5-sonnet-latest", "claude-3-5-sonnet-latest"),
        ("o1-2024-12-17", "o1"),
        ("model-2024", "model-2024"),
    ],
)
def test_undated(name: str, expected: str) -> None:
    assert undated(name) == expected


def test_match_models() -> None:
    recorded = {"gpt-4o-mini", "gpt-4o-2024-08-06", "claude-sonnet-4-5"}
    report = [
        "gpt-4o-mini-2024-07-18",  # the alias the proxy recorded
        "gpt-4o-2024-08-06",  # recorded under its dated name: exact
        "gpt-4o-2024-05-13",  # another snapshot whose alias the proxy never recorded
        "claude-sonnet-4-5-20250929",
        "ft:gpt-4o-2024-08-06:org:name:id",
    ]
    assert match_models(recorded, report) == {
        "gpt-4o-mini-2024-07-18": "gpt-4o-mini",
        "gpt-4o-2024-08-06": "gpt-4o-2024-08-06",
        "gpt-4o-2024-05-13": "gpt-4o-2024-05-13",
        "claude-sonnet-4-5-20250929": "claude-sonnet-4-5",
        "ft:gpt-4o-2024-08-06:org:name:id": "ft:gpt-4o-2024-08-06:org:name:id",
    }


def test_table_prices() -> None:
    book = PriceBook(
        {
            "acme/gpt-4o-mini": PriceConfig(
                input=Decimal("0.15"), output=Decimal("0.6"), cached_input=Decimal("0.075")
            )
        }
    )
    price_of = table_prices(book, "acme", date_ms(date(2026, 12, 1)))
    assert price_of("gpt-4o-mini", "input") == Decimal("0.15")
    assert price_of("gpt-4o-mini-2024-07-18", "cached_input") == Decimal("0.075")
    assert price_of("gpt-4o-mini", "output") == Decimal("0.6")
    assert price_of("gpt-4o-mini", "cache_write_5m") == Decimal("0.15")  # no price apart: input
    assert price_of("no-such-model", "input") is None


def test_table_prices_of_the_catalogue() -> None:
    # Anthropic's published prices for Claude Sonnet 4.5: $3 input, $3.75 5-minute and $6
    # 1-hour cache writes, $0.30 cache reads, $15 output per 1M tokens.
    price_of = table_prices(PriceBook({}), "anthropic", date_ms(date(2026, 12, 1)))
    assert [price_of("claude-sonnet-4-5-20250929", kind) for kind in
            ("input", "cache_write_5m", "cache_write_1h", "cached_input", "output")] == [
        Decimal(p) for p in ("3", "3.75", "6", "0.3", "15")]  # fmt: skip
