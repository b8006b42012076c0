"""The embedded store: one SQLite file, the default when no Redis is configured.

sqlite3 blocks, so every call runs on one dedicated thread that owns the only connection:
writes are serialised without locks and the event loop never waits on the disk.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import TypeVar

import orjson

from proxy.accounting.records import AggregateRow, Breakdown, Totals, UsageRecord, WhatIfRow
from proxy.files import private_dir, shared_with_others, touch_private
from proxy.store.buckets import (
    end_user_dim,
    row_sort_key,
    tag_dims,
    utc_day,
    utc_month,
    what_if_sort_key,
)
from proxy.store.budgets_sqlite import BUDGET_SCHEMA, SQLiteBudgets
from proxy.store.console_sqlite import SQLiteConsoleMixin
from proxy.store.jobs_sqlite import JOBS_SCHEMA, SQLiteJobsMixin
from proxy.store.keys_sqlite import KEYS_SCHEMA, SQLiteKeysMixin
from proxy.store.sqlite_schema import (
    ADDED_COLUMNS,
    AGGREGATE_TABLES,
    BASE_KEYS,
    DAILY,
    INSERT_USAGE,
    JSON_COLUMNS,
    RECORD_COLUMNS,
    SCHEMA,
    SELECT_MONTHLY,
    SELECT_USAGE,
    TRIM_USAGE,
    UPSERT_DAILY,
    UPSERT_MONTHLY,
    UPSERT_WHAT_IF,
    WHAT_IF,
    missing_metric_columns,
    record_from_row,
    select_daily_sql,
    select_what_if_sql,
)

__all__ = ["SQLiteStore"]

log = logging.getLogger("costproxy.store")

T = TypeVar("T")


class SQLiteStore(SQLiteBudgets, SQLiteKeysMixin, SQLiteJobsMixin, SQLiteConsoleMixin):
    """A `Store` in one SQLite file (WAL mode); parent directories are created on open.

    The usage log keeps at most about `usage_log_max_rows` rows: the oldest are deleted every
    `usage_log_trim_every` inserts. Aggregates are separate tables, so trimming never
    changes what anyone spent.
    """

    unavailable_errors: tuple[type[BaseException], ...] = (sqlite3.OperationalError, OSError)

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

    async def ping(self) -> None:
        await self._run(self._ping)

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
        # Spend per customer: created readable by its owner only (SQLite gives its WAL and
        # shared-memory files the database file's mode).
        touch_private(private_dir(self.path.parent) / self.path.name)
        if shared_with_others(self.path):
            log.warning(
                "store file %s is readable by other users: chmod 600 it (and its -wal and "
                "-shm files)",
                self.path,
            )
        # Autocommit mode: transactions are begun and ended explicitly below.
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL: a commit survives a process crash; only an OS crash or power
            # loss can lose the last transactions, and never corrupts the file.
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=5000")
            conn.executescript(SCHEMA + BUDGET_SCHEMA + KEYS_SCHEMA + JOBS_SCHEMA)
            present = {row[1] for row in conn.execute("PRAGMA table_info(usage_log)")}
            for column, ddl in ADDED_COLUMNS.items():
                if column not in present:
                    conn.execute(ddl)
            for table in AGGREGATE_TABLES:
                columns = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
                for ddl in missing_metric_columns(table, columns):
                    conn.execute(ddl)
            self._prepare_console(conn)
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
        conn.execute(TRIM_USAGE, {"keep": self.usage_log_max_rows, "cap": cap})

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
            self._begin_console()
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
            self._write_console(conn)  # the batch's console figures, in its transaction
            conn.execute("COMMIT")
        except BaseException as error:
            if self._conn is not None and self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            results = [error] * len(batch)
        loop.call_soon_threadsafe(_settle, [future for _, future in batch], results)

    def _apply(self, conn: sqlite3.Connection, record: UsageRecord) -> bool:
        row = tuple(
            orjson.dumps(getattr(record, name)).decode()
            if name in JSON_COLUMNS
            else getattr(record, name)
            for name in RECORD_COLUMNS
        )
        if conn.execute(INSERT_USAGE, row).rowcount == 0:
            return False  # seen before: the aggregates already hold it
        metrics = Totals.of(record).as_tuple()
        day = utc_day(record.ts_ms)
        base = (record.customer, day, record.route, record.provider, record.model)
        conn.execute(UPSERT_DAILY["base"], (*base, *metrics))
        conn.executemany(UPSERT_DAILY["tag"], [(*base, tag, *metrics) for tag in tag_dims(record)])
        conn.execute(UPSERT_DAILY["end_user"], (*base, end_user_dim(record), *metrics))
        conn.execute(UPSERT_MONTHLY, (record.customer, utc_month(record.ts_ms), *metrics))
        conn.executemany(
            UPSERT_WHAT_IF,
            [(*base, name, *metrics, nusd) for name, nusd in sorted(record.what_if.items())],
        )
        self._inserts_since_trim += 1
        if self._inserts_since_trim >= self.usage_log_trim_every:
            self._inserts_since_trim = 0
            self._trim(conn)
        self._add_console(record)  # last: only a record that is written counts there
        return True

    def _ping(self) -> None:
        self._connection().execute("SELECT 1").fetchone()

    def _aggregate_rows(
        self, customer: str | None, from_day: str, to_day: str, breakdown: Breakdown
    ) -> list[AggregateRow]:
        sql = select_daily_sql(breakdown, one_customer=customer is not None)
        params = (from_day, to_day) if customer is None else (from_day, to_day, customer)
        keys = DAILY[breakdown][1]
        has_dim = len(keys) > len(BASE_KEYS)
        rows = []
        for values in self._connection().execute(sql, params):
            customer_id, day, route, provider, model = values[: len(BASE_KEYS)]
            rows.append(
                AggregateRow(
                    customer_id,
                    day,
                    route,
                    provider,
                    model,
                    totals=Totals(*values[len(keys) :]),
                    dim=values[len(BASE_KEYS)] if has_dim else None,
                )
            )
        rows.sort(key=row_sort_key)
        return rows

    def _get_usage(self, request_id: str) -> UsageRecord | None:
        values = self._connection().execute(SELECT_USAGE, (request_id,)).fetchone()
        return None if values is None else record_from_row(values)

    def _what_if_rows(self, customer: str | None, from_day: str, to_day: str) -> list[WhatIfRow]:
        keys = WHAT_IF[1]
        sql = select_what_if_sql(one_customer=customer is not None)
        params: tuple[str, ...] = (from_day, to_day)
        if customer is not None:
            params += (customer,)
        rows = []
        for values in self._connection().execute(sql, params):
            customer_id, day, route, provider, model, alternative = values[: len(keys)]
            rows.append(
                WhatIfRow(
                    customer_id,
                    day,
                    route,
                    provider,
                    model,
                    alternative,
                    totals=Totals(*values[len(keys) : -1]),
                    what_if_nusd=values[-1],
                )
            )
        rows.sort(key=what_if_sort_key)
        return rows

    def _monthly_totals(self, customer: str, month: str) -> Totals:
        values = self._connection().execute(SELECT_MONTHLY, (customer, month)).fetchone()
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
