"""Spend read from the store: the answers of the spend API and `costproxy report`."""

from __future__ import annotations

from proxy.accounting.spend import SpendQuery, summarize, summarize_what_if
from proxy.store.base import Store

__all__ = ["query_spend"]


async def query_spend(store: Store, query: SpendQuery) -> dict:
    """The spend answer for `query` (callers first flush this instance's own writes)."""
    base = await store.aggregate_rows(
        customer=query.customer, from_day=query.from_day, to_day=query.to_day, breakdown="base"
    )
    breakdown = None
    if query.breakdown != "base":
        breakdown = await store.aggregate_rows(
            customer=query.customer,
            from_day=query.from_day,
            to_day=query.to_day,
            breakdown=query.breakdown,
        )
    answer = summarize(query, base, breakdown)
    if query.what_if:
        rows = await store.what_if_rows(
            customer=query.customer, from_day=query.from_day, to_day=query.to_day
        )
        answer["what_if"] = summarize_what_if(query, rows)
    return answer
