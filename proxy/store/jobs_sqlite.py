"""Periodic jobs shared by the instances on the embedded store (mixed into SQLiteStore):
a lease, so that one instance at a time runs a job, and the job's last result.

A claim is one IMMEDIATE transaction: atomic even between processes sharing the file.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import Any

__all__ = ["JOBS_SCHEMA", "SQLiteJobsMixin"]

JOBS_SCHEMA = """
CREATE TABLE IF NOT EXISTS leases (name TEXT PRIMARY KEY, expires_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS job_results (name TEXT PRIMARY KEY, result TEXT NOT NULL);
"""


def _claim(conn: sqlite3.Connection, name: str, ttl_ms: int) -> bool:
    now = time.time_ns() // 1_000_000
    row = conn.execute("SELECT expires_ms FROM leases WHERE name = ?", (name,)).fetchone()
    if row is not None and row[0] > now:
        return False
    conn.execute(
        "INSERT OR REPLACE INTO leases (name, expires_ms) VALUES (?, ?)", (name, now + ttl_ms)
    )
    return True


def _put(conn: sqlite3.Connection, name: str, result: str) -> None:
    conn.execute("INSERT OR REPLACE INTO job_results (name, result) VALUES (?, ?)", (name, result))


class SQLiteJobsMixin:
    # Provided by SQLiteStore.
    _run: Callable[..., Any]
    _transaction: Callable[..., Any]
    _connection: Callable[[], sqlite3.Connection]

    async def claim_lease(self, name: str, ttl_s: float) -> bool:
        ttl_ms = max(1, round(ttl_s * 1000))
        return bool(await self._run(self._transaction, _claim, name, ttl_ms))

    async def put_job_result(self, name: str, result_json: str) -> None:
        await self._run(self._transaction, _put, name, result_json)

    async def job_result(self, name: str) -> str | None:
        def read() -> str | None:
            row = (
                self._connection()
                .execute("SELECT result FROM job_results WHERE name = ?", (name,))
                .fetchone()
            )
            return None if row is None else str(row[0])

        result: str | None = await self._run(read)
        return result
