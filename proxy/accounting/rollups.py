"""What the console reads besides the spend API's rows: per-customer totals over a range,
ranked; recent usage records, a page at a time. Value types only."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from proxy.accounting.records import Totals, UsageRecord

__all__ = ["RANK_BY", "CustomerRanking", "CustomerTotals", "RankBy", "RecentPage", "rank_value"]

# What a customer list can be ordered by: spend, requests, tokens (input + output), name.
RankBy = Literal["cost", "requests", "tokens", "customer"]
RANK_BY: tuple[RankBy, ...] = ("cost", "requests", "tokens", "customer")


def rank_value(totals: Totals, by: RankBy) -> int:
    if by == "cost":
        return totals.cost_nusd
    if by == "requests":
        return totals.requests
    return totals.input_tokens + totals.output_tokens


@dataclass(slots=True)
class CustomerTotals:
    customer: str
    totals: Totals = field(default_factory=Totals)


@dataclass(slots=True)
class CustomerRanking:
    """One page of customers with traffic in a range, and how many there are in all."""

    rows: list[CustomerTotals]
    count: int


@dataclass(slots=True)
class RecentPage:
    """Usage records, newest first. `next_cursor` continues further back (None: no more);
    a page may hold fewer records than asked when a filter is rare (each page reads a
    bounded number of records, so no page scans the whole log)."""

    records: list[UsageRecord]
    next_cursor: str | None
