"""The unit prices the reconciliation explains differences with: the one place that knows
how prices are kept (see accounting.price_book). Pure but for the catalogue, which the
price book loads on first use."""

from __future__ import annotations

from decimal import Decimal

from proxy.accounting.price_book import PriceBook, ResolvedPrice
from proxy.reconcile.explain import PriceOf
from proxy.reconcile.report import ChargeKind

__all__ = ["table_prices"]

_FUSD_PER_USD_PER_MTOK = Decimal(10**9)  # femto-dollars per token of $1 per 1M tokens


def table_prices(
    prices: PriceBook,
    namespace: str,
    when_ms: int,
    base_url: str | None = None,
    kind: str | None = None,
) -> PriceOf:
    """USD per 1M tokens of each kind of charge, for the models of one provider (config
    first, then the catalogue), at the standard prices in force at `when_ms` below any
    prompt-size tier; None where the model has no price."""

    def price_of(model: str, charge: ChargeKind) -> Decimal | None:
        # A report names models the routes may not: a one-off question to the book.
        answer = prices.resolve(namespace, model, base_url, kind, remember=False)
        if not isinstance(answer, ResolvedPrice):
            return None
        fusd = getattr(answer.spec.rates(when_ms).base, charge)
        return Decimal(fusd) / _FUSD_PER_USD_PER_MTOK

    return price_of
