"""A genai-prices catalogue as compact, stable JSON: what `costproxy prices diff` compares.

Every model's price-related data (its dated and time-of-day prices, request-context
variants, deprecation), each price as a decimal string, keyed by what it is rather than by
list position, so that two versions compare leaf by leaf. Imports nothing of costproxy:
`python -m proxy.accounting.catalogue_dump` runs against whichever genai-prices is first on
PYTHONPATH, which is how scripts/catalogue_snapshot.py dumps an older version.
"""

from __future__ import annotations

import gzip
import json
import sys
from decimal import Decimal
from typing import Any

__all__ = ["FORMAT", "dump", "read_dump", "write_dump"]

FORMAT = 1


def _value(value: Any) -> str:
    if isinstance(value, Decimal):
        return f"{value.normalize():f}"
    tiers = sorted((tier.start, tier.price) for tier in value.tiers)
    return "; ".join([_value(value.base), *(f">{start}: {_value(p)}" for start, p in tiers)])


def _prices(price: Any) -> dict[str, str]:
    return {
        key: _value(value)
        for key, value in sorted(vars(price).items())
        if value is not None and not key.startswith("_")
    }


def _constraint(constraint: Any) -> str:
    if constraint is None:
        return "always"
    if hasattr(constraint, "start_date"):
        return f"from {constraint.start_date.isoformat()}"
    start, end = constraint.start_time, constraint.end_time
    return f"{start.strftime('%H:%M')}-{end.strftime('%H:%M')} UTC"


def _model(info: Any) -> dict[str, Any]:
    entries = info.prices if isinstance(info.prices, list) else [info.prices]
    prices: dict[str, dict[str, str]] = {}
    for entry in entries:
        price = getattr(entry, "prices", entry)
        prices[_constraint(getattr(entry, "constraint", None))] = _prices(price)
    out: dict[str, Any] = {"prices": prices}
    variants = getattr(info, "price_variants", None) or ()
    if variants:
        named: dict[str, dict[str, str]] = {}
        for variant in variants:
            when = ",".join(f"{k}={v}" for k, v in sorted(variant.when.items()))
            constraint = getattr(variant, "constraint", None)
            label = when if constraint is None else f"{when} {_constraint(constraint)}"
            named[label] = _prices(variant.prices)
        out["variants"] = named
    if getattr(info, "deprecated", False):
        out["deprecated"] = True
    return out


def dump(version: str, providers: list[Any]) -> dict[str, Any]:
    """The catalogue `providers` (genai-prices' bundled list) of `version`."""
    models: dict[str, Any] = {}
    for provider in providers:
        for info in provider.models:
            models.setdefault(f"{provider.id}/{info.id}", _model(info))
    return {"format": FORMAT, "package": "genai-prices", "version": version, "models": models}


def write_dump(data: dict[str, Any], path: str) -> None:
    """Gzipped JSON, byte-identical for identical data (no timestamp in the header)."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    with open(path, "wb") as out:
        out.write(gzip.compress(text, compresslevel=9, mtime=0))


def read_dump(path: str) -> dict[str, Any]:
    with open(path, "rb") as raw:
        data = json.loads(gzip.decompress(raw.read()))
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{path} is not a catalogue dump of format {FORMAT}")
    return data


if __name__ == "__main__":
    # Whichever genai-prices is first on PYTHONPATH: imported here, when run as a script.
    import genai_prices
    from genai_prices.data import providers

    json.dump(dump(genai_prices.__version__, providers), sys.stdout, sort_keys=True)
