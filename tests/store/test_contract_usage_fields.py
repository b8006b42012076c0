"""Every billed dimension of a usage record, on every store: each field round-trips through
get_usage and the export's iter_usage, and the aggregates sum the new metrics exactly."""

from __future__ import annotations

from dataclasses import MISSING, fields

import pytest

from proxy.accounting.records import Totals, UsageRecord
from tests.support.records import DAY, make_record, record_all, total_of, ts
from tests.support.stores import AnyStore

EVERY_FIELD = make_record(
    cached_input_tokens=30,
    reasoning_tokens=7,
    cache_write_5m_tokens=11,
    cache_write_1h_tokens=13,
    input_audio_tokens=17,
    input_image_tokens=19,
    output_audio_tokens=5,
    output_image_tokens=3,
    web_search_requests=2,
    service_tier="flex",
    provider_cost_nusd=2_198_550,
    billable_nusd=1_800,
    usage_source="estimated",
    what_if={"rival/mini-like": 1_234, "rival/budget": 5},
    tags=("env=prod",),
    end_user="player-9",
    key_id="key-1",
    ttft_ms=12.5,
    latency_ms=250.5,
    attempts=2,
)
NONES = make_record(service_tier=None, provider_cost_nusd=None, billable_nusd=None, cost_nusd=None)


def test_the_record_above_sets_every_optional_field() -> None:
    # A field added to the record later without a value here fails this test, so the
    # round trip below keeps covering every field.
    defaults = {f.name: f.default for f in fields(UsageRecord) if f.default is not MISSING}
    defaults |= {"tags": (), "what_if": {}}
    assert [name for name, value in defaults.items() if getattr(EVERY_FIELD, name) == value] == []


@pytest.mark.parametrize("record", [EVERY_FIELD, NONES], ids=["every-field", "nones"])
async def test_every_field_round_trips(store: AnyStore, record: UsageRecord) -> None:
    await store.record_usage(record)

    assert await store.get_usage(record.request_id) == record
    exported = [
        r async for r in store.iter_usage(customer="acme", from_ms=0, to_ms=ts("2027-01-01T00:00"))
    ]
    assert exported == [record]
    assert isinstance(exported[0].what_if, dict)


async def test_aggregates_sum_every_metric(store: AnyStore) -> None:
    records = [
        EVERY_FIELD,
        make_record(cache_write_5m_tokens=1, input_audio_tokens=2, web_search_requests=3),
        make_record(usage_source="estimated", billable_nusd=10**15),
        make_record(output_audio_tokens=9, cache_write_1h_tokens=4),
    ]
    await record_all(store, records)

    [row] = await store.aggregate_rows(customer="acme", from_day=DAY, to_day=DAY, breakdown="base")
    want = total_of(records)
    assert row.totals == want
    assert (want.cache_write_5m_tokens, want.cache_write_1h_tokens) == (12, 17)
    assert (want.input_audio_tokens, want.output_audio_tokens) == (19, 14)
    assert (want.web_search_requests, want.estimated_requests) == (5, 2)
    assert want.billable_nusd == 10**15 + 1_800
    assert await store.monthly_totals("acme", "2026-11") == want


async def test_the_new_metrics_start_at_zero(store: AnyStore) -> None:
    await store.record_usage(make_record())
    [row] = await store.aggregate_rows(customer="acme", from_day=DAY, to_day=DAY, breakdown="base")
    assert row.totals == Totals.of(make_record())
