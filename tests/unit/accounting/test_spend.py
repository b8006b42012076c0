"""accounting.spend (query parsing and summaries) and the value types of accounting.records."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

import pytest

from proxy.accounting.records import METRIC_FIELDS, MONEY_FIELDS, AggregateRow, Totals, UsageRecord
from proxy.accounting.spend import SpendQuery, SpendQueryError, summarize, totals_json

# --- SpendQuery.parse -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("today", "from_day", "to_day"),
    [
        (date(2026, 2, 10), date(2026, 2, 1), date(2026, 2, 28)),
        (date(2028, 2, 10), date(2028, 2, 1), date(2028, 2, 29)),  # leap year
        (date(2100, 2, 1), date(2100, 2, 1), date(2100, 2, 28)),  # not a leap year
        (date(2026, 1, 31), date(2026, 1, 1), date(2026, 1, 31)),
        (date(2026, 4, 30), date(2026, 4, 1), date(2026, 4, 30)),
        (date(2026, 12, 31), date(2026, 12, 1), date(2026, 12, 31)),
    ],
)
def test_default_range_is_the_current_month(today: date, from_day: date, to_day: date) -> None:
    assert SpendQuery.parse({}, today=today) == SpendQuery(None, from_day, to_day, ())


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (
            {"from": "2026-01-05", "to": "2026-01-20"},
            SpendQuery(None, date(2026, 1, 5), date(2026, 1, 20), ()),
        ),
        (
            {"from": "2026-02-03", "to": "2026-02-03", "customer": "acme"},
            SpendQuery("acme", date(2026, 2, 3), date(2026, 2, 3), ()),
        ),
        ({"from": "2026-02-05"}, SpendQuery(None, date(2026, 2, 5), date(2026, 2, 28), ())),
        ({"to": "2026-02-05"}, SpendQuery(None, date(2026, 2, 1), date(2026, 2, 5), ())),
        # A lone bound completes its own month, not today's.
        ({"from": "2025-06-10"}, SpendQuery(None, date(2025, 6, 10), date(2025, 6, 30), ())),
        ({"to": "2026-01-31"}, SpendQuery(None, date(2026, 1, 1), date(2026, 1, 31), ())),
        (
            {"customer": "", "group_by": " model, day ,"},
            SpendQuery(None, date(2026, 2, 1), date(2026, 2, 28), ("model", "day")),
        ),
        (
            {"group_by": "tag,customer"},
            SpendQuery(None, date(2026, 2, 1), date(2026, 2, 28), ("tag", "customer")),
        ),
        (  # a whole leap year is 366 days: the longest range allowed
            {"from": "2028-01-01", "to": "2028-12-31"},
            SpendQuery(None, date(2028, 1, 1), date(2028, 12, 31), ()),
        ),
    ],
)
def test_parse(params: dict[str, str], expected: SpendQuery) -> None:
    assert SpendQuery.parse(params, today=date(2026, 2, 10)) == expected


@pytest.mark.parametrize(
    ("group_by", "breakdown"),
    [
        ("", "base"),
        ("customer,model,route,provider,day", "base"),
        ("tag", "tag"),
        ("day,tag", "tag"),
        ("end_user", "end_user"),
        ("model,end_user", "end_user"),
    ],
)
def test_breakdown_follows_group_by(group_by: str, breakdown: str) -> None:
    assert SpendQuery.parse({"group_by": group_by}, today=date(2026, 2, 10)).breakdown == breakdown


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"from": "2026-13-01"}, "'from' must be a date"),
        ({"from": "yesterday"}, "'from' must be a date"),
        ({"to": "2026/02/01"}, "'to' must be a date"),
        ({"to": "2026-02-30"}, "'to' must be a date"),
        ({"from": "2026-02-10", "to": "2026-02-09"}, "is before 'from'"),
        ({"from": "2026-01-01", "to": "2027-01-02"}, "at most 366 days"),
        ({"from": "2028-01-01", "to": "2029-01-01"}, "at most 366 days"),
        ({"group_by": "colour"}, "unknown group_by dimension(s) colour"),
        ({"group_by": "model,colour,size"}, "colour, size"),
        ({"group_by": "model,model"}, "twice"),
        ({"group_by": "tag,end_user"}, "cannot combine 'tag' and 'end_user'"),
    ],
)
def test_parse_rejects(params: dict[str, str], fragment: str) -> None:
    with pytest.raises(SpendQueryError) as info:
        SpendQuery.parse(params, today=date(2026, 2, 10))
    assert fragment in str(info.value)


def test_parse_defaults_to_the_real_current_month() -> None:
    query = SpendQuery.parse({})
    assert query.from_day.day == 1
    assert query.from_day <= query.to_day
    assert (query.to_day.year, query.to_day.month) == (query.from_day.year, query.from_day.month)
    assert date.fromordinal(query.to_day.toordinal() + 1).day == 1  # the month's last day


# --- summarize ------------------------------------------------------------------------------

FEB = SpendQuery(None, date(2026, 2, 1), date(2026, 2, 28))


def row(
    customer: str,
    day: str,
    route: str,
    provider: str,
    model: str,
    *metrics: int,
    dim: str | None = None,
) -> AggregateRow:
    return AggregateRow(customer, day, route, provider, model, Totals(*metrics), dim)


#                                                                 cost  req unp in cach out rsn
R1 = row(
    "acme",
    "2026-02-01",
    "gpt-4o",
    "openai",
    "gpt-4o-2024-08-06",
    1_000_000_001,
    2,
    0,
    100,
    10,
    50,
    5,
)
R2 = row("acme", "2026-02-02", "gpt-4o-mini", "openai", "gpt-4o-mini", 250, 1, 0, 40, 0, 8, 0)
R3 = row("globex", "2026-02-01", "gpt-4o-mini", "openai", "gpt-4o-mini", 3, 4, 1, 7, 2, 9, 1)
R4 = row("acme", "2026-02-01", "cheap", "groq", "llama-3.1-8b-instant", 0, 1, 1, 5, 0, 5, 0)
BASE = [R1, R2, R3, R4]


def metrics(
    cost: str, requests: int, unpriced: int, input: int, cached: int, output: int, reasoning: int
) -> dict:
    return {
        "cost_usd": cost,
        "requests": requests,
        "unpriced_requests": unpriced,
        "input_tokens": input,
        "cached_input_tokens": cached,
        "output_tokens": output,
        "reasoning_tokens": reasoning,
        # Dimensions these rows do not use: zero, and present in every answer.
        "cache_write_5m_tokens": 0,
        "cache_write_1h_tokens": 0,
        "input_audio_tokens": 0,
        "output_audio_tokens": 0,
        "web_search_requests": 0,
        "estimated_requests": 0,
        "billable_usd": "0.000000000",
    }


TOTAL = metrics("1.000000254", 8, 2, 152, 12, 72, 6)


def with_group_by(*dims: str) -> SpendQuery:
    return SpendQuery(FEB.customer, FEB.from_day, FEB.to_day, dims)


def test_summary_without_groups() -> None:
    assert summarize(SpendQuery("acme", date(2026, 2, 1), date(2026, 2, 28)), BASE) == {
        "from": "2026-02-01",
        "to": "2026-02-28",
        "customer": "acme",
        "group_by": [],
        "total": TOTAL,
    }


def test_summary_of_nothing_is_zero() -> None:
    answer = summarize(with_group_by("model"), [])
    assert answer["total"] == metrics("0.000000000", 0, 0, 0, 0, 0, 0)
    assert answer["groups"] == []


@pytest.mark.parametrize(
    ("group_by", "groups"),
    [
        (
            ("model",),
            [
                {"model": "gpt-4o-2024-08-06", **metrics("1.000000001", 2, 0, 100, 10, 50, 5)},
                {"model": "gpt-4o-mini", **metrics("0.000000253", 5, 1, 47, 2, 17, 1)},
                {"model": "llama-3.1-8b-instant", **metrics("0.000000000", 1, 1, 5, 0, 5, 0)},
            ],
        ),
        (
            ("provider",),
            [
                {"provider": "groq", **metrics("0.000000000", 1, 1, 5, 0, 5, 0)},
                {"provider": "openai", **metrics("1.000000254", 7, 1, 147, 12, 67, 6)},
            ],
        ),
        (
            ("customer", "day"),
            [
                {
                    "customer": "acme",
                    "day": "2026-02-01",
                    **metrics("1.000000001", 3, 1, 105, 10, 55, 5),
                },
                {
                    "customer": "acme",
                    "day": "2026-02-02",
                    **metrics("0.000000250", 1, 0, 40, 0, 8, 0),
                },
                {
                    "customer": "globex",
                    "day": "2026-02-01",
                    **metrics("0.000000003", 4, 1, 7, 2, 9, 1),
                },
            ],
        ),
        (
            ("day", "customer"),
            [
                {
                    "day": "2026-02-01",
                    "customer": "acme",
                    **metrics("1.000000001", 3, 1, 105, 10, 55, 5),
                },
                {
                    "day": "2026-02-01",
                    "customer": "globex",
                    **metrics("0.000000003", 4, 1, 7, 2, 9, 1),
                },
                {
                    "day": "2026-02-02",
                    "customer": "acme",
                    **metrics("0.000000250", 1, 0, 40, 0, 8, 0),
                },
            ],
        ),
    ],
)
def test_groups_per_dimension(group_by: tuple[str, ...], groups: list[dict]) -> None:
    answer = summarize(with_group_by(*group_by), BASE)
    assert answer["group_by"] == list(group_by)
    assert answer["total"] == TOTAL
    assert answer["groups"] == groups


@pytest.mark.parametrize(
    "group_by",
    [
        ("customer",),
        ("model",),
        ("route",),
        ("provider",),
        ("day",),
        ("route", "provider", "model"),
        ("customer", "day", "model"),
    ],
)
def test_base_groups_add_up_to_the_total(group_by: tuple[str, ...]) -> None:
    answer = summarize(with_group_by(*group_by), BASE)
    groups = answer["groups"]
    assert sum(Decimal(g["cost_usd"]) for g in groups) == Decimal(answer["total"]["cost_usd"])
    for name in METRIC_FIELDS:
        key = name.removesuffix("_nusd") + "_usd" if name in MONEY_FIELDS else name
        total = sum(Decimal(g[key]) for g in groups)
        assert total == Decimal(answer["total"][key]), name


@pytest.mark.parametrize(
    "group_by", [("model",), ("customer", "day"), ("route", "provider", "model")]
)
def test_groups_are_sorted_whatever_the_row_order(group_by: tuple[str, ...]) -> None:
    query = with_group_by(*group_by)
    forward = summarize(query, BASE)
    assert summarize(query, list(reversed(BASE))) == forward
    assert summarize(query, [R3, R1, R4, R2]) == forward
    keys = [tuple(g[d] for d in group_by) for g in forward["groups"]]
    assert keys == sorted(keys)


# A request tagged env=prod and team=search appears in both tag rows: the tag breakdown.
TAG_ROWS = [
    row(
        "acme",
        "2026-02-01",
        "gpt-4o",
        "openai",
        "gpt-4o-2024-08-06",
        1_000_000_001,
        2,
        0,
        100,
        10,
        50,
        5,
        dim="team=search",
    ),
    row(
        "acme",
        "2026-02-01",
        "gpt-4o",
        "openai",
        "gpt-4o-2024-08-06",
        1_000_000_001,
        2,
        0,
        100,
        10,
        50,
        5,
        dim="env=prod",
    ),
    row(
        "acme", "2026-02-02", "gpt-4o-mini", "openai", "gpt-4o-mini", 250, 1, 0, 40, 0, 8, 0, dim=""
    ),
    row(
        "globex",
        "2026-02-01",
        "gpt-4o-mini",
        "openai",
        "gpt-4o-mini",
        3,
        4,
        1,
        7,
        2,
        9,
        1,
        dim="env=prod",
    ),
    row("acme", "2026-02-01", "cheap", "groq", "llama-3.1-8b-instant", 0, 1, 1, 5, 0, 5, 0, dim=""),
]


def test_tag_groups_use_the_breakdown_rows_and_none_for_untagged() -> None:
    answer = summarize(with_group_by("tag"), BASE, TAG_ROWS)
    assert answer["total"] == TOTAL  # from the base rows, not the (overlapping) tag rows
    assert answer["groups"] == [
        {"tag": None, **metrics("0.000000250", 2, 1, 45, 0, 13, 0)},
        {"tag": "env=prod", **metrics("1.000000004", 6, 1, 107, 12, 59, 6)},
        {"tag": "team=search", **metrics("1.000000001", 2, 0, 100, 10, 50, 5)},
    ]


def test_tag_groups_combined_with_a_base_dimension() -> None:
    answer = summarize(with_group_by("tag", "customer"), BASE, list(reversed(TAG_ROWS)))
    assert [(g["tag"], g["customer"], g["cost_usd"]) for g in answer["groups"]] == [
        (None, "acme", "0.000000250"),
        ("env=prod", "acme", "1.000000001"),
        ("env=prod", "globex", "0.000000003"),
        ("team=search", "acme", "1.000000001"),
    ]


def test_end_user_groups() -> None:
    rows = [
        row("acme", "2026-02-01", "gpt-4o", "openai", "gpt-4o", 7, 1, 0, 1, 0, 1, 0, dim="u-2"),
        row("acme", "2026-02-01", "gpt-4o", "openai", "gpt-4o", 5, 1, 0, 1, 0, 1, 0, dim=""),
        row("acme", "2026-02-02", "gpt-4o", "openai", "gpt-4o", 11, 2, 0, 1, 0, 1, 0, dim="u-1"),
        row("acme", "2026-02-03", "gpt-4o", "openai", "gpt-4o", 13, 1, 0, 1, 0, 1, 0, dim="u-2"),
    ]
    answer = summarize(with_group_by("end_user"), BASE, rows)
    assert [(g["end_user"], g["cost_usd"], g["requests"]) for g in answer["groups"]] == [
        (None, "0.000000005", 1),
        ("u-1", "0.000000011", 2),
        ("u-2", "0.000000020", 2),
    ]


def test_every_cost_string_has_nine_decimals() -> None:
    answer = summarize(with_group_by("customer", "model"), BASE)
    costs = [answer["total"]["cost_usd"]] + [g["cost_usd"] for g in answer["groups"]]
    assert costs and all(re.fullmatch(r"\d+\.\d{9}", cost) for cost in costs)


def test_totals_json_field_order() -> None:
    assert list(totals_json(Totals(-5, 1, 0, 2, 1, 3, 2)).items()) == [
        ("cost_usd", "-0.000000005"),
        ("requests", 1),
        ("unpriced_requests", 0),
        ("input_tokens", 2),
        ("cached_input_tokens", 1),
        ("output_tokens", 3),
        ("reasoning_tokens", 2),
        ("cache_write_5m_tokens", 0),
        ("cache_write_1h_tokens", 0),
        ("input_audio_tokens", 0),
        ("output_audio_tokens", 0),
        ("web_search_requests", 0),
        ("estimated_requests", 0),
        ("billable_usd", "0.000000000"),
    ]


# --- records --------------------------------------------------------------------------------


def record(**overrides: object) -> UsageRecord:
    values: dict[str, object] = {
        "request_id": "req-1",
        "ts_ms": 1_770_681_600_000,
        "customer": "acme",
        "route": "gpt-4o",
        "provider": "openai",
        "model": "gpt-4o-2024-08-06",
        "endpoint": "chat.completions",
        "status": 200,
        "input_tokens": 10,
        "cached_input_tokens": 2,
        "output_tokens": 3,
        "reasoning_tokens": 1,
        "cost_nusd": 42,
    }
    values.update(overrides)
    return UsageRecord(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("cost", "expected"),
    [
        (42, Totals(42, 1, 0, 10, 2, 3, 1)),
        (0, Totals(0, 1, 0, 10, 2, 3, 1)),  # free is priced
        (None, Totals(0, 1, 1, 10, 2, 3, 1)),  # no price: counted, cost unknown
    ],
)
def test_totals_of_a_record(cost: int | None, expected: Totals) -> None:
    assert Totals.of(record(cost_nusd=cost)) == expected


def test_totals_add_and_as_tuple_follow_metric_fields() -> None:
    totals = Totals(*range(1, 15))
    totals.add(Totals(*range(10, 150, 10)))
    assert totals.as_tuple() == tuple(11 * i for i in range(1, 15))
    assert METRIC_FIELDS == (
        "cost_nusd",
        "requests",
        "unpriced_requests",
        "input_tokens",
        "cached_input_tokens",
        "output_tokens",
        "reasoning_tokens",
        "cache_write_5m_tokens",
        "cache_write_1h_tokens",
        "input_audio_tokens",
        "output_audio_tokens",
        "web_search_requests",
        "estimated_requests",
        "billable_nusd",
    )


def test_usage_record_round_trips_through_a_dict() -> None:
    original = record(tags=("env=prod", "team=a"), end_user="u-1", key_id="k", ttft_ms=12.5)
    data = original.to_dict()
    assert data["tags"] == ("env=prod", "team=a")
    assert UsageRecord.from_dict(data) == original


def test_usage_record_from_dict_tolerates_stored_shapes() -> None:
    data = record().to_dict() | {"tags": ["env=prod"], "column_from_a_newer_version": 1}
    restored = UsageRecord.from_dict(data)
    assert restored.tags == ("env=prod",)
    assert UsageRecord.from_dict(record().to_dict() | {"tags": None}).tags == ()
