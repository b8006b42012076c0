"""Usage records for tests: a record with defaults, exact UTC timestamps, sums."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from proxy.accounting.records import Totals, UsageRecord
from tests.support.stores import AnyStore

__all__ = ["DAY", "EPOCH", "make_record", "record_all", "total_of", "ts"]

DAY = date(2026, 11, 28)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def ts(iso: str) -> int:
    """UTC epoch milliseconds of an ISO time, computed exactly (no float seconds)."""
    return (datetime.fromisoformat(iso).replace(tzinfo=UTC) - EPOCH) // timedelta(milliseconds=1)


def make_record(**overrides: object) -> UsageRecord:
    values: dict[str, object] = {
        "request_id": f"req-{uuid.uuid4().hex}",
        "ts_ms": ts("2026-11-28T12:00:00"),
        "customer": "acme",
        "route": "gpt-4o",
        "provider": "openai",
        "model": "gpt-4o-2024-08-06",
        "endpoint": "chat.completions",
        "status": 200,
        "input_tokens": 100,
        "output_tokens": 20,
        "cost_nusd": 1_500,
    }
    values.update(overrides)
    return UsageRecord(**values)  # type: ignore[arg-type]


def total_of(records: list[UsageRecord]) -> Totals:
    totals = Totals()
    for record in records:
        totals.add(Totals.of(record))
    return totals


async def record_all(store: AnyStore, records: list[UsageRecord]) -> None:
    for record in records:
        assert await store.record_usage(record) is True


