"""A budget created mid-period counts the period's spend so far.

A budget counter only sees the requests settled while the budget exists. When a budget is
set at run time, or appears in the config at start or on a reload, its counters are raised
to at least what the usage aggregates hold for the scope in the current period (by
request arrival day, UTC). The store applies `spent = max(spent, floor)` atomically, so
seeding twice, or racing requests that settle meanwhile, never counts a cost twice; what
it can miss is a request still in flight when the floor is read.

Key budgets are not seeded: the aggregates have no key dimension, so a key budget counts
from its creation. The floor of a `total` budget covers the store's retention window.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from proxy.accounting.records import AggregateRow, Breakdown
from proxy.budgets.book import BudgetBook, Rules, parse_scope, scope
from proxy.budgets.rules import Period, Seed, period_id
from proxy.store.base import Store

__all__ = ["SpendSource", "floors", "period_window", "seed_scopes", "spend_source"]

log = logging.getLogger("costproxy.budgets")
_MS_PER_DAY = 86_400_000
_EPOCH = date(1970, 1, 1)


@dataclass(frozen=True, slots=True)
class SpendSource:
    """Which aggregate rows hold a scope's spend: `customer` None reads every customer;
    `dim` is the tag or end user a row must carry (None: every row)."""

    customer: str | None
    breakdown: Breakdown
    dim: str | None = None


def spend_source(scope_text: str) -> SpendSource | None:
    """Where a scope's past spend is kept; None when the aggregates do not have it."""
    kind, names = parse_scope(scope_text)
    if kind == "customer":
        return SpendSource(names[0], "base")
    if kind == "end_user":
        return SpendSource(names[0], "end_user", names[1])
    if kind == "tag":
        return SpendSource(None, "tag", names[0])
    if kind == "global":
        return SpendSource(None, "base")
    return None  # key: no key dimension; end_users: a template, seeded per end user


def period_window(period: Period, now_ms: int, history_days: int) -> tuple[str, date, date]:
    """(period id, first day, today) of the period containing `now_ms`."""
    today = _EPOCH + timedelta(days=now_ms // _MS_PER_DAY)
    pid = period_id(period, now_ms)
    if period == "total":
        return pid, today - timedelta(days=history_days), today
    if period == "monthly":
        return pid, date.fromisoformat(pid + "-01"), today
    return pid, date.fromisoformat(pid), today  # daily, weekly: the id is the first day


def _periods(rules: Rules) -> list[Period]:
    return sorted({rule.period for rule in rules})


def floors(
    rows: Iterable[AggregateRow], periods: Sequence[Period], now_ms: int, history_days: int
) -> dict[tuple[str | None, Period], int]:
    """Spend per (dim, period) of rows read for the widest of `periods`."""
    windows = {p: period_window(p, now_ms, history_days) for p in periods}
    spent: dict[tuple[str | None, Period], int] = defaultdict(int)
    for row in rows:
        day = date.fromisoformat(row.day)
        for period, (_, first, last) in windows.items():
            if first <= day <= last:
                spent[(row.dim, period)] += row.totals.cost_nusd
    return spent


async def _read(
    store: Store, source: SpendSource, periods: Sequence[Period], now_ms: int, history_days: int
) -> dict[tuple[str | None, Period], int]:
    first = min(period_window(p, now_ms, history_days)[1] for p in periods)
    last = period_window(periods[0], now_ms, history_days)[2]
    rows = await store.aggregate_rows(
        customer=source.customer, from_day=first, to_day=last, breakdown=source.breakdown
    )
    return floors(rows, periods, now_ms, history_days)


async def _seeds_of(
    store: Store, book: BudgetBook, scope_text: str, now_ms: int, history_days: int
) -> list[Seed]:
    rules = book.effective.get(scope_text, ())
    periods = _periods(rules)
    if not periods:
        return []
    kind, names = parse_scope(scope_text)
    if kind == "end_users":  # every end user of the customer with spend, unless overridden
        customer = names[0]
        spent = await _read(store, SpendSource(customer, "end_user"), periods, now_ms, history_days)
        return [
            Seed(scope("end_user", customer, user), period, period_id(period, now_ms), amount)
            for (user, period), amount in sorted(spent.items(), key=str)
            if user and amount and scope("end_user", customer, user) not in book.effective
        ]
    source = spend_source(scope_text)
    if source is None:
        return []
    spent = await _read(store, source, periods, now_ms, history_days)
    return [
        Seed(scope_text, period, period_id(period, now_ms), spent.get((source.dim, period), 0))
        for period in periods
    ]


async def seed_scopes(
    store: Store,
    book: BudgetBook,
    scopes: Iterable[str],
    history_days: int,
    now_ms: int | None = None,
) -> list[Seed]:
    """Raise the counters of `scopes` (under `book`'s rules) to the period's spend so far;
    the seeds sent (zero floors are skipped: a counter starts at zero anyway). `now_ms`
    is for tests: by default the store applies a seed only if its own clock is still in
    the seed's period."""
    clock = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    seeds = []
    for scope_text in scopes:
        seeds += [s for s in await _seeds_of(store, book, scope_text, clock, history_days)
                  if s.floor_nusd > 0]  # fmt: skip
    if seeds:
        await store.seed_budget_spent(seeds, now_ms)
        log.info(
            "budgets created mid-period count the spend so far: %s",
            ", ".join(f"{s.scope} {s.period} {s.floor_nusd} nUSD" for s in seeds),
        )
    return seeds
