"""The Store contract for what-if figures: every test runs against every store."""

from __future__ import annotations

import asyncio
from datetime import date

from proxy.accounting.records import Totals, UsageRecord, WhatIfRow
from tests.support.records import DAY, make_record, record_all, total_of, ts
from tests.support.stores import AnyStore

JAMBA, DEEPSEEK = "ai21/jamba-large", "deepseek/deepseek-chat"


async def what_if_rows(store: AnyStore, customer: str | None = "acme") -> list[WhatIfRow]:
    return await store.what_if_rows(customer=customer, from_day=DAY, to_day=DAY)


def row(alternative: str, records: list[UsageRecord], route: str = "gpt-4o") -> WhatIfRow:
    model = "gpt-4o-mini" if route == "small" else "gpt-4o-2024-08-06"
    return WhatIfRow(
        "acme",
        DAY.isoformat(),
        route,
        "openai",
        model,
        alternative,
        total_of(records),
        sum(r.what_if[alternative] for r in records),
    )


async def test_what_if_rows_hold_actual_and_alternative_per_alternative(store: AnyStore) -> None:
    a = make_record(cost_nusd=1_000, what_if={JAMBA: 700, DEEPSEEK: 90})
    b = make_record(cost_nusd=2_000, what_if={JAMBA: 1_500})
    c = make_record(route="small", model="gpt-4o-mini", cost_nusd=None, what_if={JAMBA: 5})
    plain = make_record(cost_nusd=4_000)  # recorded while no rule applied: in no what-if row
    await record_all(store, [a, b, c, plain])

    assert await what_if_rows(store) == [
        row(JAMBA, [a, b]),
        row(DEEPSEEK, [a]),
        row(JAMBA, [c], route="small"),
    ]
    # The base aggregates are unchanged by what-if figures.
    assert await store.monthly_totals("acme", "2026-11") == total_of([a, b, c, plain])
    assert (await store.get_usage(a.request_id)).what_if == {JAMBA: 700, DEEPSEEK: 90}
    assert (await store.get_usage(plain.request_id)).what_if == {}


async def test_what_if_sums_stay_exact_and_replays_count_once(store: AnyStore) -> None:
    records = [make_record(what_if={JAMBA: 2**53 + i}) for i in (1, 3)]
    await record_all(store, records)
    assert await store.record_usage(records[0]) is False

    [only] = await what_if_rows(store)
    assert only.what_if_nusd == 2**54 + 4
    assert only.totals == total_of(records)


async def test_what_if_rows_by_customer_and_day(store: AnyStore) -> None:
    mine = make_record(what_if={JAMBA: 1})
    theirs = make_record(customer="globex", what_if={JAMBA: 2})
    tomorrow = make_record(ts_ms=ts("2026-11-29T00:00:00"), what_if={JAMBA: 4})
    await record_all(store, [mine, theirs, tomorrow])

    assert [r.what_if_nusd for r in await what_if_rows(store)] == [1]
    assert sorted(r.customer for r in await what_if_rows(store, None)) == ["acme", "globex"]
    both_days = await store.what_if_rows(customer="acme", from_day=DAY, to_day=date(2026, 11, 29))
    assert [(r.day, r.what_if_nusd) for r in both_days] == [("2026-11-28", 1), ("2026-11-29", 4)]


async def test_concurrent_what_if_records_give_exact_totals(store: AnyStore) -> None:
    records = [
        make_record(cost_nusd=10 + i, what_if={JAMBA: i, DEEPSEEK: 2 * i}) for i in range(100)
    ]
    await asyncio.gather(*(store.record_usage(r) for r in records + records))

    rows = {r.alternative: r for r in await what_if_rows(store)}
    assert rows[JAMBA].what_if_nusd == sum(range(100))
    assert rows[DEEPSEEK].what_if_nusd == 2 * sum(range(100))
    assert rows[JAMBA].totals == rows[DEEPSEEK].totals == total_of(records)
    assert rows[JAMBA].totals.requests == 100
    assert Totals.of(records[0]).cost_nusd == 10
