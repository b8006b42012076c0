"""Charts drawn on the server as SVG: no chart library, no script. Pure.

Colours come from the stylesheet (classes s0..s7), so the light and dark themes both work
and the Content-Security-Policy needs no inline style. Each bar carries a <title>, which
browsers show on hover and screen readers read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal

from proxy.accounting.pricing import NUSD_PER_USD, format_usd, format_usd_short
from proxy.console.html import esc

__all__ = ["SERIES_SHOWN", "stacked_bars"]

SERIES_SHOWN = 7  # the largest series; the rest are drawn together as "other"
_W, _H, _LEFT, _BOTTOM, _TOP = 760, 240, 64, 24, 10


def _usd_label(nusd: int) -> str:
    usd = Decimal(nusd) / NUSD_PER_USD
    if usd >= 100:
        return f"${usd:,.0f}"
    if usd >= 1:
        return f"${usd:,.2f}"
    return f"${format_usd_short(nusd)}"  # small amounts keep their digits: $0.000025


def _nice_max(value: int) -> int:
    """A round top for the axis, at least `value`."""
    if value <= 0:
        return NUSD_PER_USD // 100
    step = 10 ** (len(str(value)) - 1)
    for factor in (1, 2, 4, 8, 10):  # a quarter of each is a round gridline step
        top = int(step * factor)
        if top >= value:
            return top
    return step * 10


def stacked_bars(
    days: Sequence[str], series: Mapping[str, Mapping[str, int]], *, label: str
) -> str:
    """Spend per day (nano-dollars), stacked by series (e.g. model), as an SVG figure."""
    ranked = sorted(series, key=lambda name: (-sum(series[name].values()), name))
    shown = ranked[:SERIES_SHOWN]
    rest = ranked[SERIES_SHOWN:]
    stacks: list[tuple[str, Mapping[str, int]]] = [(name, series[name]) for name in shown]
    if rest:
        other: dict[str, int] = {}
        for name in rest:
            for day, nusd in series[name].items():
                other[day] = other.get(day, 0) + nusd
        stacks.append((f"other ({len(rest)})", other))
    totals = [sum(s.get(day, 0) for _, s in stacks) for day in days]
    top = _nice_max(max(totals, default=0))
    plot_w, plot_h = _W - _LEFT - 8, _H - _BOTTOM - _TOP
    slot = plot_w / max(len(days), 1)
    bar = max(slot * 0.72, 1.0)
    parts = [f'<svg class="chart" viewBox="0 0 {_W} {_H}" role="img" aria-label="{esc(label)}">']
    for i in range(5):  # grid lines and their amounts
        value = top * i // 4
        y = _TOP + plot_h - plot_h * i / 4
        parts.append(
            f'<line class="grid" x1="{_LEFT}" x2="{_W - 8}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="axis" x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{esc(_usd_label(value))}</text>"
        )
    for d, day in enumerate(days):
        x = _LEFT + d * slot + (slot - bar) / 2
        y = _TOP + plot_h
        for n, (name, values) in enumerate(stacks):
            nusd = values.get(day, 0)
            if nusd <= 0:
                continue
            h = plot_h * nusd / top
            y -= h
            parts.append(
                f'<rect class="s{n}" x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}">'
                f"<title>{esc(day)} · {esc(name)}: ${format_usd(nusd)}</title></rect>"
            )
    for d in sorted({0, len(days) // 2, len(days) - 1}) if days else ():
        x = _LEFT + d * slot + slot / 2
        anchor = "start" if d == 0 else "end" if d == len(days) - 1 else "middle"
        x = _LEFT if anchor == "start" else _W - 8 if anchor == "end" else x
        parts.append(
            f'<text class="axis" x="{x:.1f}" y="{_H - 6}" text-anchor="{anchor}">'
            f"{esc(days[d])}</text>"
        )
    parts.append("</svg>")
    legend = "".join(
        f'<li><span class="swatch s{n}"></span>{esc(name)}</li>'
        for n, (name, _) in enumerate(stacks)
    )
    return f'<figure class="chart-box">{"".join(parts)}<ul class="legend">{legend}</ul></figure>'
