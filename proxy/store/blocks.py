"""Day blocks for per-customer totals over any range of days. Pure.

A record is counted in one block per level: blocks of 1, 4, 16 and 64 UTC days,
aligned on 1970-01-01. Any range of days is the union of a few whole blocks (at most
three per level and side, usually fewer), so the totals of every customer over a range
are read from about ten rows or keys per customer, however long the range.
"""

from __future__ import annotations

from datetime import date

__all__ = ["LEVELS", "Block", "blocks_of_day", "cover", "epoch_day"]

LEVELS = 4  # block sizes 4**0 .. 4**3 days: 1, 4, 16 and 64
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()

Block = tuple[int, int]  # (level, index): days [index * 4**level, (index + 1) * 4**level)


def epoch_day(day: date | str) -> int:
    if isinstance(day, str):
        day = date.fromisoformat(day)
    return day.toordinal() - _EPOCH_ORDINAL


def blocks_of_day(day: int) -> tuple[Block, ...]:
    """The block of each level that contains epoch day `day`."""
    return tuple((level, day // 4**level) for level in range(LEVELS))


def cover(from_day: date, to_day: date) -> list[Block]:
    """Whole blocks that exactly tile [from_day, to_day] (inclusive), fewest first-fit."""
    first, last = epoch_day(from_day), epoch_day(to_day)
    blocks: list[Block] = []
    while first <= last:
        for level in range(LEVELS - 1, -1, -1):
            size = 4**level
            if first % size == 0 and first + size - 1 <= last:
                blocks.append((level, first // size))
                first += size
                break
    return blocks
