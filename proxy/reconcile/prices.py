"""The price table's unit prices, as the reconciliation reads them: the one place that
knows how the table is kept (so a richer table changes only this module). Pure."""

from __future__ import annotations

from decimal import Decimal

from proxy.accounting.pricing import PriceTable
from proxy.reconcile.explain import PriceOf
from proxy.reconcile.report import ChargeKind

__all__ = ["table_prices"]

_FUSD_PER_USD_PER_MTOK = Decimal(10**9)  # femto-dollars per token of $1 per 1M tokens


def table_prices(prices: PriceTable, namespace: str) -> PriceOf:
    """USD per 1M tokens of each kind of charge, for the models of one price namespace;
    None where the table has no such price (it keeps no cache-write prices yet)."""

    def price_of(model: str, kind: ChargeKind) -> Decimal | None:
        price = prices.lookup(namespace, model)  # a dated snapshot falls back to its base
        if price is None:
            return None
        fusd = {
            "input": price.input_fusd,
            "cached_input": price.cached_input_fusd,
            "output": price.output_fusd,
        }.get(kind)
        return None if fusd is None else Decimal(fusd) / _FUSD_PER_USD_PER_MTOK

    return price_of
