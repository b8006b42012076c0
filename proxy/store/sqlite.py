"""The embedded store: one SQLite file, the default when no Redis is configured.

sqlite3 blocks, so every call runs on one dedicated thread that owns the only connection:
writes are serialised without locks and the event loop never waits on the disk.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields
from datetime import date
from pathlib import Path
from typing import TypeVar

import orjson

from proxy.records import METRIC_FIELDS, AggregateRow, Breakdown, Totals, UsageRecord, WhatIfRow
from proxy.store.buckets import (
    end_user_dim,
    row_sort_key,
    tag_dims,
    utc_day,
    utc_month,
    what_if_sort_key,
)

__all__ = ["SQLiteStore"]

T = TypeVar("T")

_RECORD_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(UsageRecord))
_BASE_KEYS = ("customer", "day", "route", "provider", "model")
# Aggregate table and its key columns per breakdown; the dim column (if any) comes last.
_DAILY: dict[Breakdown, tuple[str, tuple[str, ...]]] = {
    "base": ("daily_base", _BASE_KEYS),
    "tag": ("daily_tag", (*_BASE_KEYS, "tag")),
    "end_user": ("daily_end_user", (*_BASE_KEYS, "end_user")),
}
_MONTHLY = ("monthly_totals", ("customer", "month"))
# Per alternative of the what_if rules: the actual metrics of the requests it covers, plus
# what they would have cost there (an extra column, so the shared upsert builder fits).
_WHAT_IF = ("daily_what_if", (*_BASE_KEYS, "alternative"))
_WHAT_IF_METRICS = (*METRIC_FIELDS, "what_if_nusd")
# Columns of the usage log stored as JSON text.
_JSON_COLUMNS = frozenset({"tags", "what_if"})


def _aggregate_ddl(
    table: str, keys: tuple[str, ...], metrics: tuple[str, ...] = METRIC_FIELDS
) -> str:
    key_ddl = "".join(f"    {k} TEXT NOT NULL,\n" for k in keys)
    metrics_ddl = ",\n".join(f"    {m} INTEGER NOT NULL DEFAULT 0" for m in metrics)
    return (
        f"CREATE TABLE IF NOT EXISTS {table} (\n{key_ddl}{metrics_ddl},\n"
        f"    PRIMARY KEY ({', '.join(keys)})\n) WITHOUT ROWID;\n"
    )


def _upsert_sql(table: str, keys: tuple[str, ...], metrics: tuple[str, ...] = METRIC_FIELDS) -> str:
    columns = (*keys, *metrics)
    additions = ", ".join(f"{m} = {m} + excluded.{m}" for m in metrics)
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {additions}"
    )


# The usage log keeps its implicit rowid: it grows with insertion order, so "oldest" is
# "smallest rowid" and trimming needs no extra index.
_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS usage_log (
    request_id TEXT PRIMARY KEY,
    ts_ms INTEGER NOT NULL,
    customer TEXT NOT NULL,
    route TEXT NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    status INTEGER NOT NULL,
    input_tokens INTEGER NOT NULL,
    cached_input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    reasoning_tokens INTEGER NOT NULL,
    cost_nusd INTEGER,
    usage_source TEXT NOT NULL,
    end_user TEXT,
    tags TEXT NOT NULL,
    key_id TEXT,
    latency_ms REAL NOT NULL,
    ttft_ms REAL,
    attempts INTEGER NOT NULL,
    what_if TEXT NOT NULL DEFAULT '{}'
);
"""
    + "".join(_aggregate_ddl(table, keys) for table, keys in _DAILY.values())
    + _aggregate_ddl(*_MONTHLY)
    + _aggregate_ddl(*_WHAT_IF, _WHAT_IF_METRICS)
)
# Columns added after the first release, for files created by an older version.
_ADDED_COLUMNS = {"what_if": "ALTER TABLE usage_log ADD COLUMN what_if TEXT NOT NULL DEFAULT '{}'"}

_INSERT_USAGE = (
    f"INSERT INTO usage_log ({', '.join(_RECORD_COLUMNS)})"
    f" VALUES ({', '.join('?' * len(_RECORD_COLUMNS))}) ON CONFLICT (request_id) DO NOTHING"
)
_SELECT_USAGE = f"SELECT {', '.join(_RECORD_COLUMNS)} FROM usage_log WHERE request_id = ?"
_UPSERT_DAILY = {breakdown: _upsert_sql(*spec) for breakdown, spec in _DAILY.items()}
_UPSERT_MONTHLY = _upsert_sql(*_MONTHLY)
_UPSERT_WHAT_IF = _upsert_sql(*_WHAT_IF, _WHAT_IF_METRICS)
_SELECT_MONTHLY = (
    f"SELECT {', '.join(METRIC_FIELDS)} FROM {_MONTHLY[0]} WHERE customer = ? AND month = ?"
)
# Deletes at most `cap` rows per call, so a lowered limit catches up over several trims
# instead of stalling the writer thread (and every request waiting on it) in one go.
_TRIM_USAGE = (
    "DELETE FROM usage_log WHERE rowid <= min("
    "(SELECT max(rowid) FROM usage_log) - :keep, (SELECT min(rowid) FROM usage_log) + :cap)"
)


class SQLiteStore:
    """A `Store` in one SQLite file (WAL mode); parent directories are created on open.

    The usage log keeps at most about `usage_log_max_rows` rows: the oldest are deleted every
    `usage_log_trim_every` inserts. Aggregates are separate tables, so trimming never
    changes what anyone spent.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        usage_log_max_rows: int = 10_000_000,
        usage_log_trim_every: int = 1000,
    ) -> None:
        self.path = Path(path)
        self.usage_log_max_rows = usage_log_max_rows
        self.usage_log_trim_every = usage_log_trim_every
        self._executor: ThreadPoolExecutor | None = None
        # Records waiting for the writer; appended on the loop, taken on the worker thread
        # (deque append/popleft are thread-safe).
        self._pending: deque[tuple[UsageRecord, asyncio.Future[bool]]] = deque()
        self._write_queued = False
        # Touched only on the worker thread.
        self._conn: sqlite3.Connection | None = None
        self._inserts_since_trim = 0

    async def open(self) -> None:
        if self._executor is not None:
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-store")
        try:
            await self._run(self._connect)
        except BaseException:
            self._executor.shutdown(wait=True)
            self._executor = None
            raise

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        try:
            await asyncio.get_running_loop().run_in_executor(executor, self._disconnect)
        finally:
            executor.shutdown(wait=True)

    async def record_usage(self, record: UsageRecord) -> bool:
        executor = self._opened()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        self._pending.append((record, future))
        # Group commit: one worker job writes every record queued by then in one
        # transaction, so concurrent requests share the thread hop and the commit.
        if not self._write_queued:
            self._write_queued = True
            executor.submit(self._write_pending, loop)
        return await future

    async def aggregate_rows(
        self, *, customer: str | None, from_day: date, to_day: date, breakdown: Breakdown
    ) -> list[AggregateRow]:
        return await self._run(
            self._aggregate_rows, customer, from_day.isoformat(), to_day.isoformat(), breakdown
        )

    async def get_usage(self, request_id: str) -> UsageRecord | None:
        return await self._run(self._get_usage, request_id)

    async def what_if_rows(
        self, *, customer: str | None, from_day: date, to_day: date
    ) -> list[WhatIfRow]:
        return await self._run(
            self._what_if_rows, customer, from_day.isoformat(), to_day.isoformat()
        )

    async def monthly_totals(self, customer: str, month: str) -> Totals:
        """Totals of `customer` in the UTC month `month` ("YYYY-MM"); zeros when none."""
        return await self._run(self._monthly_totals, customer, month)

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._opened(), fn, *args)

    def _opened(self) -> ThreadPoolExecutor:
        if self._executor is None:
            raise RuntimeError("SQLiteStore is not open")
        return self._executor

    # Everything below runs on the worker thread.

    def _connect(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit mode: transactions are begun and ended explicitly below.
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL: a commit survives a process crash; only an OS crash or power
            # loss can lose the last transactions, and never corrupts the file.
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=5000")
            conn.executescript(_SCHEMA)
            present = {row[1] for row in conn.execute("PRAGMA table_info(usage_log)")}
            for column, ddl in _ADDED_COLUMNS.items():
                if column not in present:
                    conn.execute(ddl)
            # A process that restarts before `usage_log_trim_every` inserts would never trim.
            self._trim(conn)
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("SQLiteStore is not open")
        return self._conn

    def _trim(self, conn: sqlite3.Connection) -> None:
        cap = 10 * self.usage_log_trim_every
        conn.execute(_TRIM_USAGE, {"keep": self.usage_log_max_rows, "cap": cap})

    def _write_pending(self, loop: asyncio.AbstractEventLoop) -> None:
        # Cleared before taking the batch: a record queued after this line either is taken
        # below or queues a new job; none is left waiting.
        self._write_queued = False
        batch = [self._pending.popleft() for _ in range(len(self._pending))]
        if not batch:
            return
        results: list[bool | BaseException] = []
        try:
            conn = self._connection()
            conn.execute("BEGIN")
            for record, _ in batch:
                # A savepoint per record: each is still all or nothing, and a record that
                # fails (its caller gets the error) does not fail the others of the batch.
                conn.execute("SAVEPOINT record")
                try:
                    results.append(self._apply(conn, record))
                except Exception as error:
                    conn.execute("ROLLBACK TO record")
                    results.append(error)
                conn.execute("RELEASE record")
            conn.execute("COMMIT")
        except BaseException as error:
            if self._conn is not None and self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            results = [error] * len(batch)
        loop.call_soon_threadsafe(_settle, [future for _, future in batch], results)

    def _apply(self, conn: sqlite3.Connection, record: UsageRecord) -> bool:
        row = tuple(
            orjson.dumps(getattr(record, name)).decode()
            if name in _JSON_COLUMNS
            else getattr(record, name)
            for name in _RECORD_COLUMNS
        )
        if conn.execute(_INSERT_USAGE, row).rowcount == 0:
            return False  # seen before: the aggregates already hold it
        metrics = Totals.of(record).as_tuple()
        base = (record.customer, utc_day(record.ts_ms), record.route, record.provider)
        base += (record.model,)
        conn.execute(_UPSERT_DAILY["base"], (*base, *metrics))
        conn.executemany(_UPSERT_DAILY["tag"], [(*base, tag, *metrics) for tag in tag_dims(record)])
        conn.execute(_UPSERT_DAILY["end_user"], (*base, end_user_dim(record), *metrics))
        conn.execute(_UPSERT_MONTHLY, (record.customer, utc_month(record.ts_ms), *metrics))
        conn.executemany(
            _UPSERT_WHAT_IF,
            [(*base, name, *metrics, nusd) for name, nusd in sorted(record.what_if.items())],
        )
        self._inserts_since_trim += 1
        if self._inserts_since_trim >= self.usage_log_trim_every:
            self._inserts_since_trim = 0
            self._trim(conn)
        return True

    def _aggregate_rows(
        self, customer: str | None, from_day: str, to_day: str, breakdown: Breakdown
    ) -> list[AggregateRow]:
        table, keys = _DAILY[breakdown]
        sql = f"SELECT {', '.join((*keys, *METRIC_FIELDS))} FROM {table} WHERE day BETWEEN ? AND ?"
        params: tuple[str, ...] = (from_day, to_day)
        if customer is not None:
            sql += " AND customer = ?"
            params += (customer,)
        has_dim = len(keys) > len(_BASE_KEYS)
        rows = []
        for values in self._connection().execute(sql, params):
            rows.append(
                AggregateRow(
                    *values[: len(_BASE_KEYS)],
                    totals=Totals(*values[len(keys) :]),
                    dim=values[len(_BASE_KEYS)] if has_dim else None,
                )
            )
        rows.sort(key=row_sort_key)
        return rows

    def _get_usage(self, request_id: str) -> UsageRecord | None:
        values = self._connection().execute(_SELECT_USAGE, (request_id,)).fetchone()
        if values is None:
            return None
        data = dict(zip(_RECORD_COLUMNS, values, strict=True))
        data["tags"] = tuple(orjson.loads(data["tags"]))
        data["what_if"] = orjson.loads(data["what_if"])
        return UsageRecord(**data)

    def _what_if_rows(self, customer: str | None, from_day: str, to_day: str) -> list[WhatIfRow]:
        table, keys = _WHAT_IF
        sql = (
            f"SELECT {', '.join((*keys, *_WHAT_IF_METRICS))} FROM {table} WHERE day BETWEEN ? AND ?"
        )
        params: tuple[str, ...] = (from_day, to_day)
        if customer is not None:
            sql += " AND customer = ?"
            params += (customer,)
        rows = [
            WhatIfRow(
                *values[: len(keys)],
                totals=Totals(*values[len(keys) : -1]),
                what_if_nusd=values[-1],
            )
            for values in self._connection().execute(sql, params)
        ]
        rows.sort(key=what_if_sort_key)
        return rows

    def _monthly_totals(self, customer: str, month: str) -> Totals:
        values = self._connection().execute(_SELECT_MONTHLY, (customer, month)).fetchone()
        return Totals(*values) if values is not None else Totals()


def _settle(futures: list[asyncio.Future[bool]], results: list[bool | BaseException]) -> None:
    """Hand each caller its record's outcome (on the event loop)."""
    for future, result in zip(futures, results, strict=True):
        if future.done():  # its caller was cancelled; the record is written all the same
            continue
        if isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result)
