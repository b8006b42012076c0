"""SQLiteStore behaviour beyond the shared contract: file layout and usage-log trimming."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from datetime import date
from pathlib import Path

import pytest

from proxy.store import SQLiteStore
from tests.support.records import make_record, total_of


def log_rows(path: Path) -> int:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute("SELECT count(*) FROM usage_log").fetchone()[0]


async def test_open_creates_parent_directories_and_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "usage.db"
    store = SQLiteStore(path)
    await store.open()
    try:
        await store.record_usage(make_record())
    finally:
        await store.close()

    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_usage_log_is_trimmed_but_spend_is_not(tmp_path: Path) -> None:
    path = tmp_path / "usage.db"
    store = SQLiteStore(path, usage_log_max_rows=10, usage_log_trim_every=5)
    await store.open()
    records = [make_record(cost_nusd=i) for i in range(1, 41)]
    try:
        for record in records:
            await store.record_usage(record)

        assert log_rows(path) == 10  # the 40th insert trimmed exactly down to the limit
        assert await store.get_usage(records[0].request_id) is None
        assert await store.get_usage(records[-1].request_id) == records[-1]
        assert await store.monthly_totals("acme", "2026-11") == total_of(records)
    finally:
        await store.close()


async def test_a_lowered_limit_is_applied_on_open(tmp_path: Path) -> None:
    path = tmp_path / "usage.db"
    store = SQLiteStore(path)
    await store.open()
    for _ in range(30):
        await store.record_usage(make_record())
    await store.close()

    store = SQLiteStore(path, usage_log_max_rows=8)
    await store.open()
    await store.close()

    assert log_rows(path) == 8


async def test_calls_before_open_fail_loudly(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "usage.db")

    with pytest.raises(RuntimeError, match="not open"):
        await store.monthly_totals("acme", "2026-11")
    with pytest.raises(RuntimeError, match="not open"):
        await store.record_usage(make_record())
    await store.close()  # closing a store never opened is harmless


async def test_a_failing_record_rolls_back_alone(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "usage.db")
    await store.open()
    good = [make_record(cost_nusd=1), make_record(cost_nusd=2)]
    # Fails after its usage row and base aggregate are written: at the tag aggregate.
    bad = make_record(tags=(("not", "a", "string"),))  # type: ignore[arg-type]
    try:
        # Gathered, so all three are written by one group commit.
        results = await asyncio.gather(
            store.record_usage(good[0]),
            store.record_usage(bad),
            store.record_usage(good[1]),
            return_exceptions=True,
        )

        assert results[0] is True and results[2] is True
        assert isinstance(results[1], sqlite3.Error)
        assert await store.get_usage(bad.request_id) is None
        assert await store.monthly_totals("acme", "2026-11") == total_of(good)
        assert await store.record_usage(make_record(tags=("ok=1",))) is True
    finally:
        await store.close()


async def test_a_file_from_before_what_if_gains_the_column(tmp_path: Path) -> None:
    path = tmp_path / "usage.db"
    store = SQLiteStore(path)
    await store.open()
    old = make_record()
    await store.record_usage(old)
    await store.close()
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("ALTER TABLE usage_log DROP COLUMN what_if")  # the first release's shape

    store = SQLiteStore(path)
    await store.open()
    try:
        assert await store.get_usage(old.request_id) == old
        new = make_record(what_if={"ai21/jamba-large": 3})
        assert await store.record_usage(new) is True
        assert await store.get_usage(new.request_id) == new
    finally:
        await store.close()


async def test_a_store_from_before_the_console_gets_its_console_figures_once(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    store = SQLiteStore(path)
    await store.open()
    records = [
        make_record(customer=f"c{i % 3}", ts_ms=1_795_000_000_000 + i * 3_600_000, cost_nusd=i + 1,
                    what_if={"ai21/jamba-large": i})
        for i in range(100)
    ]  # fmt: skip
    try:
        for record in records:
            await store.record_usage(record)
        first, last = date(2026, 1, 1), date(2027, 1, 1)
        expected = (
            await store.global_rows(from_day=first, to_day=last),
            await store.global_what_if_rows(from_day=first, to_day=last),
            await store.rank_customers(from_day=first, to_day=last),
        )
    finally:
        await store.close()
    # What a file written by an older version looks like: no console tables at all.
    with closing(sqlite3.connect(path)) as conn:
        for table in ("console_daily", "console_what_if", "console_customer_blocks",
                      "console_minute", "console_meta"):  # fmt: skip
            conn.execute(f"DROP TABLE {table}")
    for _ in range(2):  # filled on the first open only: the second must not add again
        store = SQLiteStore(path)
        await store.open()
        try:
            assert (
                await store.global_rows(from_day=first, to_day=last),
                await store.global_what_if_rows(from_day=first, to_day=last),
                await store.rank_customers(from_day=first, to_day=last),
            ) == expected
        finally:
            await store.close()
    assert expected[2].count == 3
    assert sum(r.totals.cost_nusd for r in expected[2].rows) == total_of(records).cost_nusd
