"""Issued keys, customers and the usage export on the embedded store (mixed into SQLiteStore).

Runs on the store's one worker thread, like everything else there. A key's secret is never
stored: `key_hashes` maps SHA-256 digests (the current one, and old ones during a rotation's
grace period) to the key.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, TypeVar

import orjson

from proxy.access.keys import Customer, IssuedKey
from proxy.access.ratelimit import InProcessLimiter, Limiter
from proxy.accounting.records import UsageRecord
from proxy.store.sqlite_schema import RECORD_COLUMNS, record_from_row

__all__ = ["KEYS_SCHEMA", "SQLiteKeysMixin"]

T = TypeVar("T")

KEYS_SCHEMA = """
CREATE TABLE IF NOT EXISTS issued_keys (
    id TEXT PRIMARY KEY,
    customer TEXT,
    data TEXT NOT NULL,
    last_used_ms INTEGER
);
CREATE INDEX IF NOT EXISTS issued_keys_customer ON issued_keys (customer);
CREATE TABLE IF NOT EXISTS key_hashes (
    sha256 TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    valid_until_ms INTEGER
);
CREATE INDEX IF NOT EXISTS key_hashes_key ON key_hashes (key_id);
CREATE TABLE IF NOT EXISTS customers (
    id TEXT PRIMARY KEY,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS usage_log_ts ON usage_log (ts_ms);
CREATE INDEX IF NOT EXISTS usage_log_customer_ts ON usage_log (customer, ts_ms);
"""

_USAGE_PAGE = (
    f"SELECT rowid, {', '.join(RECORD_COLUMNS)} FROM usage_log"
    " WHERE ts_ms >= ? AND ts_ms < ? AND (ts_ms, rowid) > (?, ?) {customer}"
    " ORDER BY ts_ms, rowid LIMIT ?"
)


def _key_of(data: str, last_used_ms: int | None) -> IssuedKey:
    return IssuedKey.from_dict({**orjson.loads(data), "last_used_ms": last_used_ms})


def _key_json(key: IssuedKey) -> str:
    data = key.to_dict()
    del data["last_used_ms"]  # a column of its own: updated in batches
    return orjson.dumps(data).decode()


class SQLiteKeysMixin:
    # Provided by SQLiteStore.
    _run: Callable[..., Any]
    _connection: Callable[[], sqlite3.Connection]

    def rate_limiter(self) -> Limiter:
        # One process owns the embedded store: limits are kept in memory.
        return InProcessLimiter()

    async def publish_change(self) -> None:
        """Nothing to tell: other processes on this file see changes within the caches' TTL."""

    async def watch_changes(self) -> AsyncIterator[None]:
        await asyncio.Event().wait()  # never: see publish_change
        yield

    # --- keys

    async def create_key(self, key: IssuedKey, sha256: str) -> None:
        await self._run(self._create_key, key, sha256)

    async def find_key(self, sha256: str, now_ms: int) -> IssuedKey | None:
        return await self._run(self._find_key, sha256, now_ms)

    async def get_key(self, key_id: str) -> IssuedKey | None:
        return await self._run(self._get_key, key_id)

    async def list_keys(self, customer: str | None) -> list[IssuedKey]:
        return await self._run(self._list_keys, customer)

    async def revoke_key(self, key_id: str) -> bool:
        return await self._run(self._revoke_key, key_id)

    async def rotate_key(
        self, key_id: str, sha256: str, prefix: str, old_valid_until_ms: int
    ) -> IssuedKey | None:
        return await self._run(self._rotate_key, key_id, sha256, prefix, old_valid_until_ms)

    async def touch_keys(self, last_used: Mapping[str, int]) -> None:
        await self._run(self._touch_keys, dict(last_used))

    # --- customers

    async def put_customer(self, customer: Customer) -> Customer:
        return await self._run(self._put_customer, customer)

    async def get_customer(self, customer_id: str) -> Customer | None:
        return await self._run(self._get_customer, customer_id)

    async def list_customers(self) -> list[Customer]:
        return await self._run(self._list_customers)

    async def delete_customer(self, customer_id: str) -> bool:
        return await self._run(self._delete_customer, customer_id)

    # --- usage export

    async def iter_usage(
        self, *, customer: str | None, from_ms: int, to_ms: int, page_size: int = 1000
    ) -> AsyncIterator[UsageRecord]:
        after: tuple[int, int] = (-(2**62), -1)
        while True:
            page = await self._run(self._usage_page, customer, from_ms, to_ms, after, page_size)
            for record in page[1]:
                yield record
            if len(page[1]) < page_size:
                return
            after = page[0]

    # Everything below runs on the worker thread.

    def _transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    def _create_key(self, key: IssuedKey, sha256: str) -> None:
        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO issued_keys (id, customer, data) VALUES (?, ?, ?)",
                (key.id, key.customer, _key_json(key)),
            )
            conn.execute("INSERT INTO key_hashes (sha256, key_id) VALUES (?, ?)", (sha256, key.id))

        self._transaction(write)

    def _find_key(self, sha256: str, now_ms: int) -> IssuedKey | None:
        row = (
            self._connection()
            .execute(
                "SELECT k.data, k.last_used_ms FROM key_hashes h JOIN issued_keys k"
                " ON k.id = h.key_id WHERE h.sha256 = ?"
                " AND (h.valid_until_ms IS NULL OR h.valid_until_ms > ?)",
                (sha256, now_ms),
            )
            .fetchone()
        )
        return None if row is None else _key_of(*row)

    def _get_key(self, key_id: str) -> IssuedKey | None:
        row = (
            self._connection()
            .execute("SELECT data, last_used_ms FROM issued_keys WHERE id = ?", (key_id,))
            .fetchone()
        )
        return None if row is None else _key_of(*row)

    def _list_keys(self, customer: str | None) -> list[IssuedKey]:
        sql = "SELECT data, last_used_ms FROM issued_keys"
        params: tuple[str, ...] = ()
        if customer is not None:
            sql, params = sql + " WHERE customer = ?", (customer,)
        rows = self._connection().execute(sql + " ORDER BY id", params).fetchall()
        return sorted((_key_of(*row) for row in rows), key=lambda k: (k.created_ms, k.id))

    def _revoke_key(self, key_id: str) -> bool:
        def write(conn: sqlite3.Connection) -> bool:
            conn.execute("DELETE FROM key_hashes WHERE key_id = ?", (key_id,))
            return conn.execute("DELETE FROM issued_keys WHERE id = ?", (key_id,)).rowcount > 0

        return self._transaction(write)

    def _rotate_key(
        self, key_id: str, sha256: str, prefix: str, old_valid_until_ms: int
    ) -> IssuedKey | None:
        def write(conn: sqlite3.Connection) -> IssuedKey | None:
            key = self._get_key(key_id)
            if key is None:
                return None
            conn.execute(
                "UPDATE key_hashes SET valid_until_ms = min(coalesce(valid_until_ms, ?1), ?1)"
                " WHERE key_id = ?2",
                (old_valid_until_ms, key_id),
            )
            conn.execute("INSERT INTO key_hashes (sha256, key_id) VALUES (?, ?)", (sha256, key_id))
            rotated = IssuedKey.from_dict({**key.to_dict(), "prefix": prefix})
            conn.execute(
                "UPDATE issued_keys SET data = ? WHERE id = ?", (_key_json(rotated), key_id)
            )
            return rotated

        return self._transaction(write)

    def _touch_keys(self, last_used: dict[str, int]) -> None:
        self._transaction(
            lambda conn: conn.executemany(
                "UPDATE issued_keys SET last_used_ms = max(coalesce(last_used_ms, 0), ?)"
                " WHERE id = ?",
                [(ms, key_id) for key_id, ms in last_used.items()],
            )
        )

    def _put_customer(self, customer: Customer) -> Customer:
        def write(conn: sqlite3.Connection) -> Customer:
            row = conn.execute("SELECT data FROM customers WHERE id = ?", (customer.id,)).fetchone()
            stored = customer
            if row is not None:  # created once; later puts keep the creation time
                created = orjson.loads(row[0])["created_ms"]
                stored = Customer.from_dict({**customer.to_dict(), "created_ms": created})
            conn.execute(
                "INSERT INTO customers (id, data) VALUES (?, ?)"
                " ON CONFLICT (id) DO UPDATE SET data = excluded.data",
                (stored.id, orjson.dumps(stored.to_dict()).decode()),
            )
            return stored

        return self._transaction(write)

    def _get_customer(self, customer_id: str) -> Customer | None:
        row = (
            self._connection()
            .execute("SELECT data FROM customers WHERE id = ?", (customer_id,))
            .fetchone()
        )
        return None if row is None else Customer.from_dict(orjson.loads(row[0]))

    def _list_customers(self) -> list[Customer]:
        rows = self._connection().execute("SELECT data FROM customers ORDER BY id").fetchall()
        return [Customer.from_dict(orjson.loads(row[0])) for row in rows]

    def _delete_customer(self, customer_id: str) -> bool:
        def write(conn: sqlite3.Connection) -> bool:
            ids = [r[0] for r in conn.execute(
                "SELECT id FROM issued_keys WHERE customer = ?", (customer_id,)
            )]  # fmt: skip
            conn.executemany("DELETE FROM key_hashes WHERE key_id = ?", [(i,) for i in ids])
            conn.execute("DELETE FROM issued_keys WHERE customer = ?", (customer_id,))
            return conn.execute("DELETE FROM customers WHERE id = ?", (customer_id,)).rowcount > 0

        return self._transaction(write)

    def _usage_page(
        self,
        customer: str | None,
        from_ms: int,
        to_ms: int,
        after: tuple[int, int],
        limit: int,
    ) -> tuple[tuple[int, int], list[UsageRecord]]:
        sql = _USAGE_PAGE.format(customer="" if customer is None else "AND customer = ?")
        params: tuple[object, ...] = (from_ms, to_ms, *after)
        if customer is not None:
            params += (customer,)
        rows = self._connection().execute(sql, (*params, limit)).fetchall()
        records = [record_from_row(values) for _rowid, *values in rows]
        last = (rows[-1][1 + RECORD_COLUMNS.index("ts_ms")], rows[-1][0]) if rows else after
        return last, records
