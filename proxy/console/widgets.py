"""Pieces several pages share: the range picker, stat cards, a pager, breakdown tables. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, timedelta

from proxy.accounting.pricing import parse_usd
from proxy.accounting.records import Totals
from proxy.accounting.spend import totals_from_json
from proxy.console.html import count, esc, link, money_of, query, table

__all__ = [
    "breakdown_table",
    "card",
    "pager",
    "range_form",
    "section",
    "tokens_of",
    "used_bar",
]


def range_form(
    path: str, from_day: date, to_day: date, today: date, extra: Mapping[str, str]
) -> str:
    """GET form for the day range, with one-click presets (no script needed)."""
    hidden = "".join(
        f'<input type="hidden" name="{esc(k)}" value="{esc(v)}">' for k, v in extra.items() if v
    )
    presets = [
        ("Today", today, today),
        ("7 days", today - timedelta(days=6), today),
        ("30 days", today - timedelta(days=29), today),
        ("This month", today.replace(day=1), today),
        ("90 days", today - timedelta(days=89), today),
    ]
    links = " ".join(
        link(query(path, {**extra, "from": a.isoformat(), "to": b.isoformat()}), label, "chip")
        for label, a, b in presets
    )
    return (
        f'<form class="range" method="get" action="{esc(path)}">{hidden}'
        f'<label>From <input type="date" name="from" value="{from_day.isoformat()}"></label>'
        f'<label>To <input type="date" name="to" value="{to_day.isoformat()}"></label>'
        '<button type="submit">Show</button>'
        f'<span class="presets">{links}</span></form>'
    )


def section(title: str, html: str) -> str:
    return f"<section><h2>{esc(title)}</h2>{html}</section>"


def used_bar(share: float | None) -> str:
    """How much of a budget is spent: a bar and the percentage ("—" without a budget)."""
    if share is None:
        return "—"
    pct = share * 100
    return f'<progress max="100" value="{min(pct, 100):.0f}"></progress> {pct:.0f}%'


def card(label: str, value_html: str, note: str = "") -> str:
    note_html = f'<div class="note">{esc(note)}</div>' if note else ""
    return (
        f'<div class="card"><div class="label">{esc(label)}</div>'
        f'<div class="value">{value_html}</div>{note_html}</div>'
    )


def pager(path: str, params: Mapping[str, str], page: int, pages: int) -> str:
    if pages <= 1:
        return ""
    parts = []
    if page > 1:
        parts.append(link(query(path, {**params, "page": str(page - 1)}), "← Previous"))
    parts.append(f"<span>Page {page:,} of {pages:,}</span>")
    if page < pages:
        parts.append(link(query(path, {**params, "page": str(page + 1)}), "Next →"))
    return f'<nav class="pager" aria-label="Pages">{" ".join(parts)}</nav>'


def tokens_of(item: Mapping[str, object] | Totals) -> int:
    if isinstance(item, Totals):
        return item.input_tokens + item.output_tokens
    return int(str(item["input_tokens"])) + int(str(item["output_tokens"]))


def breakdown_table(
    answer: dict, dim: str, label: str, *, none_label: str = "(none)", top: int | None = None
) -> str:
    """One spend-API answer grouped by `dim`, largest first, with its total as the footer:
    the rows of a base dimension add up to it (a request with two tags counts under both).
    With `top`, the rest are summed in one row, so the rows still add up."""
    groups = sorted(answer.get("groups", []), key=lambda g: -parse_usd(str(g["cost_usd"])))
    shown = groups if top is None or len(groups) <= top + 1 else groups[:top]
    rows = [_breakdown_row(esc(none_label) if g[dim] is None else esc(g[dim]), totals_from_json(g))
            for g in shown]  # fmt: skip
    if len(shown) < len(groups):
        rest = Totals()
        for group in groups[len(shown) :]:
            rest.add(totals_from_json(group))
        rows.append(_breakdown_row(f"{len(groups) - len(shown):,} others", rest))
    total = totals_from_json(answer["total"])
    foot = [_breakdown_row("Total", total)]
    return table(
        [esc(label), "Spend", "Requests", "Tokens"],
        rows,
        foot=foot,
        numeric=(1, 2, 3),
        cls=f"by-{dim}",
    )


def _breakdown_row(label_html: str, totals: Totals) -> list[str]:
    return [label_html, money_of(totals), count(totals.requests), count(tokens_of(totals))]


def options(values: Sequence[str], selected: str | None) -> str:
    return "".join(
        f'<option value="{esc(v)}"{" selected" if v == selected else ""}>{esc(v or "any")}</option>'
        for v in values
    )
