"""A budget created mid-period counts the period's spend so far, on every store: its counters
are raised from the usage aggregates (proxy.budgets.seed)."""

from __future__ import annotations

from proxy.budgets.book import BudgetBook
from proxy.budgets.rules import BudgetRule
from proxy.budgets.seed import seed_scopes
from tests.support.records import make_record, record_all, ts
from tests.support.stores import AnyStore

NOW = ts("2026-11-20T12:00:00")  # a Friday; its week began on Monday the 16th


def rules(*periods: str) -> tuple[BudgetRule, ...]:
    return tuple(BudgetRule(p, 10**12) for p in periods)  # type: ignore[arg-type]


async def spent(store: AnyStore, scope: str, period: str) -> int:
    (state,) = await store.budget_states([(scope, period)], NOW)  # type: ignore[list-item]
    return state.spent_nusd


async def test_each_scope_counts_its_own_spend_in_each_period(store: AnyStore) -> None:
    at = {day: ts(f"2026-{day}T09:00:00") for day in ("10-31", "11-02", "11-17", "11-20")}
    await record_all(
        store,
        [
            make_record(ts_ms=at["10-31"], cost_nusd=1),  # last month: never counted
            make_record(ts_ms=at["11-02"], cost_nusd=10, end_user="p1", tags=("f=a",)),
            make_record(ts_ms=at["11-17"], cost_nusd=100, end_user="p2", tags=("f=a", "g=b")),
            make_record(ts_ms=at["11-20"], cost_nusd=1000, end_user="p1"),
            make_record(ts_ms=at["11-20"], customer="globex", cost_nusd=10_000, tags=("f=a",)),
            make_record(ts_ms=at["11-20"], customer="globex", cost_nusd=None),  # unpriced
        ],
    )
    book = BudgetBook(
        {
            "customer/acme": rules("daily", "weekly", "monthly", "total"),
            "end_users/acme": rules("monthly"),
            "end_user/acme/p2": rules("weekly"),  # p2's own rules: seeded as its own scope
            "tag/f=a": rules("monthly"),
            "global": rules("weekly"),
            "key/acme-prod": rules("monthly"),
        },
        {},
    )
    seeds = await seed_scopes(store, book, sorted(book.effective), 400, NOW)

    assert await spent(store, "customer/acme", "daily") == 1000
    assert await spent(store, "customer/acme", "weekly") == 1100
    assert await spent(store, "customer/acme", "monthly") == 1110
    assert await spent(store, "customer/acme", "total") == 1111
    assert await spent(store, "end_user/acme/p1", "monthly") == 1010
    assert await spent(store, "end_user/acme/p2", "weekly") == 100
    assert await spent(store, "end_user/acme/p2", "monthly") == 0  # not its rule
    assert await spent(store, "tag/f=a", "monthly") == 10_110
    assert await spent(store, "global", "weekly") == 11_100
    assert await spent(store, "key/acme-prod", "monthly") == 0  # no key in the aggregates
    assert all(seed.floor_nusd > 0 for seed in seeds)

    # Seeding again (another instance starting) counts nothing twice.
    await seed_scopes(store, book, sorted(book.effective), 400, NOW)
    assert await spent(store, "customer/acme", "monthly") == 1110


async def test_a_total_budget_counts_the_retention_window(store: AnyStore) -> None:
    await record_all(
        store,
        [
            make_record(ts_ms=ts("2026-01-01T00:00:00"), cost_nusd=5),
            make_record(ts_ms=ts("2026-11-01T00:00:00"), cost_nusd=7),
        ],
    )
    book = BudgetBook({"customer/acme": rules("total")}, {})
    await seed_scopes(store, book, ["customer/acme"], 100, NOW)
    assert await spent(store, "customer/acme", "total") == 7
