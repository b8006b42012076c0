"""Budget counters in the embedded store: each reserve and each settle is one transaction
on the store's single writer thread, so they are serialised like the Redis scripts.

The same rules as the Lua scripts (proxy/store/lua/*_v2.lua), in Python over SQL rows.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from proxy.budgets.rules import (
    MAX_COUNTER_NUSD,
    BudgetRule,
    CounterState,
    Period,
    ReserveAnswer,
    Seed,
    SettleAnswer,
    bounded_amount,
    first_violation,
    period_id,
)

__all__ = ["BUDGET_SCHEMA", "SQLiteBudgets"]

T = TypeVar("T")
_BUCKET_MS = 300_000
_BUCKETS = 12
_RECLAIM_PER_CALL = 32
_FORGET_RECLAIMED_MS = 86_400_000
# Twelve burn buckets summed stay below 2^62: SQLite's sum() raises on overflow.
_MAX_BURN_BUCKET = MAX_COUNTER_NUSD // 16

BUDGET_SCHEMA = """
CREATE TABLE IF NOT EXISTS budget_counters (
    scope TEXT NOT NULL, period TEXT NOT NULL, pid TEXT NOT NULL,
    spent INTEGER NOT NULL DEFAULT 0, held INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, period)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS budget_burn (
    scope TEXT NOT NULL, period TEXT NOT NULL, bucket INTEGER NOT NULL,
    amount INTEGER NOT NULL, PRIMARY KEY (scope, period, bucket)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS budget_holds (
    request_id TEXT PRIMARY KEY, amount INTEGER NOT NULL, expires_ms INTEGER NOT NULL,
    counters TEXT NOT NULL, reclaimed_ms INTEGER
);
CREATE INDEX IF NOT EXISTS budget_holds_expiry ON budget_holds (expires_ms);
CREATE TABLE IF NOT EXISTS budget_alerts (
    scope TEXT NOT NULL, period TEXT NOT NULL, pid TEXT NOT NULL, alert TEXT NOT NULL,
    PRIMARY KEY (scope, period, pid, alert)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS budget_overrides (scope TEXT PRIMARY KEY, rules TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS budget_meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""
_SEP = "\x1e"  # between (scope, period) pairs of a hold; scopes never hold control chars


def _clock(now_ms: int | None) -> int:
    return time.time_ns() // 1_000_000 if now_ms is None else now_ms


def _current(conn: sqlite3.Connection, scope: str, period: str, pid: str) -> tuple[int, int]:
    """Bring a counter into period `pid` (open holds carry over); its (spent, held)."""
    row = conn.execute(
        "SELECT pid, spent, held FROM budget_counters WHERE scope = ? AND period = ?",
        (scope, period),
    ).fetchone()
    if row is not None and row[0] == pid:
        return row[1], row[2]
    held = max(0, row[2]) if row is not None else 0
    conn.execute(
        "INSERT OR REPLACE INTO budget_counters (scope, period, pid, spent, held)"
        " VALUES (?, ?, ?, 0, ?)",
        (scope, period, pid, held),
    )
    conn.execute("DELETE FROM budget_burn WHERE scope = ? AND period = ?", (scope, period))
    return 0, held


def _release(conn: sqlite3.Connection, scope: str, period: str, amount: int) -> None:
    conn.execute(
        "UPDATE budget_counters SET held = max(0, held - ?) WHERE scope = ? AND period = ?",
        (amount, scope, period),
    )


def _pairs(encoded: str) -> list[tuple[str, str]]:
    return [tuple(p.rsplit("|", 1)) for p in encoded.split(_SEP) if p]  # type: ignore[misc]


def _reclaim(conn: sqlite3.Connection, now: int) -> None:
    expired = conn.execute(
        "SELECT request_id, amount, counters FROM budget_holds"
        " WHERE expires_ms <= ? AND reclaimed_ms IS NULL ORDER BY expires_ms LIMIT ?",
        (now, _RECLAIM_PER_CALL),
    ).fetchall()
    for request_id, amount, counters in expired:
        for scope, period in _pairs(counters):
            _release(conn, scope, period, amount)
        conn.execute(
            "UPDATE budget_holds SET reclaimed_ms = ? WHERE request_id = ?", (now, request_id)
        )
    conn.execute(
        "DELETE FROM budget_holds WHERE reclaimed_ms IS NOT NULL AND reclaimed_ms <= ?",
        (now - _FORGET_RECLAIMED_MS,),
    )


class SQLiteBudgets:
    """Mixed into SQLiteStore: runs on its writer thread through `_run`."""

    _run: Callable[..., Any]
    _connection: Callable[[], sqlite3.Connection]

    def _transaction(self, fn: Callable[..., T], *args: Any) -> T:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn, *args)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    async def reserve_budget(
        self,
        request_id: str,
        amount_nusd: int,
        counters: Sequence[tuple[str, BudgetRule]],
        ttl_ms: int,
        now_ms: int | None = None,
    ) -> ReserveAnswer:
        amount = bounded_amount(amount_nusd)
        return await self._run(
            self._transaction, _reserve, request_id, amount, counters, ttl_ms, now_ms
        )

    async def settle_budget(
        self,
        request_id: str,
        cost_nusd: int,
        counters: Sequence[tuple[str, Period]],
        now_ms: int | None = None,
    ) -> SettleAnswer | None:
        cost = bounded_amount(cost_nusd)
        return await self._run(self._transaction, _settle, request_id, cost, counters, now_ms)

    async def seed_budget_spent(self, seeds: Sequence[Seed], now_ms: int | None = None) -> int:
        return await self._run(self._transaction, _seed, seeds, now_ms)

    async def budget_states(
        self, counters: Sequence[tuple[str, Period]], now_ms: int | None = None
    ) -> list[CounterState]:
        return await self._run(self._states, counters, _clock(now_ms))

    def _states(self, counters: Sequence[tuple[str, Period]], now: int) -> list[CounterState]:
        conn = self._connection()
        states = []
        for scope, period in counters:
            row = conn.execute(
                "SELECT pid, spent, held FROM budget_counters WHERE scope = ? AND period = ?",
                (scope, period),
            ).fetchone()
            pid = period_id(period, now)
            if row is None:
                states.append(CounterState(pid, 0, 0))
            else:
                states.append(CounterState(pid, row[1] if row[0] == pid else 0, row[2]))
        return states

    async def claim_budget_alert(
        self, scope: str, period: Period, pid: str, alert: str, ttl_s: int | None
    ) -> bool:
        return await self._run(self._transaction, _claim, scope, period, pid, alert)

    async def budget_overrides(self) -> tuple[int, dict[str, str]]:
        return await self._run(self._overrides)

    def _overrides(self) -> tuple[int, dict[str, str]]:
        conn = self._connection()
        rules = dict(conn.execute("SELECT scope, rules FROM budget_overrides").fetchall())
        return _version(conn), rules

    async def budget_overrides_version(self) -> int:
        return await self._run(lambda: _version(self._connection()))

    async def put_budget_override(self, scope: str, rules_json: str) -> None:
        await self._run(self._transaction, _put_override, scope, rules_json)

    async def delete_budget_override(self, scope: str) -> bool:
        return await self._run(self._transaction, _delete_override, scope)


def _reserve(
    conn: sqlite3.Connection,
    request_id: str,
    amount: int,
    counters: Sequence[tuple[str, BudgetRule]],
    ttl_ms: int,
    now_ms: int | None,
) -> ReserveAnswer:
    now = _clock(now_ms)
    _reclaim(conn, now)
    replay = (
        conn.execute("SELECT 1 FROM budget_holds WHERE request_id = ?", (request_id,)).fetchone()
        is not None
    )
    states = []
    for scope, rule in counters:
        pid = period_id(rule.period, now)
        spent, held = _current(conn, scope, rule.period, pid)
        states.append(CounterState(pid, spent, held))
    violated = None if replay else first_violation(amount, [r for _, r in counters], states)
    if violated is not None or replay:
        return ReserveAnswer(violated, tuple(states), now)
    held_states = []
    for (scope, rule), state in zip(counters, states, strict=True):
        held = min(state.held_nusd + amount, MAX_COUNTER_NUSD)  # saturates, as in Lua
        conn.execute(
            "UPDATE budget_counters SET held = ? WHERE scope = ? AND period = ?",
            (held, scope, rule.period),
        )
        held_states.append(CounterState(state.pid, state.spent_nusd, held))
    conn.execute(
        "INSERT INTO budget_holds (request_id, amount, expires_ms, counters) VALUES (?, ?, ?, ?)",
        (request_id, amount, now + ttl_ms, _SEP.join(f"{s}|{r.period}" for s, r in counters)),
    )
    return ReserveAnswer(None, tuple(held_states), now)


def _settle(
    conn: sqlite3.Connection,
    request_id: str,
    cost: int,
    counters: Sequence[tuple[str, Period]],
    now_ms: int | None,
) -> SettleAnswer | None:
    now = _clock(now_ms)
    row = conn.execute(
        "SELECT amount, reclaimed_ms FROM budget_holds WHERE request_id = ?", (request_id,)
    ).fetchone()
    if row is None:
        return None
    amount = 0 if row[1] is not None else row[0]  # a reclaimed hold was released already
    conn.execute("DELETE FROM budget_holds WHERE request_id = ?", (request_id,))
    bucket = now // _BUCKET_MS
    states = []
    for scope, period in counters:
        pid = period_id(period, now)
        _current(conn, scope, period, pid)
        if amount:
            _release(conn, scope, period, amount)
        # Both operands stay below 2^63 (spent <= 2^62, cost <= 2^53): min() saturates.
        conn.execute(
            "UPDATE budget_counters SET spent = min(spent + ?, ?) WHERE scope = ? AND period = ?",
            (cost, MAX_COUNTER_NUSD, scope, period),
        )
        if cost:
            conn.execute(
                "INSERT INTO budget_burn (scope, period, bucket, amount)"
                " VALUES (?, ?, ?, min(?, ?))"
                " ON CONFLICT (scope, period, bucket) DO UPDATE SET amount = min(amount + ?, ?)",
                (scope, period, bucket, cost, _MAX_BURN_BUCKET, cost, _MAX_BURN_BUCKET),
            )
            conn.execute(
                "DELETE FROM budget_burn WHERE scope = ? AND period = ? AND bucket <= ?",
                (scope, period, bucket - _BUCKETS),
            )
        spent, held = conn.execute(
            "SELECT spent, held FROM budget_counters WHERE scope = ? AND period = ?",
            (scope, period),
        ).fetchone()
        (burn,) = conn.execute(
            "SELECT coalesce(sum(amount), 0) FROM budget_burn"
            " WHERE scope = ? AND period = ? AND bucket > ?",
            (scope, period, bucket - _BUCKETS),
        ).fetchone()
        states.append(CounterState(pid, spent, held, burn))
    return SettleAnswer(tuple(states), now)


def _seed(conn: sqlite3.Connection, seeds: Sequence[Seed], now_ms: int | None) -> int:
    """As seed_v2.lua: spent = max(spent, floor) for counters still in the seed's period."""
    now = _clock(now_ms)
    raised = 0
    for seed in seeds:
        if period_id(seed.period, now) != seed.pid:
            continue
        spent, _ = _current(conn, seed.scope, seed.period, seed.pid)
        floor = min(seed.floor_nusd, MAX_COUNTER_NUSD)  # counters saturate, as in Lua
        if floor > spent:
            conn.execute(
                "UPDATE budget_counters SET spent = ? WHERE scope = ? AND period = ?",
                (floor, seed.scope, seed.period),
            )
            raised += 1
    return raised


def _claim(conn: sqlite3.Connection, scope: str, period: str, pid: str, alert: str) -> bool:
    cursor = conn.execute(
        "INSERT INTO budget_alerts (scope, period, pid, alert) VALUES (?, ?, ?, ?)"
        " ON CONFLICT DO NOTHING",
        (scope, period, pid, alert),
    )
    return cursor.rowcount == 1


def _version(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM budget_meta WHERE name = 'overrides'").fetchone()
    return 0 if row is None else row[0]


def _bump(conn: sqlite3.Connection) -> None:
    conn.execute(
        "INSERT INTO budget_meta (name, value) VALUES ('overrides', 1)"
        " ON CONFLICT (name) DO UPDATE SET value = value + 1"
    )


def _put_override(conn: sqlite3.Connection, scope: str, rules_json: str) -> None:
    conn.execute(
        "INSERT INTO budget_overrides (scope, rules) VALUES (?, ?)"
        " ON CONFLICT (scope) DO UPDATE SET rules = excluded.rules",
        (scope, rules_json),
    )
    _bump(conn)


def _delete_override(conn: sqlite3.Connection, scope: str) -> bool:
    deleted = conn.execute("DELETE FROM budget_overrides WHERE scope = ?", (scope,)).rowcount
    _bump(conn)
    return deleted == 1
