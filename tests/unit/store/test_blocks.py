"""Day blocks: every range is tiled exactly, with few blocks."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from proxy.store.blocks import LEVELS, blocks_of_day, cover, epoch_day


def days_of(block: tuple[int, int]) -> range:
    level, index = block
    size = 4**level
    return range(index * size, (index + 1) * size)


def test_epoch_days() -> None:
    assert epoch_day(date(1970, 1, 1)) == 0
    assert epoch_day("2026-11-28") == 20_785  # (date(2026, 11, 28) - date(1970, 1, 1)).days


def test_a_day_is_in_one_block_per_level() -> None:
    assert blocks_of_day(20_785) == ((0, 20_785), (1, 5_196), (2, 1_299), (3, 324))


def test_cover_examples() -> None:
    day = date.fromordinal(date(1970, 1, 1).toordinal() + 256 * 80)  # starts a 64-day block
    assert cover(day, day) == [(0, 20_480)]
    assert cover(day, day + timedelta(days=255)) == [(3, 320), (3, 321), (3, 322), (3, 323)]
    assert cover(day + timedelta(days=1), day + timedelta(days=4)) == [
        (0, 20_481), (0, 20_482), (0, 20_483), (0, 20_484),
    ]  # fmt: skip
    assert cover(day, day - timedelta(days=1)) == []


@given(
    st.dates(date(2020, 1, 1), date(2030, 12, 31)),
    st.integers(min_value=0, max_value=365),
)
def test_cover_tiles_the_range_exactly_with_few_blocks(first: date, length: int) -> None:
    last = first + timedelta(days=length)
    blocks = cover(first, last)
    covered = [day for block in blocks for day in days_of(block)]
    assert covered == list(range(epoch_day(first), epoch_day(last) + 1))
    assert len(blocks) <= 6 * LEVELS + 6  # 3 per level and side; up to 6 of 64 days
    for block in blocks:  # each block is the one its days are counted in
        assert all(block in blocks_of_day(day) for day in days_of(block))
