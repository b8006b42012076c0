"""Data written by the previous version (before the record carried cache writes, audio,
image and search counts, service tier, provider cost and billable amount) reads back
under this one: an SQLite file gains the columns and keeps its rows; Redis entries
without the new fields read back with their defaults."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import AsyncIterator
from contextlib import closing
from dataclasses import asdict
from pathlib import Path

import orjson
import pytest
import redis.asyncio as aioredis

from proxy.accounting.records import Totals
from proxy.store import RedisStore, SQLiteStore
from tests.support.records import DAY, make_record, ts
from tests.support.redis_server import RedisServer

# The fields of a usage record before this version, in its order.
PREVIOUS_FIELDS = (
    "request_id", "ts_ms", "customer", "route", "provider", "model", "endpoint", "status",
    "input_tokens", "cached_input_tokens", "output_tokens", "reasoning_tokens", "cost_nusd",
    "usage_source", "end_user", "tags", "key_id", "latency_ms", "ttft_ms", "attempts",
    "what_if",
)  # fmt: skip
PREVIOUS_METRICS = (
    "cost_nusd", "requests", "unpriced_requests", "input_tokens", "cached_input_tokens",
    "output_tokens", "reasoning_tokens",
)  # fmt: skip


def _aggregate(table: str, keys: tuple[str, ...]) -> str:
    columns = [f"{k} TEXT NOT NULL" for k in keys]
    columns += [f"{m} INTEGER NOT NULL DEFAULT 0" for m in PREVIOUS_METRICS]
    return f"CREATE TABLE {table} ({', '.join(columns)}, PRIMARY KEY ({', '.join(keys)}))"


BASE = ("customer", "day", "route", "provider", "model")
# The previous version's schema, as it created files (copied, not imported: this file
# must keep describing the old shape whatever the schema module becomes).
PREVIOUS_SCHEMA = [
    """CREATE TABLE usage_log (
        request_id TEXT PRIMARY KEY, ts_ms INTEGER NOT NULL, customer TEXT NOT NULL,
        route TEXT NOT NULL, provider TEXT NOT NULL, model TEXT NOT NULL,
        endpoint TEXT NOT NULL, status INTEGER NOT NULL, input_tokens INTEGER NOT NULL,
        cached_input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL,
        reasoning_tokens INTEGER NOT NULL, cost_nusd INTEGER, usage_source TEXT NOT NULL,
        end_user TEXT, tags TEXT NOT NULL, key_id TEXT, latency_ms REAL NOT NULL,
        ttft_ms REAL, attempts INTEGER NOT NULL, what_if TEXT NOT NULL DEFAULT '{}')""",
    _aggregate("daily_base", BASE),
    _aggregate("daily_tag", (*BASE, "tag")),
    _aggregate("daily_end_user", (*BASE, "end_user")),
    _aggregate("monthly_totals", ("customer", "month")),
    _aggregate("daily_what_if", (*BASE, "alternative")).replace(
        "reasoning_tokens INTEGER NOT NULL DEFAULT 0,",
        "reasoning_tokens INTEGER NOT NULL DEFAULT 0, what_if_nusd INTEGER NOT NULL DEFAULT 0,",
    ),
]
OLD = make_record(
    request_id="req-old", cached_input_tokens=10, reasoning_tokens=2, tags=("env=prod",),
    what_if={"rival/budget": 7},
)  # fmt: skip


def old_row() -> tuple:
    values = asdict(OLD)
    values["tags"] = orjson.dumps(list(OLD.tags)).decode()
    values["what_if"] = orjson.dumps(OLD.what_if).decode()
    return tuple(values[name] for name in PREVIOUS_FIELDS)


def previous_version_file(path: Path) -> None:
    with closing(sqlite3.connect(path)) as conn, conn:
        for ddl in PREVIOUS_SCHEMA:
            conn.execute(ddl)
        row = old_row()
        conn.execute(f"INSERT INTO usage_log VALUES ({', '.join('?' * len(row))})", row)
        totals = Totals.of(OLD)
        key = ("acme", DAY.isoformat(), OLD.route, OLD.provider, OLD.model)
        aggregate = (*key, *(getattr(totals, m) for m in PREVIOUS_METRICS))
        conn.execute(
            f"INSERT INTO daily_base VALUES ({', '.join('?' * len(aggregate))})", aggregate
        )


async def test_an_sqlite_file_of_the_previous_version_gains_the_columns(tmp_path: Path) -> None:
    path = tmp_path / "usage.db"
    previous_version_file(path)
    store = SQLiteStore(path)
    await store.open()
    try:
        assert await store.get_usage(OLD.request_id) == OLD  # the new fields: defaults
        new = make_record(cache_write_1h_tokens=40, service_tier="priority", billable_nusd=9)
        assert await store.record_usage(new) is True
        assert await store.get_usage(new.request_id) == new
        exported = [r async for r in store.iter_usage(customer="acme", from_ms=0, to_ms=2**62)]
        assert exported == [OLD, new]
        [row] = await store.aggregate_rows(
            customer="acme", from_day=DAY, to_day=DAY, breakdown="base"
        )
        want = Totals.of(OLD)
        want.add(Totals.of(new))
        assert row.totals == want
        assert row.totals.cache_write_1h_tokens == 40
    finally:
        await store.close()
    with closing(sqlite3.connect(path)) as conn:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(usage_log)")}
        assert {"service_tier", "provider_cost_nusd", "billable_nusd"} <= columns


@pytest.fixture
async def redis_store(redis_server: RedisServer) -> AsyncIterator[RedisStore]:
    store = RedisStore(redis_server.url, key_prefix=f"t-{uuid.uuid4().hex[:12]}:")
    await store.open()
    yield store
    await store.close()


async def test_redis_entries_without_the_new_fields_read_back_with_defaults(
    redis_store: RedisStore, redis_server: RedisServer
) -> None:
    # Written as the previous version did: the same keys, a log entry whose record JSON
    # has only the previous fields, aggregates without the new counters.
    await redis_store.record_usage(OLD)
    layout, day = redis_store.layout, DAY.isoformat()
    old_json = orjson.dumps({name: getattr(OLD, name) for name in PREVIOUS_FIELDS})
    raw = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        entry = await raw.xadd(layout.log("acme"), {"record": old_json})
        await raw.hset(layout.request_ids("acme", day), OLD.request_id, entry)
    finally:
        await raw.aclose()

    assert await redis_store.get_usage(OLD.request_id) == OLD
    window = [
        r
        async for r in redis_store.iter_usage(
            customer="acme", from_ms=0, to_ms=ts("2027-01-01T00:00")
        )
    ]
    assert window == [OLD, OLD]  # the entry the store wrote, and the old-shaped one
    [row] = await redis_store.aggregate_rows(
        customer="acme", from_day=DAY, to_day=DAY, breakdown="base"
    )
    assert row.totals == Totals.of(OLD)  # counters never written read as 0
