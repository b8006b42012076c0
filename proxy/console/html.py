"""The console's HTML: escaping, money and counts, tables, forms, the page layout. Pure.

Every value from outside (customer names, models, tags, query parameters) goes through
`esc`; a helper returns markup that is already safe to join. No inline script or style:
the Content-Security-Policy forbids both.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from html import escape
from urllib.parse import urlencode

from proxy.accounting.pricing import NUSD_PER_USD, format_usd
from proxy.accounting.records import Totals

__all__ = [
    "Nav",
    "count",
    "csrf_field",
    "esc",
    "layout",
    "link",
    "money",
    "money_of",
    "query",
    "table",
]

_CENT = Decimal("0.01")


def esc(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def query(path: str, params: Mapping[str, object]) -> str:
    kept = {k: v for k, v in params.items() if v not in (None, "")}
    return f"{path}?{urlencode(kept)}" if kept else path


def link(href: str, text: object, cls: str = "") -> str:
    extra = f' class="{cls}"' if cls else ""
    return f'<a href="{esc(href)}"{extra}>{esc(text)}</a>'


def count(n: int) -> str:
    return f'<span class="num">{n:,}</span>'


def money(nusd: int) -> str:
    """To the cent, the exact 9-decimal amount in the title (shown on hover)."""
    exact = format_usd(nusd)
    cents = (Decimal(nusd) / NUSD_PER_USD).quantize(_CENT, rounding=ROUND_HALF_EVEN)
    if nusd > 0 and cents == 0:
        shown = "&lt;$0.01"  # not zero: never shown as $0.00
    else:
        shown = f"{'-' if cents < 0 else ''}${abs(cents):,.2f}"
    return f'<span class="usd num" title="${exact}" data-usd="{exact}">{shown}</span>'


def money_of(totals: Totals) -> str:
    """A cost with its unpriced requests apart: "unpriced" when no request had a price."""
    if totals.requests and totals.unpriced_requests == totals.requests:
        title = f"{totals.requests:,} requests without a price"
        return f'<span class="unpriced" title="{title}">unpriced</span>'
    shown = money(totals.cost_nusd)
    if totals.unpriced_requests:
        shown += (
            f' <span class="badge unpriced" title="requests without a price: their cost is'
            f' unknown, not $0">+{totals.unpriced_requests:,} unpriced</span>'
        )
    return shown


def csrf_field(token: str) -> str:
    return f'<input type="hidden" name="csrf" value="{esc(token)}">'


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    foot: Sequence[Sequence[str]] = (),
    numeric: Sequence[int] = (),
    cls: str = "",
    empty: str = "Nothing in this range.",
) -> str:
    """Cells are markup already (escape values before)."""
    right = set(numeric)

    def cells(tag: str, values: Sequence[str]) -> str:
        return "".join(
            f'<{tag} class="r">{v}</{tag}>' if i in right else f"<{tag}>{v}</{tag}>"
            for i, v in enumerate(values)
        )

    body = "".join(f"<tr>{cells('td', row)}</tr>" for row in rows)
    if not body:
        body = f'<tr><td colspan="{len(headers)}" class="empty">{esc(empty)}</td></tr>'
    head = "".join(
        f'<th scope="col" class="r">{h}</th>' if i in right else f'<th scope="col">{h}</th>'
        for i, h in enumerate(headers)
    )
    tfoot = "".join(f"<tr>{cells('td', row)}</tr>" for row in foot)
    tfoot = f"<tfoot>{tfoot}</tfoot>" if tfoot else ""
    return (
        f'<div class="table-wrap"><table class="{esc(cls)}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody>{tfoot}</table></div>"
    )


Nav = Sequence[tuple[str, str]]  # (href, label)


def layout(
    title: str,
    body: str,
    *,
    nav: Nav,
    current: str,
    csrf: str | None,
    who: str,
) -> str:
    items = "".join(
        f'<li><a href="{esc(href)}"{" aria-current=page" if href == current else ""}>'
        f"{esc(label)}</a></li>"
        for href, label in nav
    )
    logout = ""
    if csrf is not None:
        logout = (
            f'<form method="post" action="/ui/logout" class="logout">{csrf_field(csrf)}'
            '<button type="submit" class="link">Log out</button></form>'
        )
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="same-origin">'
        f"<title>{esc(title)} · costproxy</title>"
        '<link rel="stylesheet" href="/ui/static/console.css">'
        '<link rel="icon" href="/ui/static/favicon.svg" type="image/svg+xml">'
        '<script src="/ui/static/console.js" defer></script>'
        "</head><body>"
        '<a class="skip" href="#main">Skip to content</a>'
        '<header class="top"><a class="brand" href="/ui/">costproxy</a>'
        f'<nav aria-label="Console"><ul>{items}</ul></nav>'
        f'<div class="who">{esc(who)}{logout}</div></header>'
        f'<main id="main"><h1>{esc(title)}</h1>{body}</main>'
        '<footer class="foot">Amounts in USD, to the cent; hover for the exact value. '
        "Days are UTC.</footer>"
        "</body></html>"
    )
