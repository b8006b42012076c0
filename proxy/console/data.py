"""Where the console's figures come from: the spend API's own summing (`summarize`) over
the store's aggregate rows, the key and budget services, and the console's store reads.
No page scans the usage log; no figure is computed twice in two ways."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from proxy.accounting.records import AggregateRow, Totals
from proxy.accounting.rollups import CustomerRanking, RankBy
from proxy.accounting.spend import SpendQuery, summarize, summarize_what_if
from proxy.admin.prices import prices_report
from proxy.budgets.book import BudgetBook, scope
from proxy.budgets.rules import BudgetRule
from proxy.budgets.service import rules_of
from proxy.console.core import PageError
from proxy.state import ProxyState, Snapshot
from proxy.store.base import Store

__all__ = [
    "MAX_DAYS",
    "CustomerView",
    "Overview",
    "PriceRow",
    "budget_used",
    "customer_view",
    "day_series",
    "overview",
    "parse_range",
    "price_rows",
    "ranked_customers",
    "today_utc",
]

MAX_DAYS = 366
_HOUR_MS = 3_600_000


def today_utc() -> date:
    return datetime.now(UTC).date()


def parse_range(params: Mapping[str, str], *, default_days: int = 30) -> tuple[date, date]:
    """`from`/`to` (UTC days, inclusive); by default the last `default_days` days."""
    try:
        to_day = date.fromisoformat(params["to"]) if params.get("to") else today_utc()
        from_day = (
            date.fromisoformat(params["from"])
            if params.get("from")
            else to_day - timedelta(days=default_days - 1)
        )
    except ValueError:
        raise PageError(400, "Days are written like 2026-11-28.") from None
    if to_day < from_day:
        raise PageError(400, f"The range ends ({to_day}) before it starts ({from_day}).")
    if (to_day - from_day).days >= MAX_DAYS:
        raise PageError(400, f"A range covers at most {MAX_DAYS} days.")
    return from_day, to_day


def day_series(
    rows: Sequence[AggregateRow], by: str
) -> tuple[dict[str, dict[str, int]], list[tuple[str, str, int]]]:
    """Cost per (by value, day) for a chart, and the (provider, model, requests) that had
    no price: those requests' cost is unknown, so they are listed, never drawn as $0."""
    series: dict[str, dict[str, int]] = {}
    unpriced: dict[tuple[str, str], int] = {}
    for row in rows:
        name = row.provider if by == "provider" else row.model
        days = series.setdefault(name, {})
        days[row.day] = days.get(row.day, 0) + row.totals.cost_nusd
        if row.totals.unpriced_requests:
            key = (row.provider, row.model)
            unpriced[key] = unpriced.get(key, 0) + row.totals.unpriced_requests
    return series, sorted((p, m, n) for (p, m), n in unpriced.items())


@dataclass(slots=True)
class Overview:
    answer: dict  # the spend API's answer for the range, grouped by model or provider
    series: dict[str, dict[str, int]]
    unpriced: list[tuple[str, str, int]]
    today: Totals
    month: Totals
    last_hour: Totals
    top: CustomerRanking
    what_if: dict | None


def _sum(rows: Sequence[AggregateRow], first: str, last: str) -> Totals:
    totals = Totals()
    for row in rows:
        if first <= row.day <= last:
            totals.add(row.totals)
    return totals


async def overview(
    state: ProxyState, from_day: date, to_day: date, by: str, now_ms: int
) -> Overview:
    store = state.store
    query = SpendQuery(customer=None, from_day=from_day, to_day=to_day, group_by=(by,))
    rows = await store.global_rows(from_day=from_day, to_day=to_day)
    series, unpriced = day_series(rows, by)
    today = today_utc()
    recent = await store.global_rows(from_day=today.replace(day=1), to_day=today)
    what_if_rows = await store.global_what_if_rows(from_day=from_day, to_day=to_day)
    return Overview(
        answer=summarize(query, rows),
        series=series,
        unpriced=unpriced,
        today=_sum(recent, today.isoformat(), today.isoformat()),
        month=_sum(recent, today.replace(day=1).isoformat(), today.isoformat()),
        last_hour=await store.minute_totals(from_ms=now_ms - _HOUR_MS, to_ms=now_ms),
        top=await store.rank_customers(from_day=from_day, to_day=to_day, limit=10),
        what_if=(
            summarize_what_if(SpendQuery(None, from_day, to_day), what_if_rows)
            if what_if_rows
            else None
        ),
    )


async def budget_used(store: Store, book: BudgetBook, customers: Sequence[str]) -> dict[str, float]:
    """The highest share of a limit each customer has spent in its current periods (one
    store call for all of them); customers without a budget are absent."""
    counters: list[tuple[str, str, BudgetRule]] = []
    for customer in customers:
        scope_text = scope("customer", customer)
        counters += [(customer, scope_text, rule) for rule in rules_of(book, scope_text)]
    if not counters:
        return {}
    states = await store.budget_states([(s, rule.period) for _, s, rule in counters])
    used: dict[str, float] = {}
    for (customer, _, rule), counter in zip(counters, states, strict=True):
        share = counter.spent_nusd / rule.limit_nusd if rule.limit_nusd else 1.0
        used[customer] = max(used.get(customer, 0.0), share)
    return used


async def ranked_customers(
    state: ProxyState,
    from_day: date,
    to_day: date,
    *,
    by: RankBy,
    descending: bool,
    search: str | None,
    offset: int,
    limit: int,
) -> tuple[CustomerRanking, Totals]:
    """A page of customers, and the range's total over every customer (the spend API's)."""
    ranking = await state.store.rank_customers(
        from_day=from_day,
        to_day=to_day,
        by=by,
        descending=descending,
        search=search,
        offset=offset,
        limit=limit,
    )
    rows = await state.store.global_rows(from_day=from_day, to_day=to_day)
    return ranking, _sum(rows, from_day.isoformat(), to_day.isoformat())


@dataclass(slots=True)
class CustomerView:
    total: dict
    by_day_model: dict
    by_model: dict
    by_tag: dict
    by_end_user: dict
    what_if: dict | None = None
    extra: dict = field(default_factory=dict)


async def customer_view(store: Store, customer: str, from_day: date, to_day: date) -> CustomerView:
    """The spend API's answers for one customer, each breakdown read from the store once
    and summed by the same function as GET /admin/v1/spend."""
    # Read at once: one store's round trips overlap with the parsing of another's answer.
    base, tags, users, what_if_rows = await asyncio.gather(
        store.aggregate_rows(
            customer=customer, from_day=from_day, to_day=to_day, breakdown="base"
        ),
        store.aggregate_rows(customer=customer, from_day=from_day, to_day=to_day, breakdown="tag"),
        store.aggregate_rows(
            customer=customer, from_day=from_day, to_day=to_day, breakdown="end_user"
        ),
        store.what_if_rows(customer=customer, from_day=from_day, to_day=to_day),
    )

    def answer(*group_by: str, breakdown: list[AggregateRow] | None = None) -> dict:
        query = SpendQuery(customer, from_day, to_day, tuple(group_by))
        return summarize(query, base, breakdown)

    return CustomerView(
        total=answer(),
        by_day_model=answer("day", "model"),
        by_model=answer("model"),
        by_tag=answer("tag", breakdown=tags),
        by_end_user=answer("end_user", breakdown=users),
        what_if=(
            summarize_what_if(SpendQuery(customer, from_day, to_day), what_if_rows)
            if what_if_rows
            else None
        ),
    )


@dataclass(frozen=True, slots=True)
class PriceRow:
    routes: tuple[str, ...]
    provider: str
    model: str
    usd_per_mtok: Mapping[str, str] | None  # the standard price now; None: unpriced
    source: str  # "config", "genai-prices <version>", or why there is no price


def price_rows(snapshot: Snapshot, now_ms: int) -> list[PriceRow]:
    """The price that applies to each route target now, and where it comes from: the
    same entries as GET /admin/v1/prices (the one place the prices page reads)."""
    report = prices_report(snapshot.routes, snapshot.providers, snapshot.prices, now_ms)
    rows = []
    for entry in report["targets"]:
        if not entry["priced"]:
            rates, source = None, entry["reason"]
        else:
            rates = entry["now"]["standard"]["usd_per_mtok"]
            found = entry["source"]
            source = found.get("catalogue") or found["kind"]
        rows.append(
            PriceRow(tuple(entry["routes"]), entry["provider"], entry["model"], rates, source)
        )
    return rows
