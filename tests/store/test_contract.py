"""The Store contract: every test here runs against every store implementation."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy.accounting.records import AggregateRow, Breakdown, Totals, UsageRecord
from tests.support.records import DAY, EPOCH, make_record, record_all, total_of, ts
from tests.support.stores import AnyStore, StoreFactory


def summed(rows: list[AggregateRow]) -> Totals:
    totals = Totals()
    for row in rows:
        totals.add(row.totals)
    return totals


async def rows_of(
    store: AnyStore,
    breakdown: Breakdown = "base",
    *,
    customer: str | None = "acme",
    from_day: date = DAY,
    to_day: date = DAY,
) -> list[AggregateRow]:
    return await store.aggregate_rows(
        customer=customer, from_day=from_day, to_day=to_day, breakdown=breakdown
    )


async def test_totals_are_exact_integer_sums(store: AnyStore) -> None:
    records = [
        make_record(
            cost_nusd=None if i % 7 == 0 else 1_000_003 * i,
            input_tokens=10 * i,
            cached_input_tokens=i,
            output_tokens=3 * i,
            reasoning_tokens=i % 5,
        )
        for i in range(60)
    ]
    await record_all(store, records)

    expected = total_of(records)
    assert expected.unpriced_requests == 9
    assert await store.monthly_totals("acme", "2026-11") == expected
    assert summed(await rows_of(store)) == expected


async def test_sums_beyond_float_precision_stay_exact(store: AnyStore) -> None:
    # Above 2**53 a double (Lua number, float column, INCRBYFLOAT) would drop the last digit.
    costs = [2**53 + 1, 2**53 + 3, 7]
    await record_all(store, [make_record(cost_nusd=cost) for cost in costs])

    totals = await store.monthly_totals("acme", "2026-11")
    assert totals.cost_nusd == 2**54 + 11
    assert summed(await rows_of(store)).cost_nusd == 2**54 + 11


async def test_same_request_id_is_counted_once(store: AnyStore) -> None:
    record = make_record(tags=("team=a",), end_user="u1")
    assert await store.record_usage(record) is True
    before = {b: await rows_of(store, b) for b in ("base", "tag", "end_user")}

    assert await store.record_usage(record) is False
    # A replay carrying different numbers must not change anything either.
    changed = make_record(request_id=record.request_id, cost_nusd=999_999, input_tokens=1)
    assert await store.record_usage(changed) is False

    assert {b: await rows_of(store, b) for b in ("base", "tag", "end_user")} == before
    assert await store.monthly_totals("acme", "2026-11") == Totals.of(record)
    assert await store.get_usage(record.request_id) == record


async def test_breakdown_rows(store: AnyStore) -> None:
    a = make_record(tags=("team=search",), end_user="alice", cost_nusd=100)
    b = make_record(tags=("team=search",), end_user="bob", cost_nusd=200)
    c = make_record(tags=("team=ads",), end_user="alice", cost_nusd=None)
    d = make_record(route="small", model="gpt-4o-mini", tags=("team=ads",), cost_nusd=5)
    await record_all(store, [a, b, c, d])

    def row(dim: str | None, *records: UsageRecord, route: str = "gpt-4o") -> AggregateRow:
        model = "gpt-4o-mini" if route == "small" else "gpt-4o-2024-08-06"
        return AggregateRow(
            "acme", DAY.isoformat(), route, "openai", model, total_of(list(records)), dim
        )

    assert await rows_of(store, "base") == [row(None, a, b, c), row(None, d, route="small")]
    assert await rows_of(store, "tag") == [
        row("team=ads", c),
        row("team=search", a, b),
        row("team=ads", d, route="small"),
    ]
    assert await rows_of(store, "end_user") == [
        row("alice", a, c),
        row("bob", b),
        row("", d, route="small"),
    ]


async def test_breakdowns_sum_to_base_for_single_tag_requests(store: AnyStore) -> None:
    records = [
        make_record(
            route=f"route-{i % 3}",
            tags=(f"team={i % 4}",) if i % 5 else (),
            end_user=f"user-{i % 6}" if i % 2 else None,
            cost_nusd=None if i % 9 == 0 else 10 * i + 1,
        )
        for i in range(40)
    ]
    await record_all(store, records)

    base = await rows_of(store, "base")
    assert summed(base) == total_of(records)
    for breakdown in ("tag", "end_user"):
        split = await rows_of(store, breakdown)
        for base_row in base:
            parts = [r for r in split if (r.route, r.model) == (base_row.route, base_row.model)]
            assert summed(parts) == base_row.totals


async def test_untagged_and_anonymous_requests_have_empty_dims(store: AnyStore) -> None:
    record = make_record(tags=(), end_user=None)
    await store.record_usage(record)

    [tag_row] = await rows_of(store, "tag")
    [user_row] = await rows_of(store, "end_user")
    [base_row] = await rows_of(store, "base")
    assert (tag_row.dim, user_row.dim, base_row.dim) == ("", "", None)
    assert tag_row.totals == user_row.totals == base_row.totals == Totals.of(record)


async def test_a_request_with_several_tags_counts_under_each(store: AnyStore) -> None:
    record = make_record(tags=("env=prod", "team=a", "team=a"))  # a repeated tag counts once
    await store.record_usage(record)

    rows = await rows_of(store, "tag")
    assert [(r.dim, r.totals) for r in rows] == [
        ("env=prod", Totals.of(record)),
        ("team=a", Totals.of(record)),
    ]


async def test_days_split_at_utc_midnight(store: AnyStore) -> None:
    late = make_record(ts_ms=ts("2026-11-28T23:59:59.999"), cost_nusd=1)
    early = make_record(ts_ms=ts("2026-11-29T00:00:00.000"), cost_nusd=2)
    await record_all(store, [late, early])

    next_day = DAY + timedelta(days=1)
    both = await rows_of(store, to_day=next_day)
    assert [(r.day, r.totals.cost_nusd) for r in both] == [("2026-11-28", 1), ("2026-11-29", 2)]
    assert [r.day for r in await rows_of(store)] == ["2026-11-28"]
    assert [r.day for r in await rows_of(store, from_day=next_day, to_day=next_day)] == [
        "2026-11-29"
    ]


@pytest.mark.parametrize(
    ("last", "first", "months"),
    [
        ("2026-11-30T23:59:59.999", "2026-12-01T00:00:00", ("2026-11", "2026-12")),
        ("2026-12-31T23:59:59.999", "2027-01-01T00:00:00", ("2026-12", "2027-01")),
    ],
)
async def test_months_roll_over_at_utc_midnight(
    store: AnyStore, last: str, first: str, months: tuple[str, str]
) -> None:
    await record_all(
        store,
        [make_record(ts_ms=ts(last), cost_nusd=10), make_record(ts_ms=ts(first), cost_nusd=3)],
    )

    assert (await store.monthly_totals("acme", months[0])).cost_nusd == 10
    assert (await store.monthly_totals("acme", months[1])).cost_nusd == 3


async def test_unknown_customer_and_empty_ranges_are_empty(store: AnyStore) -> None:
    await store.record_usage(make_record())

    assert await store.monthly_totals("nobody", "2026-11") == Totals()
    assert await store.monthly_totals("acme", "2026-10") == Totals()
    assert await rows_of(store, customer="nobody") == []
    assert await rows_of(store, from_day=date(2026, 11, 29), to_day=date(2026, 12, 31)) == []
    assert await rows_of(store, from_day=DAY, to_day=DAY - timedelta(days=1)) == []


async def test_customer_filter_and_all_customers(store: AnyStore) -> None:
    await record_all(
        store,
        [
            make_record(customer="acme", cost_nusd=1),
            make_record(customer="globex", cost_nusd=20),
            make_record(customer="initech", cost_nusd=300, ts_ms=ts("2026-11-27T10:00:00")),
        ],
    )

    assert [r.customer for r in await rows_of(store, customer="globex")] == ["globex"]
    everyone = await rows_of(store, customer=None, from_day=date(2026, 11, 1), to_day=DAY)
    assert [(r.customer, r.day, r.totals.cost_nusd) for r in everyone] == [
        ("acme", "2026-11-28", 1),
        ("globex", "2026-11-28", 20),
        ("initech", "2026-11-27", 300),
    ]
    assert [r.customer for r in await rows_of(store, "tag", customer=None)] == ["acme", "globex"]


@pytest.mark.parametrize(
    "record",
    [
        make_record(
            endpoint="responses",
            status=201,
            input_tokens=1234,
            cached_input_tokens=1000,
            output_tokens=567,
            reasoning_tokens=89,
            cost_nusd=123_456_789_012,
            usage_source="estimated",
            end_user="user-7",
            tags=("env=prod", "team=search"),
            key_id="key-3",
            latency_ms=1234.5678901234,
            ttft_ms=0.1 + 0.2,
            attempts=3,
        ),
        make_record(cost_nusd=None, end_user=None, key_id=None, ttft_ms=None, tags=()),
    ],
    ids=["every-field-set", "nones"],
)
async def test_get_usage_round_trips_every_field(store: AnyStore, record: UsageRecord) -> None:
    await store.record_usage(record)

    assert await store.get_usage(record.request_id) == record


async def test_get_usage_of_unknown_request_is_none(store: AnyStore) -> None:
    await store.record_usage(make_record())

    assert await store.get_usage("req-never-seen") is None


@pytest.mark.parametrize(
    "customer",
    [
        "a:b",
        "x}y{",
        "{c:acme}",
        "100%",
        "%7D",
        "客户 ünï",
        "with space",
        "new\nline",
        "tab\tsep\x1f",
    ],
)
async def test_awkward_customer_names(store: AnyStore, customer: str) -> None:
    record = make_record(customer=customer, tags=("t={x}",), end_user="u:1")
    bystander = make_record(customer="acme", cost_nusd=1)
    await record_all(store, [record, bystander])

    assert await store.monthly_totals(customer, "2026-11") == Totals.of(record)
    for breakdown in ("base", "tag", "end_user"):
        [row] = await rows_of(store, breakdown, customer=customer)
        assert (row.customer, row.totals) == (customer, Totals.of(record))
    everyone = await rows_of(store, customer=None)
    assert sorted(r.customer for r in everyone) == sorted([customer, "acme"])
    assert await store.get_usage(record.request_id) == record


async def test_awkward_route_model_tag_and_end_user_values(store: AnyStore) -> None:
    odd = "a\x1fb}{%25:\n"
    record = make_record(route=odd, provider=f"p{odd}", model=f"m{odd}", tags=(f"k={odd}",))
    await record_all(store, [record, make_record(end_user=odd)])

    tag_rows = await rows_of(store, "tag")
    assert [(r.route, r.provider, r.model, r.dim) for r in tag_rows] == [
        (odd, f"p{odd}", f"m{odd}", f"k={odd}"),  # "a..." sorts before "gpt-4o"
        ("gpt-4o", "openai", "gpt-4o-2024-08-06", ""),
    ]
    assert [r.dim for r in await rows_of(store, "end_user")] == ["", odd]


async def test_concurrent_records_give_exact_totals(store: AnyStore) -> None:
    records = [
        make_record(cost_nusd=None if i % 10 == 0 else 1_000 + i, tags=(f"team={i % 3}",))
        for i in range(200)
    ]
    # Every record twice, interleaved: idempotency must also hold under concurrency.
    results = await asyncio.gather(*(store.record_usage(r) for r in records + records))

    assert sum(results) == 200
    assert await store.monthly_totals("acme", "2026-11") == total_of(records)
    assert summed(await rows_of(store, "tag")) == total_of(records)


async def test_data_survives_reopening(make_store: StoreFactory) -> None:
    first = await make_store()
    record = make_record(tags=("team=a",), end_user="alice")
    await first.record_usage(record)
    rows = {b: await rows_of(first, b) for b in ("base", "tag", "end_user")}
    await first.close()
    await first.close()  # closing twice is harmless

    second = await make_store()
    assert {b: await rows_of(second, b) for b in ("base", "tag", "end_user")} == rows
    assert await second.get_usage(record.request_id) == record
    assert await second.monthly_totals("acme", "2026-11") == Totals.of(record)
    assert await second.record_usage(record) is False  # still idempotent after a restart


_records = st.builds(
    make_record,
    ts_ms=st.integers(ts("2026-11-25T00:00:00"), ts("2026-12-04T23:59:59.999")),
    route=st.sampled_from(["gpt-4o", "small"]),
    input_tokens=st.integers(0, 10**7),
    cached_input_tokens=st.integers(0, 10**6),
    output_tokens=st.integers(0, 10**6),
    reasoning_tokens=st.integers(0, 10**5),
    cost_nusd=st.none() | st.integers(0, 10**13),
    tags=st.lists(st.sampled_from(["team=a", "team=b", "env=prod"]), max_size=2, unique=True)
    .map(sorted)
    .map(tuple),
    end_user=st.none() | st.sampled_from(["alice", "bob"]),
)


@settings(
    max_examples=30,
    deadline=None,
    # One store serves every example; each example writes its own fresh customer.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(records=st.lists(_records, max_size=25))
async def test_totals_equal_the_sum_of_random_records(
    store: AnyStore, records: list[UsageRecord]
) -> None:
    customer = f"prop-{uuid.uuid4().hex}"
    records = [
        UsageRecord.from_dict({**r.to_dict(), "customer": customer, "request_id": uuid.uuid4().hex})
        for r in records
    ]
    await record_all(store, records)

    for month in ("2026-11", "2026-12"):
        expected = total_of([r for r in records if _iso_day(r).startswith(month)])
        assert await store.monthly_totals(customer, month) == expected
    span = {"customer": customer, "from_day": date(2026, 11, 25), "to_day": date(2026, 12, 4)}
    assert summed(await rows_of(store, "base", **span)) == total_of(records)
    assert summed(await rows_of(store, "end_user", **span)) == total_of(records)
    untagged = [r for r in records if not r.tags]
    tag_rows = await rows_of(store, "tag", **span)
    assert summed([r for r in tag_rows if r.dim == ""]) == total_of(untagged)


def _iso_day(record: UsageRecord) -> str:
    return (EPOCH + timedelta(milliseconds=record.ts_ms)).date().isoformat()
