"""Why a row differs, in words an operator can act on. Pure.

Each explanation is `{"code", "message"}`; a row lists every one that applies:

- `day_not_covered`: the report does not cover the day (yet), so its figures are partial;
- `not_through_proxy`: the provider billed traffic the proxy has no record of at all;
- `requests_not_recorded`: the provider counted more requests than the proxy recorded;
- `not_in_report`: the proxy recorded traffic the report does not show;
- `estimated_usage`, `unpriced`: records of the proxy whose tokens or cost are not exact;
- `price_mismatch`, `price_missing`: the bill implies a unit price the table does not have;
- `cost_not_split`: the cost report does not say which model this day's cost is for;
- `usage_log_incomplete`: the proxy's request count includes failed requests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal

from proxy.accounting.pricing import format_usd
from proxy.reconcile.figures import Figures, ProxyRow, nusd_of_usd
from proxy.reconcile.report import CHARGE_KINDS, ChargeKind, CostRow, UsageRow

__all__ = ["Explanation", "PriceOf", "explain_prices", "explain_traffic", "per_million"]

Explanation = dict[str, str]
# USD per 1M tokens of a kind of charge for a model, as the price table has it (None: no
# price). See proxy.reconcile.prices.
PriceOf = Callable[[str, ChargeKind], Decimal | None]

_KIND_WORDS: dict[ChargeKind, str] = {
    "input": "input",
    "cached_input": "cached input",
    "cache_write_5m": "5-minute cache write",
    "cache_write_1h": "1-hour cache write",
    "output": "output",
}
_TABLE_MODALITIES = (None, "text")  # cost lines of other modalities have prices of their own


def per_million(price: Decimal) -> str:
    """A price in USD per 1M tokens, to 9 decimals without trailing zeros: "0.165"."""
    text = format(price.quantize(Decimal("1e-9")), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _amounts(figures: Figures) -> str:
    parts = []
    if figures.requests:
        parts.append(f"{figures.requests:,} requests")
    if figures.input_tokens:
        parts.append(f"{figures.input_tokens:,} input tokens")
    if figures.output_tokens:
        parts.append(f"{figures.output_tokens:,} output tokens")
    if figures.cost_nusd:
        parts.append(f"${format_usd(figures.cost_nusd, short=True)}")
    return ", ".join(parts) or "nothing"


def explain_traffic(
    model: str, proxy: ProxyRow | None, provider: Figures, scope: str
) -> list[Explanation]:
    """What the two sides' traffic says, record by record."""
    notes: list[Explanation] = []
    if proxy is None:
        if not provider.is_zero():
            notes.append(
                {
                    "code": "not_through_proxy",
                    "message": f"the provider billed {_amounts(provider)} for {model} that "
                    f"never passed through the proxy: another client of {scope}, or a model "
                    "no route of the config sends there",
                }
            )
        return notes
    if provider.requests is not None and provider.requests > proxy.requests:
        notes.append(
            {
                "code": "requests_not_recorded",
                "message": f"the provider counted {provider.requests - proxy.requests:,} "
                "requests more than the proxy recorded: traffic around the proxy with the "
                "same key or project, or upstream attempts the proxy retried",
            }
        )
    recorded = proxy.requests or proxy.input_tokens or proxy.output_tokens or proxy.cost_nusd
    reported = provider.input_tokens is not None or provider.cost_nusd is not None
    if recorded and reported and provider.is_zero():
        notes.append(
            {
                "code": "not_in_report",
                "message": f"the proxy recorded {proxy.requests:,} requests to {model} "
                "that the report does not show: check the report's project and key "
                "mapping, and the model name",
            }
        )
    if proxy.estimated_requests:
        notes.append(
            {
                "code": "estimated_usage",
                "message": f"{proxy.estimated_requests:,} of the proxy's requests have "
                "estimated usage (the upstream reported none, the proxy counted the tokens "
                "itself)",
            }
        )
    if proxy.unpriced_requests:
        notes.append(
            {
                "code": "unpriced",
                "message": f"{proxy.unpriced_requests:,} of the proxy's requests had no "
                "price in the table: their cost is missing from the proxy's figure",
            }
        )
    if proxy.log_incomplete:
        notes.append(
            {
                "code": "usage_log_incomplete",
                "message": "the proxy's usage log no longer holds every record of this day: "
                "its request count includes requests that failed upstream",
            }
        )
    return notes


def _tokens_of(kind: ChargeKind, usage: Sequence[UsageRow]) -> int:
    if kind == "input":
        return sum(u.uncached_input_tokens for u in usage)
    if kind == "cached_input":
        return sum(u.cached_input_tokens for u in usage)
    if kind == "cache_write_5m":
        return sum(u.cache_write_5m_tokens for u in usage)
    if kind == "cache_write_1h":
        return sum(u.cache_write_1h_tokens for u in usage)
    return sum(u.output_tokens for u in usage)


def _differs(implied: Decimal, table: Decimal, pct: Decimal) -> bool:
    return abs(implied - table) * 100 > pct * table if table else implied != 0


def explain_prices(
    model: str,
    usage: Sequence[UsageRow] | None,
    costs: Sequence[CostRow],
    price_of: PriceOf,
    pct: Decimal,
) -> list[Explanation]:
    """Unit prices the bill implies (its cost of a kind of tokens over their number: the
    line's own quantity where the report gives it, else the usage report's tokens) that
    differ from the table's by more than `pct` percent. Where the costs are not split by
    kind, the row's cost is checked against its tokens at the table's prices."""
    notes: list[Explanation] = []
    split = False
    for kind in CHARGE_KINDS:
        lines = [c for c in costs if c.kind == kind]
        if not lines:
            continue
        split = True
        if any(c.modality not in _TABLE_MODALITIES for c in lines):
            continue  # audio and image tokens have prices of their own
        amount = sum((c.amount_usd for c in lines), Decimal(0))
        quantities = [c.quantity_tokens for c in lines]
        if all(q is not None for q in quantities):
            tokens = sum((q for q in quantities if q is not None), Decimal(0))
        elif usage is not None and len(lines) == 1:
            tokens = Decimal(_tokens_of(kind, usage))
        else:
            continue
        if tokens <= 0:
            continue
        implied = amount * 1_000_000 / tokens
        table = price_of(model, kind)
        words = _KIND_WORDS[kind]
        if table is None:
            if implied:
                notes.append(
                    {
                        "code": "price_missing",
                        "message": f"the table has no {words} price for {model}: the bill "
                        f"implies ${per_million(implied)} per 1M {words} tokens",
                    }
                )
        elif _differs(implied, table, pct):
            notes.append(
                {
                    "code": "price_mismatch",
                    "message": f"the price of {model} looks out of date: the bill implies "
                    f"${per_million(implied)} per 1M {words} tokens, the table says "
                    f"${per_million(table)}",
                }
            )
    if not split and costs and usage:
        notes += _whole_cost(model, usage, costs, price_of, pct)
    return notes


def _whole_cost(
    model: str,
    usage: Sequence[UsageRow],
    costs: Sequence[CostRow],
    price_of: PriceOf,
    pct: Decimal,
) -> list[Explanation]:
    expected = Decimal(0)
    for kind in CHARGE_KINDS:
        tokens = _tokens_of(kind, usage)
        if not tokens:
            continue
        price = price_of(model, kind)
        if price is None:
            return []  # the unpriced explanation says it already, where it applies
        expected += tokens * price / 1_000_000
    billed = sum((c.amount_usd for c in costs), Decimal(0))
    if not _differs(billed, expected, pct):
        return []
    return [
        {
            "code": "price_mismatch",
            "message": f"the bill's cost of {model}, ${format_usd(nusd_of_usd(billed))}, is "
            f"not its tokens at the table's prices, ${format_usd(nusd_of_usd(expected))}: "
            "a price looks out of date (fetch the costs grouped by line item to see which)",
        }
    ]
