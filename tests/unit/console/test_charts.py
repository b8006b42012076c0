"""Server-drawn charts: exact amounts on every bar, names escaped, small series grouped."""

from __future__ import annotations

import re

from proxy.console.charts import SERIES_SHOWN, stacked_bars

DAYS = ["2026-11-27", "2026-11-28"]


def test_each_bar_carries_its_exact_amount() -> None:
    svg = stacked_bars(DAYS, {"gpt-4o": {"2026-11-27": 1_234_567_891}}, label="spend")
    assert "2026-11-27 · gpt-4o: $1.234567891" in svg
    assert svg.count("<rect") == 1  # a day without spend draws nothing


def test_names_are_escaped_and_small_series_grouped() -> None:
    series = {f"m{i}<b>": {"2026-11-28": 100 + i} for i in range(SERIES_SHOWN + 3)}
    svg = stacked_bars(DAYS, series, label="spend")
    assert "<b>" not in svg and "m9&lt;b&gt;" in svg
    assert "other (3)" in svg
    assert len(re.findall(r'class="swatch s\d"', svg)) == SERIES_SHOWN + 1
    # The grouped series holds exactly the three smallest.
    assert "other (3): $0.000000303" in svg
