"""The config's `prices:` entries as price sheets and specs. Pure.

An entry is complete: what it leaves out costs its parent's price (see
`config.TokenPricesConfig`), never the catalogue's. A list of entries is a price's history:
each applies from its `from:` date (00:00 UTC) until the next; the earliest also covers
any earlier request.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from datetime import date

from proxy.accounting.price_sheets import BuiltSpec, Schedule, Sheet, SheetPart, SheetVersion
from proxy.accounting.price_sheets import build_spec as build_from_sheets
from proxy.accounting.pricing import ALWAYS_MS
from proxy.config import PriceConfig, PriceVariantConfig, price_entries

__all__ = ["config_spec", "date_ms", "sheet_of"]


def date_ms(day: date) -> int:
    """00:00 UTC of `day`, in epoch milliseconds."""
    return calendar.timegm(day.timetuple()) * 1000


def sheet_of(prices: PriceVariantConfig) -> Sheet:
    """What an entry (or a variant) names: each dimension's base and its tiers, and fees.
    Raises ValueError when a tier names a dimension whose base price is not given."""
    named = prices.named_token_prices()
    tokens: dict[str, Schedule] = {}
    tiered = {name for tier in prices.tiers for name in tier.named_token_prices()}
    for name in tiered - named.keys():
        raise ValueError(
            f"a tier prices {name} but the entry gives no base {name} price (add {name}: ...)"
        )
    for name, base in named.items():
        steps = tuple(
            (tier.above_input_tokens, value)
            for tier in prices.tiers
            if (value := getattr(tier, name)) is not None
        )
        tokens[name] = Schedule(base, steps)
    return Sheet(tokens, prices.per_request, prices.per_web_search)


def _version(entry: PriceConfig) -> SheetVersion:
    standard = sheet_of(entry)
    variants = {name: standard.overlay(sheet_of(v)) for name, v in entry.service_tiers.items()}
    if entry.batch is not None:
        variants["batch"] = standard.overlay(sheet_of(entry.batch))
    from_ms = ALWAYS_MS if entry.from_ is None else date_ms(entry.from_)
    return SheetVersion(from_ms, (SheetPart(0, standard, variants),))


def config_spec(value: PriceConfig | Sequence[PriceConfig]) -> BuiltSpec:
    """The spec of one `prices:` value. Config prices have at most 9 decimals (the config
    rejects more), so the conversion is exact."""
    entries = price_entries(value if isinstance(value, PriceConfig) else list(value))
    return build_from_sheets([_version(entry) for entry in entries])
