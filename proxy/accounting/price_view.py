"""A price as people read it: the one that applies now, each dimension in USD per 1M
tokens, its source and its dates. Pure; the admin API (GET /admin/v1/prices) and
`costproxy prices` print the same JSON.
"""

from __future__ import annotations

from dataclasses import fields
from decimal import Decimal
from importlib import metadata
from typing import Any

from proxy.accounting.price_book import PriceSource, ResolvedPrice, Unpriced
from proxy.accounting.pricing import (
    ALWAYS_MS,
    DayPart,
    PriceSpec,
    PriceVersion,
    Rates,
    TokenRates,
    format_usd_short,
)
from proxy.utc import iso_utc

__all__ = ["catalogue_version", "price_entry", "usd_per_mtok"]

_DIMENSIONS = tuple(f.name for f in fields(TokenRates))


def catalogue_version() -> str | None:
    """The installed genai-prices version (read from its metadata: no import)."""
    try:
        return metadata.version("genai-prices")
    except metadata.PackageNotFoundError:
        return None


def usd_per_mtok(fusd_per_token: int) -> str:
    """Femto-dollars per token → USD per 1M tokens, shortest exact form ("2.5", "10")."""
    return f"{Decimal(fusd_per_token).scaleb(-9).normalize():f}"


def _tokens(rates: TokenRates) -> dict[str, str]:
    return {name: usd_per_mtok(getattr(rates, name)) for name in _DIMENSIONS}


def _rates(rates: Rates) -> dict[str, Any]:
    return {
        "usd_per_mtok": _tokens(rates.base),
        "tiers": [
            {"above_input_tokens": above, "usd_per_mtok": _tokens(tier)}
            for above, tier in rates.tiers
        ],
        "per_request_usd": format_usd_short(rates.per_request_nusd),
        "per_web_search_usd": format_usd_short(rates.per_web_search_nusd),
    }


def _from(version: PriceVersion) -> str | None:
    return None if version.from_ms == ALWAYS_MS else iso_utc(version.from_ms)[:10]


def _part(part: DayPart) -> dict[str, Any]:
    seconds = part.start_ms // 1000
    return {
        "from_utc": f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}",
        "standard": _rates(part.standard),
        "variants": {name: _rates(rates) for name, rates in part.variants},
    }


def _version(version: PriceVersion) -> dict[str, Any]:
    return {"from": _from(version), "day_parts": [_part(p) for p in version.parts]}


def _source(source: PriceSource) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": source.kind, "key": source.key}
    match = source.catalogue
    if match is not None:
        out |= {
            "catalogue": f"genai-prices {source.catalogue_version}",
            "catalogue_provider": match.provider_id,
            "catalogue_model": match.model_id,
            "matched_by": match.via,
            "deprecated": match.deprecated,
            "not_billed": list(match.not_billed),
            "rounded": list(source.inexact),
        }
    return out


def price_entry(answer: ResolvedPrice | Unpriced, now_ms: int) -> dict[str, Any]:
    """One price: the one in force at `now_ms` (its version and part of the day), and
    every dated version."""
    if isinstance(answer, Unpriced):
        return {"priced": False, "reason": answer.reason}
    spec: PriceSpec = answer.spec
    version = spec.version(now_ms)
    part = version.part(now_ms)
    return {
        "priced": True,
        "source": _source(answer.source),
        "now": {"from": _from(version), **_part(part)},
        "versions": [_version(v) for v in spec.versions],
    }
