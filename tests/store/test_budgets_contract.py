"""The budget part of the Store contract, run against every store implementation.

Times are explicit (`now_ms`): period rollover and hold expiry are tested without waiting.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from proxy.budgets.rules import (
    MAX_AMOUNT_NUSD,
    MAX_COUNTER_NUSD,
    MAX_LIMIT_NUSD,
    BudgetRule,
    CounterState,
    Seed,
    period_id,
)
from tests.support.records import ts
from tests.support.stores import AnyStore

NOV30 = ts("2026-11-30T23:59:00")
DEC01 = ts("2026-12-01T00:00:00")
TTL = 60_000


def rid() -> str:
    return f"req-{uuid.uuid4().hex}"


def monthly(limit: int, hard: bool = True) -> BudgetRule:
    return BudgetRule("monthly", limit, hard)


async def test_admits_exactly_what_fits(store: AnyStore) -> None:
    counters = [("customer/acme", monthly(1000))]
    answers = [await store.reserve_budget(rid(), 300, counters, TTL, NOV30) for _ in range(4)]

    assert [a.violated for a in answers] == [None, None, None, 0]
    assert answers[2].states == (CounterState("2026-11", 0, 900),)
    assert answers[3].states == (CounterState("2026-11", 0, 900),)  # nothing held for it


async def test_concurrent_reserves_never_overcommit(store: AnyStore) -> None:
    counters = [("customer/acme", monthly(1000)), ("global", BudgetRule("daily", 10_000))]
    answers = await asyncio.gather(
        *(store.reserve_budget(rid(), 100, counters, TTL, NOV30) for _ in range(50))
    )
    assert sum(a.violated is None for a in answers) == 10
    assert {a.violated for a in answers if a.violated is not None} == {0}


async def test_every_budget_must_fit_and_none_is_held_otherwise(store: AnyStore) -> None:
    counters = [("customer/acme", monthly(1000)), ("tag/feature=x", monthly(150))]
    assert (await store.reserve_budget(rid(), 100, counters, TTL, NOV30)).violated is None
    rejected = await store.reserve_budget(rid(), 100, counters, TTL, NOV30)

    assert rejected.violated == 1
    states = await store.budget_states([(s, r.period) for s, r in counters], NOV30)
    assert [s.held_nusd for s in states] == [100, 100]


async def test_soft_budgets_never_reject(store: AnyStore) -> None:
    counters = [("customer/acme", monthly(10, hard=False))]
    assert (await store.reserve_budget(rid(), 100, counters, TTL, NOV30)).violated is None


async def test_settle_releases_the_difference_once(store: AnyStore) -> None:
    counters = [("customer/acme", monthly(1000))]
    request = rid()
    await store.reserve_budget(request, 600, counters, TTL, NOV30)
    settled = await store.settle_budget(request, 250, [("customer/acme", "monthly")], NOV30)

    assert settled is not None
    assert settled.states == (CounterState("2026-11", 250, 0, 250),)
    assert await store.settle_budget(request, 250, [("customer/acme", "monthly")], NOV30) is None
    # 750 is left: a 700 request fits now, where the 600 hold would have refused it.
    assert (await store.reserve_budget(rid(), 700, counters, TTL, NOV30)).violated is None


async def test_a_replayed_reserve_holds_nothing_more(store: AnyStore) -> None:
    counters = [("customer/acme", monthly(1000))]
    request = rid()
    await store.reserve_budget(request, 600, counters, TTL, NOV30)
    replay = await store.reserve_budget(request, 600, counters, TTL, NOV30)

    assert replay.violated is None
    assert replay.states[0].held_nusd == 600


async def test_expired_holds_are_reclaimed_and_a_late_settle_still_counts(
    store: AnyStore,
) -> None:
    counters = [("customer/acme", monthly(1000))]
    dead, late = rid(), rid()
    await store.reserve_budget(dead, 600, counters, TTL, NOV30 - 120_000)
    await store.reserve_budget(late, 300, counters, TTL, NOV30 - 120_000)
    assert (await store.reserve_budget(rid(), 200, counters, TTL, NOV30 - 100_000)).violated == 0

    # Both holds expired a minute later; the next reserve reclaims them.
    answer = await store.reserve_budget(rid(), 200, counters, TTL, NOV30)
    assert answer.violated is None
    assert answer.states[0].held_nusd == 200
    settled = await store.settle_budget(late, 280, [("customer/acme", "monthly")], NOV30)
    assert settled is not None
    assert (settled.states[0].spent_nusd, settled.states[0].held_nusd) == (280, 200)


async def test_period_rollover_reopens_an_exhausted_budget(store: AnyStore) -> None:
    counters = [("customer/acme", monthly(1000)), ("customer/acme", BudgetRule("total", 5000))]
    periods = [("customer/acme", "monthly"), ("customer/acme", "total")]
    request = rid()
    await store.reserve_budget(request, 1000, counters, TTL, NOV30)
    await store.settle_budget(request, 1000, periods, NOV30)
    assert (await store.reserve_budget(rid(), 1, counters, TTL, NOV30 + 59_999)).violated == 0

    answer = await store.reserve_budget(rid(), 1, counters, TTL, DEC01)
    assert answer.violated is None
    assert answer.states == (CounterState("2026-12", 0, 1), CounterState("total", 1000, 1))


async def test_a_hold_from_last_period_settles_into_the_new_one(store: AnyStore) -> None:
    counters = [("customer/acme", BudgetRule("daily", 1000))]
    request = rid()
    await store.reserve_budget(request, 500, counters, TTL, NOV30)
    settled = await store.settle_budget(request, 400, [("customer/acme", "daily")], DEC01 + 1)

    assert settled is not None
    assert settled.states == (CounterState("2026-12-01", 400, 0, 400),)


@pytest.mark.parametrize(
    "iso",
    [
        "1970-01-01T00:00:00", "2024-02-29T23:59:59", "2024-03-01T00:00:00",
        "2026-11-30T23:59:59", "2026-12-31T12:00:00", "2027-01-04T00:00:00",
        "2100-03-01T00:00:00", "2000-02-29T10:00:00", "2026-12-27T23:59:59",
    ],
)  # fmt: skip
async def test_period_ids_match_the_python_rule(store: AnyStore, iso: str) -> None:
    now = ts(iso)
    counters = [("global", BudgetRule(p, 10**12)) for p in ("daily", "weekly", "monthly")]
    answer = await store.reserve_budget(rid(), 1, counters, TTL, now)
    assert [s.pid for s in answer.states] == [
        period_id(p, now) for p in ("daily", "weekly", "monthly")
    ]


async def test_burn_counts_the_last_hour_only(store: AnyStore) -> None:
    counters = [("customer/acme", monthly(10**9))]
    periods = [("customer/acme", "monthly")]
    start = ts("2026-11-10T10:00:00")
    for offset_min, cost in ((0, 100), (30, 20), (61, 3)):
        request = rid()
        await store.reserve_budget(request, cost, counters, TTL, start + offset_min * 60_000)
        settled = await store.settle_budget(request, cost, periods, start + offset_min * 60_000)
    assert settled is not None
    assert settled.states[0].spent_nusd == 123
    assert settled.states[0].burn_hour_nusd == 23


async def test_an_alert_is_claimed_once(store: AnyStore) -> None:
    claims = await asyncio.gather(
        *(
            store.claim_budget_alert("customer/acme", "monthly", "2026-11", "t:80", 100)
            for _ in range(20)
        )
    )
    assert claims.count(True) == 1
    assert await store.claim_budget_alert("customer/acme", "monthly", "2026-12", "t:80", 100)


async def test_overrides_are_versioned(store: AnyStore) -> None:
    version, rules = await store.budget_overrides()
    assert rules == {}
    await store.put_budget_override("customer/acme", "[]")
    assert await store.budget_overrides_version() > version
    assert (await store.budget_overrides())[1] == {"customer/acme": "[]"}
    assert await store.delete_budget_override("customer/acme") is True
    assert await store.delete_budget_override("customer/acme") is False
    assert (await store.budget_overrides())[1] == {}


# Amounts at and past the bounds: a reservation computed from an absurd request (or a
# settle of an absurd cost) is held at MAX_AMOUNT_NUSD and counters saturate, so no store
# ever sums past its 64-bit integers (SQLite's OverflowError, Redis's HINCRBY overflow
# error, Lua's inexact doubles) and no request sees a store error for it.
@pytest.mark.parametrize("amount", [10**15, 2**53, 2**63, 2**64 + 7, 10**30])
async def test_amounts_past_the_bounds_are_held_at_the_maximum(
    store: AnyStore, amount: int
) -> None:
    soft = [("customer/huge", monthly(10, hard=False))]
    hard = [("customer/huge-hard", monthly(MAX_LIMIT_NUSD))]
    request = rid()

    held = await store.reserve_budget(request, amount, soft, TTL, NOV30)
    refused = await store.reserve_budget(rid(), amount, hard, TTL, NOV30)

    assert held.violated is None
    assert held.states == (CounterState("2026-11", 0, min(amount, MAX_AMOUNT_NUSD)),)
    # More than any limit can be: every hard budget refuses it, however large it was.
    assert refused.violated == (0 if amount > MAX_LIMIT_NUSD else None)
    settled = await store.settle_budget(request, amount, [("customer/huge", "monthly")], NOV30)
    assert settled is not None
    assert settled.states[0].held_nusd == 0
    assert settled.states[0].spent_nusd == min(amount, MAX_AMOUNT_NUSD)


async def test_counters_saturate_instead_of_overflowing(store: AnyStore) -> None:
    soft = [("customer/saturated", monthly(10, hard=False))]
    requests = [rid() for _ in range(1100)]  # 1100 × 2^53 > 2^63
    answers = await asyncio.gather(
        *(store.reserve_budget(r, 2**63, soft, TTL, NOV30) for r in requests)
    )
    assert all(a.violated is None for a in answers)
    (state,) = await store.budget_states([("customer/saturated", "monthly")], NOV30)
    assert state.held_nusd == MAX_COUNTER_NUSD
    for r in requests:
        await store.settle_budget(r, 2**63, [("customer/saturated", "monthly")], NOV30)
    (state,) = await store.budget_states([("customer/saturated", "monthly")], NOV30)
    assert state.spent_nusd == MAX_COUNTER_NUSD
    assert state.held_nusd == 0


async def test_a_seed_raises_a_new_counter_to_the_spend_so_far(store: AnyStore) -> None:
    counters = [("customer/acme", monthly(1000))]
    seeds = [Seed("customer/acme", "monthly", "2026-11", 700)]
    assert await store.seed_budget_spent(seeds, NOV30) == 1
    assert await store.budget_states([("customer/acme", "monthly")], NOV30) == [
        CounterState("2026-11", 700, 0)
    ]
    assert (await store.reserve_budget(rid(), 301, counters, TTL, NOV30)).violated == 0
    assert (await store.reserve_budget(rid(), 300, counters, TTL, NOV30)).violated is None


async def test_a_seed_takes_the_larger_figure_never_the_sum(store: AnyStore) -> None:
    """Spend the counter already has (settled while the floor was being read) is not
    counted twice, and seeding again changes nothing."""
    request = rid()
    await store.reserve_budget(request, 500, [("customer/acme", monthly(1000))], TTL, NOV30)
    await store.settle_budget(request, 400, [("customer/acme", "monthly")], NOV30)
    lower, higher = (Seed("customer/acme", "monthly", "2026-11", f) for f in (300, 450))
    assert await store.seed_budget_spent([lower], NOV30) == 0
    assert await store.seed_budget_spent([higher], NOV30) == 1
    assert await store.seed_budget_spent([higher], NOV30) == 0
    (state,) = await store.budget_states([("customer/acme", "monthly")], NOV30)
    assert (state.spent_nusd, state.held_nusd) == (450, 0)


async def test_a_seed_for_a_period_that_ended_changes_nothing(store: AnyStore) -> None:
    stale = [Seed("customer/acme", "monthly", "2026-11", 700)]
    assert await store.seed_budget_spent(stale, DEC01) == 0
    assert await store.budget_states([("customer/acme", "monthly")], DEC01) == [
        CounterState("2026-12", 0, 0)
    ]


async def test_a_seed_brings_an_old_counter_into_the_period_and_keeps_its_holds(
    store: AnyStore,
) -> None:
    counters = [("customer/acme", BudgetRule("daily", 1000))]
    await store.reserve_budget(rid(), 200, counters, TTL, NOV30)
    seeds = [Seed("customer/acme", "daily", "2026-12-01", 50)]
    assert await store.seed_budget_spent(seeds, DEC01) == 1
    assert await store.budget_states([("customer/acme", "daily")], DEC01) == [
        CounterState("2026-12-01", 50, 200)
    ]
