"""The SQLite schema of `SQLiteStore` and the statements it runs (pure: builds strings only).

Aggregate tables are generated from METRIC_FIELDS, so a new metric is one new column each.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields

import orjson

from proxy.accounting.records import METRIC_FIELDS, Breakdown, UsageRecord

__all__ = [
    "ADDED_COLUMNS",
    "AGGREGATE_TABLES",
    "BASE_KEYS",
    "DAILY",
    "INSERT_USAGE",
    "JSON_COLUMNS",
    "RECORD_COLUMNS",
    "SCHEMA",
    "SELECT_MONTHLY",
    "SELECT_USAGE",
    "TRIM_USAGE",
    "UPSERT_DAILY",
    "UPSERT_MONTHLY",
    "UPSERT_WHAT_IF",
    "WHAT_IF",
    "WHAT_IF_METRICS",
    "missing_metric_columns",
    "record_from_row",
    "select_daily_sql",
    "select_what_if_sql",
]

RECORD_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(UsageRecord))
# Columns of the usage log stored as JSON text.
JSON_COLUMNS = frozenset({"tags", "what_if"})


def record_from_row(values: Sequence[object]) -> UsageRecord:
    """A usage-log row (its RECORD_COLUMNS) as the record, its JSON columns decoded."""
    data = dict(zip(RECORD_COLUMNS, values, strict=True))
    for name in JSON_COLUMNS:
        data[name] = orjson.loads(data[name])  # type: ignore[arg-type]
    data["tags"] = tuple(data["tags"])  # type: ignore[arg-type]
    return UsageRecord(**data)  # type: ignore[arg-type]

BASE_KEYS = ("customer", "day", "route", "provider", "model")
# Aggregate table and its key columns per breakdown; the dim column (if any) comes last.
DAILY: dict[Breakdown, tuple[str, tuple[str, ...]]] = {
    "base": ("daily_base", BASE_KEYS),
    "tag": ("daily_tag", (*BASE_KEYS, "tag")),
    "end_user": ("daily_end_user", (*BASE_KEYS, "end_user")),
}
_MONTHLY = ("monthly_totals", ("customer", "month"))
# Per alternative of the what_if rules: the actual metrics of the requests it covers, plus
# what they would have cost there (an extra column, so the shared upsert builder fits).
WHAT_IF = ("daily_what_if", (*BASE_KEYS, "alternative"))
WHAT_IF_METRICS = (*METRIC_FIELDS, "what_if_nusd")


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
SCHEMA = (
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
    + "".join(_aggregate_ddl(table, keys) for table, keys in DAILY.values())
    + _aggregate_ddl(*_MONTHLY)
    + _aggregate_ddl(*WHAT_IF, WHAT_IF_METRICS)
)
# Columns added after the first release, for files created by an older version: the
# usage log's (with their DDL), and each aggregate table's metric columns (added by
# `missing_metric_columns`, since every aggregate table carries every metric).
ADDED_COLUMNS = {
    "what_if": "ALTER TABLE usage_log ADD COLUMN what_if TEXT NOT NULL DEFAULT '{}'",
    **{
        column: f"ALTER TABLE usage_log ADD COLUMN {column} INTEGER NOT NULL DEFAULT 0"
        for column in (
            "cache_write_5m_tokens",
            "cache_write_1h_tokens",
            "input_audio_tokens",
            "input_image_tokens",
            "output_audio_tokens",
            "output_image_tokens",
            "web_search_requests",
        )
    },
    **{
        column: f"ALTER TABLE usage_log ADD COLUMN {column} {kind}"
        for column, kind in (
            ("service_tier", "TEXT"),
            ("provider_cost_nusd", "INTEGER"),
            ("billable_nusd", "INTEGER"),
        )
    },
}
AGGREGATE_TABLES: tuple[str, ...] = (
    *(table for table, _ in DAILY.values()),
    _MONTHLY[0],
    WHAT_IF[0],
)


def missing_metric_columns(table: str, present: set[str]) -> list[str]:
    """ALTER statements adding the metrics `table` lacks (a file of an older version)."""
    return [
        f"ALTER TABLE {table} ADD COLUMN {metric} INTEGER NOT NULL DEFAULT 0"
        for metric in METRIC_FIELDS
        if metric not in present
    ]

INSERT_USAGE = (
    f"INSERT INTO usage_log ({', '.join(RECORD_COLUMNS)})"
    f" VALUES ({', '.join('?' * len(RECORD_COLUMNS))}) ON CONFLICT (request_id) DO NOTHING"
)
SELECT_USAGE = f"SELECT {', '.join(RECORD_COLUMNS)} FROM usage_log WHERE request_id = ?"
UPSERT_DAILY = {breakdown: _upsert_sql(*spec) for breakdown, spec in DAILY.items()}
UPSERT_MONTHLY = _upsert_sql(*_MONTHLY)
UPSERT_WHAT_IF = _upsert_sql(*WHAT_IF, WHAT_IF_METRICS)
SELECT_MONTHLY = (
    f"SELECT {', '.join(METRIC_FIELDS)} FROM {_MONTHLY[0]} WHERE customer = ? AND month = ?"
)
# Rowids stay contiguous (only the oldest rows are ever deleted), so max(rowid) - keep is the
# cut. At most `cap` rows go per call: a lowered limit catches up over several trims instead
# of stalling the writer thread (and every request waiting on it) in one go.
TRIM_USAGE = (
    "DELETE FROM usage_log WHERE rowid <= min("
    "(SELECT max(rowid) FROM usage_log) - :keep, (SELECT min(rowid) FROM usage_log) + :cap)"
)


def select_daily_sql(breakdown: Breakdown, *, one_customer: bool) -> str:
    """Rows of a breakdown in a day range (params: from_day, to_day[, customer])."""
    table, keys = DAILY[breakdown]
    sql = f"SELECT {', '.join((*keys, *METRIC_FIELDS))} FROM {table} WHERE day BETWEEN ? AND ?"
    return sql + " AND customer = ?" if one_customer else sql


def select_what_if_sql(*, one_customer: bool) -> str:
    """What-if rows in a day range (params: from_day, to_day[, customer])."""
    table, keys = WHAT_IF
    sql = f"SELECT {', '.join((*keys, *WHAT_IF_METRICS))} FROM {table} WHERE day BETWEEN ? AND ?"
    return sql + " AND customer = ?" if one_customer else sql
