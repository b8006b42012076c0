"""The Store contract for the console's reads: every test runs against every store.

Expected figures are computed here from the records themselves (or from the spend API's
own per-customer rows), never from the method under test.
"""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from datetime import date, timedelta

from proxy.access.shares import ShareLink
from proxy.accounting.records import AggregateRow, Totals, UsageRecord
from proxy.accounting.rollups import rank_value
from proxy.store.buckets import utc_day
from tests.support.records import DAY, make_record, record_all, total_of, ts
from tests.support.stores import AnyStore, StoreFactory

JAMBA = "ai21/jamba-large"
MODELS = [("gpt-4o", "openai", "gpt-4o-2024-08-06"), ("small", "groq", "llama-3-8b")]


def history(n: int = 300, seed: int = 7) -> list[UsageRecord]:
    """Records of 12 customers over 70 days (crossing every block size but the largest)."""
    rng = random.Random(seed)
    first = ts("2026-09-20T00:00:00")
    records = []
    for _ in range(n):
        route, provider, model = rng.choice(MODELS)
        records.append(
            make_record(
                customer=f"cust-{rng.randrange(12):02d}",
                ts_ms=first + rng.randrange(70 * 86_400_000),
                route=route,
                provider=provider,
                model=model,
                cost_nusd=None if rng.random() < 0.1 else rng.randrange(1, 10**7),
                input_tokens=rng.randrange(1000),
                output_tokens=rng.randrange(500),
                what_if={JAMBA: rng.randrange(10**6)} if rng.random() < 0.3 else {},
            )
        )
    return records


def in_range(records: list[UsageRecord], first: date, last: date) -> list[UsageRecord]:
    return [r for r in records if first.isoformat() <= utc_day(r.ts_ms) <= last.isoformat()]


def merged(rows: list[AggregateRow]) -> dict[tuple[str, str, str, str], Totals]:
    out: dict[tuple[str, str, str, str], Totals] = defaultdict(Totals)
    for row in rows:
        out[(row.day, row.route, row.provider, row.model)].add(row.totals)
    return dict(out)


async def test_global_rows_are_the_per_customer_rows_summed(store: AnyStore) -> None:
    records = history()
    await record_all(store, records)
    first, last = date(2026, 9, 25), date(2026, 11, 10)

    rows = await store.global_rows(from_day=first, to_day=last)
    assert {r.customer for r in rows} == {""}
    per_customer = await store.aggregate_rows(
        customer=None, from_day=first, to_day=last, breakdown="base"
    )
    assert merged(rows) == merged(per_customer)
    assert len(rows) == len(merged(rows))  # one row per (day, route, provider, model)
    total = Totals()
    for row in rows:
        total.add(row.totals)
    assert total == total_of(in_range(records, first, last))


async def test_global_what_if_rows_are_the_per_customer_rows_summed(store: AnyStore) -> None:
    records = history()
    await record_all(store, records)
    first, last = date(2026, 10, 1), date(2026, 10, 31)

    got = await store.global_what_if_rows(from_day=first, to_day=last)
    expected = [r for r in in_range(records, first, last) if r.what_if]
    assert sum(row.what_if_nusd for row in got) == sum(r.what_if[JAMBA] for r in expected)
    totals = Totals()
    for row in got:
        assert (row.customer, row.alternative) == ("", JAMBA)
        totals.add(row.totals)
    assert totals == total_of(expected)


async def test_a_replay_changes_no_console_figure(store: AnyStore) -> None:
    record = make_record(what_if={JAMBA: 5})
    await record_all(store, [record])
    before = (
        await store.global_rows(from_day=DAY, to_day=DAY),
        await store.global_what_if_rows(from_day=DAY, to_day=DAY),
        await store.rank_customers(from_day=DAY, to_day=DAY),
        await store.recent_usage(),
    )
    assert await store.record_usage(record) is False
    changed = make_record(request_id=record.request_id, cost_nusd=99, model="other")
    assert await store.record_usage(changed) is False
    after = (
        await store.global_rows(from_day=DAY, to_day=DAY),
        await store.global_what_if_rows(from_day=DAY, to_day=DAY),
        await store.rank_customers(from_day=DAY, to_day=DAY),
        await store.recent_usage(),
    )
    assert after == before
    assert before[3].records == [record]


async def test_minute_totals_cover_whole_minutes(store: AnyStore) -> None:
    at = [
        ("2026-11-28T11:59:59.999", 1),
        ("2026-11-28T12:00:00", 10),
        ("2026-11-28T12:00:59.999", 100),
        ("2026-11-28T12:01:00", 1000),
    ]
    await record_all(store, [make_record(ts_ms=ts(t), cost_nusd=c) for t, c in at])

    async def cost(start: str, end: str) -> int:
        return (await store.minute_totals(from_ms=ts(start), to_ms=ts(end))).cost_nusd

    assert await cost("2026-11-28T12:00:00", "2026-11-28T12:01:00") == 110
    assert await cost("2026-11-28T11:00:00", "2026-11-28T13:00:00") == 1111
    assert await cost("2026-11-28T12:01:00", "2026-11-28T12:02:00") == 1000
    totals = await store.minute_totals(
        from_ms=ts("2026-11-28T11:59:00"), to_ms=ts("2026-11-28T12:00:00")
    )
    assert totals.requests == 1


async def test_ranking_orders_customers_with_exact_totals(store: AnyStore) -> None:
    records = history(400)
    await record_all(store, records)
    for first, last in [
        (date(2026, 9, 20), date(2026, 11, 28)),  # everything
        (date(2026, 10, 3), date(2026, 10, 29)),  # crosses block boundaries of each size
        (date(2026, 10, 17), date(2026, 10, 17)),  # one day
    ]:
        expected: dict[str, Totals] = defaultdict(Totals)
        for record in in_range(records, first, last):
            expected[record.customer].add(Totals.of(record))
        for by in ("cost", "requests", "tokens"):
            ranking = await store.rank_customers(from_day=first, to_day=last, by=by, limit=100)
            assert ranking.count == len(expected)
            assert {r.customer: r.totals for r in ranking.rows} == dict(expected)
            order = sorted(expected, key=lambda c: (-rank_value(expected[c], by), c))
            assert [r.customer for r in ranking.rows] == order
            ascending = await store.rank_customers(
                from_day=first, to_day=last, by=by, descending=False, limit=100
            )
            assert [r.customer for r in ascending.rows] == sorted(
                expected, key=lambda c: (rank_value(expected[c], by), c)
            )


async def test_ranking_pages_and_searches(store: AnyStore) -> None:
    records = [
        make_record(customer=name, cost_nusd=cost)
        for name, cost in [("Alpha", 5), ("beta", 50), ("alphabet", 500), ("gamma", 5000)]
    ]
    await record_all(store, records)

    first = await store.rank_customers(from_day=DAY, to_day=DAY, limit=2)
    second = await store.rank_customers(from_day=DAY, to_day=DAY, offset=2, limit=2)
    assert [r.customer for r in first.rows + second.rows] == ["gamma", "alphabet", "beta", "Alpha"]
    assert first.count == second.count == 4
    found = await store.rank_customers(from_day=DAY, to_day=DAY, search="ALPHA")
    assert [(r.customer, r.totals.cost_nusd) for r in found.rows] == [
        ("alphabet", 500),
        ("Alpha", 5),
    ]
    by_name = await store.rank_customers(from_day=DAY, to_day=DAY, by="customer", descending=False)
    assert [r.customer for r in by_name.rows] == ["Alpha", "alphabet", "beta", "gamma"]
    past_end = await store.rank_customers(from_day=DAY, to_day=DAY, offset=10)
    assert (past_end.rows, past_end.count) == ([], 4)
    nobody = await store.rank_customers(
        from_day=DAY - timedelta(days=3), to_day=DAY - timedelta(days=1)
    )
    assert (nobody.rows, nobody.count) == ([], 0)


async def test_ranking_totals_stay_exact_beyond_float_precision(store: AnyStore) -> None:
    await record_all(store, [make_record(cost_nusd=2**53 + 1), make_record(cost_nusd=2**53 + 3)])
    [row] = (await store.rank_customers(from_day=DAY, to_day=DAY)).rows
    assert row.totals.cost_nusd == 2**54 + 4


async def test_ranking_keeps_odd_customer_names(store: AnyStore) -> None:
    names = ["a:b}", "x\x1fy", "{c:z}", "ünï cödé %41"]
    await record_all(store, [make_record(customer=n, cost_nusd=i + 1) for i, n in enumerate(names)])
    ranking = await store.rank_customers(from_day=DAY, to_day=DAY, by="customer", descending=False)
    assert [(r.customer, r.totals.cost_nusd) for r in ranking.rows] == sorted(
        (n, i + 1) for i, n in enumerate(names)
    )


async def test_recent_usage_newest_first_with_filters_and_pages(store: AnyStore) -> None:
    base = ts("2026-11-28T12:00:00")
    records = [
        make_record(
            ts_ms=base + i * 1000,
            customer="acme" if i % 3 else "globex",
            model="m-even" if i % 2 == 0 else "m-odd",
            status=500 if i % 5 == 0 else 200,
        )
        for i in range(40)
    ]
    await record_all(store, records)
    newest_first = records[::-1]

    async def everything(**filters: object) -> list[UsageRecord]:
        seen, cursor = [], None
        while True:
            page = await store.recent_usage(cursor=cursor, limit=7, **filters)
            assert len(page.records) <= 7
            seen += page.records
            if page.next_cursor is None:
                return seen
            cursor = page.next_cursor

    assert (await store.recent_usage(limit=3)).records == newest_first[:3]
    assert await everything() == newest_first
    assert await everything(customer="globex") == [
        r for r in newest_first if r.customer == "globex"
    ]
    assert await everything(model="m-odd", status=500) == [
        r for r in newest_first if r.model == "m-odd" and r.status == 500
    ]
    assert await everything(customer="acme", status=500) == [
        r for r in newest_first if r.customer == "acme" and r.status == 500
    ]
    assert (await store.recent_usage(customer="nobody")).records == []


async def test_concurrent_records_give_exact_console_figures(store: AnyStore) -> None:
    records = [make_record(customer=f"c{i % 5}", cost_nusd=10 + i) for i in range(100)]
    await asyncio.gather(*(store.record_usage(r) for r in records + records))

    ranking = await store.rank_customers(from_day=DAY, to_day=DAY)
    assert sum(r.totals.cost_nusd for r in ranking.rows) == sum(10 + i for i in range(100))
    [row] = await store.global_rows(from_day=DAY, to_day=DAY)
    assert row.totals == total_of(records)


async def test_shared_links_are_stored_found_listed_and_revoked(make_store: StoreFactory) -> None:
    store = await make_store()
    link = ShareLink("share_1", "acme", "ab" * 32, created_ms=1, expires_ms=10**13)
    other = ShareLink("share_2", "globex", "cd" * 32, created_ms=2, expires_ms=10**13)
    await store.put_share(link)
    await store.put_share(other)

    assert await store.find_share("ab" * 32) == link
    assert await store.find_share("ef" * 32) is None
    assert await store.list_shares("acme") == [link]
    assert await store.list_shares(None) == [link, other]
    assert await store.revoke_share("share_1", now_ms=5) is True
    assert await store.revoke_share("share_9", now_ms=5) is False
    revoked = await (await make_store()).find_share("ab" * 32)  # survives a restart
    assert revoked is not None and revoked.revoked_ms == 5 and not revoked.live(6)
    assert (await store.find_share("cd" * 32)) == other
