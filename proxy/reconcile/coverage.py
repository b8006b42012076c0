"""Which UTC days a report's buckets cover. Pure.

A day is covered when the report's buckets span all of it. OpenAI's usage buckets start
at the requested start time and the last one ends "now"; a report saved or fetched before
a day ended covers that day only in part, and its figures of that day are not final.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

from proxy.reconcile.report import Span

__all__ = ["DAY_S", "day_start", "uncovered"]

DAY_S = 86_400


def day_start(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def _merged(spans: Iterable[Span]) -> list[Span]:
    merged: list[Span] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _clock(seconds: int, *, end: bool = False) -> str:
    if end and seconds % DAY_S == 0:
        return "24:00"
    return datetime.fromtimestamp(seconds, UTC).strftime("%H:%M")


def uncovered(spans: Iterable[Span], from_day: date, to_day: date) -> dict[date, str]:
    """Each day of [from_day, to_day] the spans do not cover entirely → what they cover of
    it, in words: "" (nothing) or "00:00 to 17:31 UTC"."""
    merged = _merged(spans)
    missing: dict[date, str] = {}
    day = from_day
    while day <= to_day:
        start = day_start(day)
        end = start + DAY_S
        parts = [(max(s, start), min(e, end)) for s, e in merged if s < end and e > start]
        covered = sum(e - s for s, e in parts)
        if covered < DAY_S:
            ranges = ", ".join(f"{_clock(s)} to {_clock(e, end=True)}" for s, e in parts)
            missing[day] = f"{ranges} UTC" if parts else ""
        day += timedelta(days=1)
    return missing
