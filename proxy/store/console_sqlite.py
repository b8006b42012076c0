"""The console's figures on the embedded store (mixed into SQLiteStore): whole-deployment
daily rows, per-minute totals, per-customer block totals, recent records, shared links.

Written in the same transaction as the records' other aggregates (`_add_console` per
record, `_write_console` once per batch), so they never disagree with the spend API. Runs
on the store's worker thread.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import date
from typing import Any

import orjson

from proxy.access.shares import ShareLink
from proxy.accounting.records import (
    METRIC_FIELDS,
    AggregateRow,
    Totals,
    UsageRecord,
    WhatIfRow,
)
from proxy.accounting.rollups import CustomerRanking, CustomerTotals, RankBy, RecentPage
from proxy.store.blocks import LEVELS, blocks_of_day, cover
from proxy.store.buckets import row_sort_key, utc_day, what_if_sort_key
from proxy.store.sqlite_schema import JSON_COLUMNS, RECORD_COLUMNS, WHAT_IF_METRICS

__all__ = ["CONSOLE_SCHEMA", "SQLiteConsoleMixin"]

_MS_PER_MINUTE = 60_000
_MS_PER_DAY = 86_400_000
_MINUTES_KEPT = 2 * 24 * 60  # the spend rate needs the last hour; two days are kept
_TRIM_MINUTES_EVERY = 1000  # records
# Rows a recent-records page reads at most when a model or status filter is rare.
_RECENT_SCAN = 20_000

_METRICS_DDL = ", ".join(f"{m} INTEGER NOT NULL DEFAULT 0" for m in METRIC_FIELDS)
_WHAT_IF_DDL = ", ".join(f"{m} INTEGER NOT NULL DEFAULT 0" for m in WHAT_IF_METRICS)
CONSOLE_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS console_daily (
    day TEXT NOT NULL, route TEXT NOT NULL, provider TEXT NOT NULL, model TEXT NOT NULL,
    {_METRICS_DDL}, PRIMARY KEY (day, route, provider, model)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS console_what_if (
    day TEXT NOT NULL, route TEXT NOT NULL, provider TEXT NOT NULL, model TEXT NOT NULL,
    alternative TEXT NOT NULL,
    {_WHAT_IF_DDL}, PRIMARY KEY (day, route, provider, model, alternative)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS console_minute (
    minute INTEGER NOT NULL PRIMARY KEY, {_METRICS_DDL}) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS console_customer_blocks (
    level INTEGER NOT NULL, block INTEGER NOT NULL, customer TEXT NOT NULL,
    {_METRICS_DDL}, PRIMARY KEY (level, block, customer)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS console_shares (
    sha256 TEXT NOT NULL PRIMARY KEY, id TEXT NOT NULL UNIQUE, customer TEXT NOT NULL,
    data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS console_meta (name TEXT NOT NULL PRIMARY KEY, value TEXT);
"""


def _upsert(table: str, keys: tuple[str, ...], metrics: tuple[str, ...] = METRIC_FIELDS) -> str:
    columns = (*keys, *metrics)
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET "
        + ", ".join(f"{m} = {m} + excluded.{m}" for m in metrics)
    )


_UPSERT_DAILY = _upsert("console_daily", ("day", "route", "provider", "model"))
_UPSERT_WHAT_IF = _upsert(
    "console_what_if", ("day", "route", "provider", "model", "alternative"), WHAT_IF_METRICS
)
_UPSERT_MINUTE = _upsert("console_minute", ("minute",))
_UPSERT_BLOCK = _upsert("console_customer_blocks", ("level", "block", "customer"))
_CUSTOMER_DAY = "customer-day"  # a batch entry that becomes one block row per level
_SUMS = ", ".join(f"sum({m})" for m in METRIC_FIELDS)
_RANK_ORDER = {
    "cost": "sum(cost_nusd)",
    "requests": "sum(requests)",
    "tokens": "sum(input_tokens) + sum(output_tokens)",
}
# A store written before the console existed: its aggregates are filled in once from the
# daily tables (the minute totals start empty: they only ever cover the last two days).
_SQL_EPOCH_DAY = "CAST(julianday(day) - 2440587.5 AS INTEGER)"
_BACKFILL = [
    f"INSERT INTO console_daily SELECT day, route, provider, model, {_SUMS}"
    " FROM daily_base GROUP BY day, route, provider, model",
    "INSERT INTO console_what_if SELECT day, route, provider, model, alternative, "
    + ", ".join(f"sum({m})" for m in WHAT_IF_METRICS)
    + " FROM daily_what_if GROUP BY day, route, provider, model, alternative",
    *(
        f"INSERT INTO console_customer_blocks SELECT {level}, {_SQL_EPOCH_DAY} / {4**level},"
        f" customer, {_SUMS} FROM daily_base GROUP BY 2, customer"
        for level in range(LEVELS)
    ),
]


def _add(batch: dict[tuple[str, tuple], list[int]], key: tuple[str, tuple], values: tuple) -> None:
    sums = batch.get(key)
    if sums is None:
        batch[key] = list(values)
    else:
        for i, value in enumerate(values):
            sums[i] += value


def _record_of(values: tuple) -> UsageRecord:
    data = dict(zip(RECORD_COLUMNS, values, strict=True))
    for name in JSON_COLUMNS:
        data[name] = orjson.loads(data[name])
    data["tags"] = tuple(data["tags"])
    return UsageRecord(**data)


class SQLiteConsoleMixin:
    # Provided by SQLiteStore.
    _run: Callable[..., Any]
    _connection: Callable[[], sqlite3.Connection]
    _transaction: Callable[..., Any]
    _console_writes: int = 0
    _console_batch: dict[tuple[str, tuple], list[int]]

    # --- reads

    async def global_rows(self, *, from_day: date, to_day: date) -> list[AggregateRow]:
        """Daily rows of every customer together (customer ""), one per (day, route,
        provider, model): what the spend API sums without a customer, read cheaply."""
        return await self._run(self._global_rows, from_day.isoformat(), to_day.isoformat())

    async def global_what_if_rows(self, *, from_day: date, to_day: date) -> list[WhatIfRow]:
        return await self._run(self._global_what_if, from_day.isoformat(), to_day.isoformat())

    async def minute_totals(self, *, from_ms: int, to_ms: int) -> Totals:
        """Totals of every customer in the whole UTC minutes from from_ms up to to_ms."""
        return await self._run(
            self._minute_totals, from_ms // _MS_PER_MINUTE, to_ms // _MS_PER_MINUTE
        )

    async def rank_customers(
        self,
        *,
        from_day: date,
        to_day: date,
        by: RankBy = "cost",
        descending: bool = True,
        search: str | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> CustomerRanking:
        """Customers with traffic in [from_day, to_day], ordered by `by` (ties by name),
        `search` a case-insensitive part of the name; exact totals for the page's rows."""
        return await self._run(
            self._rank, cover(from_day, to_day), by, descending, search, offset, limit
        )

    async def recent_usage(
        self,
        *,
        customer: str | None = None,
        model: str | None = None,
        status: int | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> RecentPage:
        return await self._run(self._recent, customer, model, status, cursor, limit)

    # --- shared links

    async def put_share(self, share: ShareLink) -> None:
        await self._run(self._put_share, share)

    async def find_share(self, sha256: str) -> ShareLink | None:
        return await self._run(self._find_share, sha256)

    async def list_shares(self, customer: str | None) -> list[ShareLink]:
        return await self._run(self._list_shares, customer)

    async def revoke_share(self, share_id: str, now_ms: int) -> bool:
        return await self._run(self._revoke_share, share_id, now_ms)

    # Everything below runs on the worker thread.

    def _prepare_console(self, conn: sqlite3.Connection) -> None:
        """Create the tables; fill them from the daily tables the first time."""
        conn.executescript(CONSOLE_SCHEMA)
        if conn.execute("SELECT 1 FROM console_meta WHERE name = 'filled'").fetchone():
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            for sql in _BACKFILL:
                conn.execute(sql)
            conn.execute("INSERT INTO console_meta (name, value) VALUES ('filled', '1')")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _begin_console(self) -> None:
        self._console_batch = {}

    def _add_console(self, record: UsageRecord) -> None:
        """Count a written record in the batch's console figures (summed in memory: the
        records of a batch with the same day and model, or customer and day, are one
        upsert per table)."""
        batch = self._console_batch
        metrics = Totals.of(record).as_tuple()
        day = utc_day(record.ts_ms)
        base = (day, record.route, record.provider, record.model)
        _add(batch, (_UPSERT_DAILY, base), metrics)
        _add(batch, (_UPSERT_MINUTE, (record.ts_ms // _MS_PER_MINUTE,)), metrics)
        # One entry per customer and day; its blocks are made when the batch is written.
        _add(batch, (_CUSTOMER_DAY, (record.customer, record.ts_ms // _MS_PER_DAY)), metrics)
        for name, nusd in sorted(record.what_if.items()):
            _add(batch, (_UPSERT_WHAT_IF, (*base, name)), (*metrics, nusd))

    def _write_console(self, conn: sqlite3.Connection) -> None:
        batch, self._console_batch = self._console_batch, {}
        by_statement: dict[str, list[tuple]] = {}
        newest_minute = 0
        for (kind, key), values in batch.items():
            if kind is _CUSTOMER_DAY:
                customer, day = key
                rows = by_statement.setdefault(_UPSERT_BLOCK, [])
                rows += [(*block, customer, *values) for block in blocks_of_day(day)]
                continue
            if kind is _UPSERT_MINUTE:
                newest_minute = max(newest_minute, key[0])
            by_statement.setdefault(kind, []).append((*key, *values))
        for sql, rows in by_statement.items():
            conn.executemany(sql, rows)
        self._console_writes += len(batch)
        if self._console_writes >= _TRIM_MINUTES_EVERY:
            self._console_writes = 0
            conn.execute(
                "DELETE FROM console_minute WHERE minute < ?", (newest_minute - _MINUTES_KEPT,)
            )

    def _global_rows(self, from_day: str, to_day: str) -> list[AggregateRow]:
        sql = (
            f"SELECT day, route, provider, model, {', '.join(METRIC_FIELDS)}"
            " FROM console_daily WHERE day BETWEEN ? AND ?"
        )
        rows = [
            AggregateRow("", day, route, provider, model, totals=Totals(*metrics))
            for day, route, provider, model, *metrics in self._connection().execute(
                sql, (from_day, to_day)
            )
        ]
        rows.sort(key=row_sort_key)
        return rows

    def _global_what_if(self, from_day: str, to_day: str) -> list[WhatIfRow]:
        sql = (
            f"SELECT day, route, provider, model, alternative, {', '.join(WHAT_IF_METRICS)}"
            " FROM console_what_if WHERE day BETWEEN ? AND ?"
        )
        rows = [
            WhatIfRow(
                "", day, route, provider, model, alt, totals=Totals(*m[:-1]), what_if_nusd=m[-1]
            )
            for day, route, provider, model, alt, *m in self._connection().execute(
                sql, (from_day, to_day)
            )
        ]
        rows.sort(key=what_if_sort_key)
        return rows

    def _minute_totals(self, first: int, end: int) -> Totals:
        values = (
            self._connection()
            .execute(
                f"SELECT {', '.join(f'coalesce(sum({m}), 0)' for m in METRIC_FIELDS)}"
                " FROM console_minute WHERE minute >= ? AND minute < ?",
                (first, end),
            )
            .fetchone()
        )
        return Totals(*values)

    def _rank(
        self,
        blocks: list[tuple[int, int]],
        by: RankBy,
        descending: bool,
        search: str | None,
        offset: int,
        limit: int,
    ) -> CustomerRanking:
        where = " OR ".join("(level = ? AND block = ?)" for _ in blocks)
        params: list[object] = [value for block in blocks for value in block]
        if search:
            where = f"({where}) AND instr(lower(customer), ?) > 0"
            params.append(search.lower())
        direction = "DESC" if descending else "ASC"
        order = f"{_RANK_ORDER[by]} {direction}, customer" if by != "customer" else ""
        order = order or f"customer {direction}"
        sql = (
            f"SELECT customer, {_SUMS}, count(*) OVER () FROM console_customer_blocks"
            f" WHERE {where} GROUP BY customer ORDER BY {order} LIMIT ? OFFSET ?"
        )
        found = self._connection().execute(sql, (*params, limit, offset)).fetchall()
        count = found[0][-1] if found else self._rank_count(where, params)
        rows = [CustomerTotals(row[0], Totals(*row[1:-1])) for row in found]
        return CustomerRanking(rows=rows, count=count)

    def _rank_count(self, where: str, params: list[object]) -> int:
        # Only for a page past the end: the window count came back with no row.
        sql = f"SELECT count(DISTINCT customer) FROM console_customer_blocks WHERE {where}"
        return self._connection().execute(sql, params).fetchone()[0]

    def _recent(
        self,
        customer: str | None,
        model: str | None,
        status: int | None,
        cursor: str | None,
        limit: int,
    ) -> RecentPage:
        ts_ms, rowid = (int(part) for part in cursor.split(".")) if cursor else (2**62, 0)
        inner = "SELECT rowid AS r, ts_ms AS t FROM usage_log WHERE (ts_ms, rowid) < (?, ?)"
        params: list[object] = [ts_ms, rowid]
        if customer is not None:
            inner += " AND customer = ?"
            params.append(customer)
        inner += " ORDER BY ts_ms DESC, rowid DESC LIMIT ?"
        params.append(_RECENT_SCAN)
        outer_filters = []
        if model is not None:
            outer_filters.append("u.model = ?")
        if status is not None:
            outer_filters.append("u.status = ?")
        where = f"WHERE {' AND '.join(outer_filters)}" if outer_filters else ""
        sql = (
            f"SELECT s.t, s.r, {', '.join('u.' + c for c in RECORD_COLUMNS)}"
            f" FROM ({inner}) s JOIN usage_log u ON u.rowid = s.r {where}"
            " ORDER BY s.t DESC, s.r DESC LIMIT ?"
        )
        extra = [v for v in (model, status) if v is not None]
        conn = self._connection()
        rows = conn.execute(sql, (*params, *extra, limit + 1)).fetchall()
        records = [_record_of(tuple(row[2:])) for row in rows[:limit]]
        if len(rows) > limit:
            last = rows[limit - 1]
            return RecentPage(records, f"{last[0]}.{last[1]}")
        # Fewer matches than asked: the log is exhausted, or only the scan window is (then
        # the next page goes on from the oldest record scanned).
        (count,) = conn.execute(f"SELECT count(*) FROM ({inner})", params).fetchone()
        if count < _RECENT_SCAN:
            return RecentPage(records, None)
        oldest = conn.execute(
            f"SELECT t, r FROM ({inner}) ORDER BY t ASC, r ASC LIMIT 1", params
        ).fetchone()
        return RecentPage(records, f"{oldest[0]}.{oldest[1]}")

    def _put_share(self, share: ShareLink) -> None:
        self._transaction(
            lambda conn: conn.execute(
                "INSERT INTO console_shares (sha256, id, customer, data) VALUES (?, ?, ?, ?)",
                (share.sha256, share.id, share.customer, orjson.dumps(share.to_dict()).decode()),
            )
        )

    def _find_share(self, sha256: str) -> ShareLink | None:
        row = (
            self._connection()
            .execute("SELECT data FROM console_shares WHERE sha256 = ?", (sha256,))
            .fetchone()
        )
        return None if row is None else ShareLink.from_dict(orjson.loads(row[0]))

    def _list_shares(self, customer: str | None) -> list[ShareLink]:
        sql = "SELECT data FROM console_shares"
        params: tuple[str, ...] = ()
        if customer is not None:
            sql, params = sql + " WHERE customer = ?", (customer,)
        shares = [ShareLink.from_dict(orjson.loads(r[0])) for r in self._connection().execute(
            sql, params
        )]  # fmt: skip
        return sorted(shares, key=lambda s: (s.created_ms, s.id))

    def _revoke_share(self, share_id: str, now_ms: int) -> bool:
        def write(conn: sqlite3.Connection) -> bool:
            row = conn.execute("SELECT data FROM console_shares WHERE id = ?", (share_id,))
            found = row.fetchone()
            if found is None:
                return False
            share = ShareLink.from_dict(orjson.loads(found[0]))
            if share.revoked_ms is None:
                revoked = ShareLink.from_dict({**share.to_dict(), "revoked_ms": now_ms})
                conn.execute(
                    "UPDATE console_shares SET data = ? WHERE id = ?",
                    (orjson.dumps(revoked.to_dict()).decode(), share_id),
                )
            return True

        return self._transaction(write)
