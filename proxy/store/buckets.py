"""How a usage record is bucketed into aggregates: UTC day and month, tag and end-user dims.

Pure functions shared by every store, so that all stores bucket the same record identically.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

from proxy.accounting.records import AggregateRow, UsageRecord, WhatIfRow

__all__ = [
    "days_between",
    "end_user_dim",
    "row_sort_key",
    "tag_dims",
    "utc_day",
    "utc_month",
    "what_if_sort_key",
]

_EPOCH = date(1970, 1, 1)
_MS_PER_DAY = 86_400_000


def utc_day(ts_ms: int) -> str:
    """ISO date of the UTC day containing `ts_ms`.

    Integer floor division, not float seconds: 23:59:59.999 must never round into the next day.
    """
    return (_EPOCH + timedelta(days=ts_ms // _MS_PER_DAY)).isoformat()


def utc_month(ts_ms: int) -> str:
    """ "YYYY-MM" of the UTC month containing `ts_ms`."""
    return utc_day(ts_ms)[:7]


def days_between(from_day: date, to_day: date) -> Iterator[str]:
    """ISO dates from `from_day` to `to_day`, both included (nothing when reversed)."""
    for offset in range((to_day - from_day).days + 1):
        yield (from_day + timedelta(days=offset)).isoformat()


def tag_dims(record: UsageRecord) -> tuple[str, ...]:
    """The tag-breakdown dims of a record: each distinct tag once, or "" when untagged.

    Deduplicated so a request that repeats a tag is still counted once under it.
    """
    return tuple(sorted(set(record.tags))) or ("",)


def end_user_dim(record: UsageRecord) -> str:
    return record.end_user or ""


def row_sort_key(row: AggregateRow) -> tuple[str, ...]:
    """The order every store returns aggregate rows in, so results compare across stores."""
    return (row.customer, row.day, row.route, row.provider, row.model, row.dim or "")


def what_if_sort_key(row: WhatIfRow) -> tuple[str, ...]:
    return (row.customer, row.day, row.route, row.provider, row.model, row.alternative)
