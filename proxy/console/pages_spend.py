"""Where the money goes: the overview, the customer list and one customer's page."""

from __future__ import annotations

from datetime import date, timedelta

from aiohttp import web

from proxy.accounting.pricing import parse_usd
from proxy.accounting.rollups import RANK_BY, RankBy
from proxy.accounting.spend import totals_from_json
from proxy.budgets.guard import BUDGETS
from proxy.console import data
from proxy.console.charts import stacked_bars
from proxy.console.core import Ctx, PageError, customer_path
from proxy.console.html import count, esc, link, money, money_of, query, table
from proxy.console.widgets import (
    breakdown_table,
    card,
    pager,
    range_form,
    section,
    tokens_of,
    used_bar,
)

__all__ = ["customers_page", "days_of", "overview_page"]

PAGE_SIZE = 50


def days_of(answer: dict) -> list[str]:
    first, last = date.fromisoformat(answer["from"]), date.fromisoformat(answer["to"])
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


async def overview_page(ctx: Ctx) -> web.StreamResponse:
    params = ctx.request.query
    from_day, to_day = data.parse_range(params)
    by = params.get("by", "model")
    if by not in ("model", "provider"):
        raise PageError(400, "Group the chart by model or provider.")
    await ctx.state.recorder.flush()  # this instance's own writes are counted
    view = await data.overview(ctx.state, from_day, to_day, by, ctx.now_ms)
    total = totals_from_json(view.answer["total"])
    cards = "".join(
        [
            card("Today", money_of(view.today), f"{view.today.requests:,} requests"),
            card("Month to date", money_of(view.month), f"{view.month.requests:,} requests"),
            card(
                "Spend rate",
                f"{money(view.last_hour.cost_nusd)}<small>/hour</small>",
                f"last 60 minutes, {view.last_hour.requests:,} requests",
            ),
            card(
                "This range",
                money_of(total),
                f"{total.requests:,} requests, {tokens_of(total):,} tokens",
            ),
        ]
    )
    toggle = " ".join(
        link(query("/ui/", {**params, "by": b}), f"by {b}", "chip" + (" on" if b == by else ""))
        for b in ("model", "provider")
    )
    chart = stacked_bars(days_of(view.answer), view.series, label=f"Spend per day by {by}")
    top_rows = [
        [
            link(f"/ui/customers/{customer_path(row.customer)}", row.customer),
            money_of(row.totals),
            count(row.totals.requests),
        ]
        for row in view.top.rows
    ]
    top = table(["Customer", "Spend", "Requests"], top_rows, numeric=(1, 2), cls="top-customers")
    unpriced_rows = [[esc(p), esc(m), count(n)] for p, m, n in view.unpriced]
    unpriced = table(
        ["Provider", "Model", "Requests"],
        unpriced_rows,
        numeric=(2,),
        cls="unpriced-models",
        empty="Every request in this range had a price.",
    )
    body = (
        range_form("/ui/", from_day, to_day, data.today_utc(), {"by": by})
        + f'<section class="cards">{cards}</section>'
        + f'<section><h2>Spend per day <span class="chips">{toggle}</span></h2>{chart}</section>'
        + f"<section><h2>By {esc(by)}</h2>{breakdown_table(view.answer, by, by.title())}</section>"
        + '<div class="cols">'
        + section("Top customers", f"{top}<p>{link('/ui/customers', 'All customers →')}</p>")
        + "<section><h2>Unpriced traffic</h2><p class=hint>Requests to models without a"
        " price: their cost is unknown (not $0) and not in the totals.</p>"
        + f"{unpriced}</section></div>"
        + _what_if(view.what_if)
    )
    return ctx.page("Overview", body, current="/ui/")


def _what_if(section: dict | None) -> str:
    if not section:
        return ""
    rows = [
        [
            esc(g["alternative"]),
            count(g["requests"]),
            money(_nusd(g["actual_cost_usd"])),
            money(_nusd(g["alternative_cost_usd"])),
            "unknown (unpriced requests)"
            if g["saving_usd"] is None
            else money(_nusd(g["saving_usd"])),
        ]
        for g in section["groups"]
    ]
    return (
        "<section><h2>What if</h2>"
        + table(
            ["Alternative", "Requests", "Actual", "At the alternative", "Saving"],
            rows,
            numeric=(1, 2, 3, 4),
            cls="what-if",
        )
        + f'<p class="hint">{esc(section["note"])}.</p></section>'
    )


def _nusd(usd: str) -> int:
    return parse_usd(usd)


async def customers_page(ctx: Ctx) -> web.StreamResponse:
    params = ctx.request.query
    from_day, to_day = data.parse_range(params)
    sort = params.get("sort", "cost")
    if sort not in RANK_BY:
        raise PageError(400, f"Sort by one of {', '.join(RANK_BY)}.")
    descending = params.get("dir", "desc" if sort != "customer" else "asc") != "asc"
    search = (params.get("q") or "").strip() or None
    try:
        page = max(1, int(params.get("page", "1")))
    except ValueError:
        raise PageError(400, "The page is a number.") from None
    await ctx.state.recorder.flush()
    by: RankBy = sort
    ranking, everyone = await data.ranked_customers(
        ctx.state,
        from_day,
        to_day,
        by=by,
        descending=descending,
        search=search,
        offset=(page - 1) * PAGE_SIZE,
        limit=PAGE_SIZE,
    )
    guard = ctx.request.app[BUDGETS]
    used = await data.budget_used(ctx.state.store, guard.book, [r.customer for r in ranking.rows])
    keep = {"from": from_day.isoformat(), "to": to_day.isoformat(), "q": search or ""}

    def header(label: str, key: str) -> str:
        flip = "asc" if sort == key and descending else "desc"
        arrow = (" ↓" if descending else " ↑") if sort == key else ""
        href = query("/ui/customers", {**keep, "sort": key, "dir": flip})
        aria = f' aria-sort="{"descending" if descending else "ascending"}"' if sort == key else ""
        return f'<a href="{esc(href)}"{aria}>{esc(label)}{arrow}</a>'

    rows = []
    page_total = data.Totals()
    for row in ranking.rows:
        page_total.add(row.totals)
        share = used.get(row.customer)
        budget = used_bar(share)
        rows.append(
            [
                link(f"/ui/customers/{customer_path(row.customer)}", row.customer),
                money_of(row.totals),
                count(row.totals.requests),
                count(tokens_of(row.totals)),
                budget,
            ]
        )
    foot = [
        [
            f"This page ({len(ranking.rows):,})",
            money_of(page_total),
            count(page_total.requests),
            count(tokens_of(page_total)),
            "",
        ]
    ]
    if not search:
        foot.append(
            [
                f"All {ranking.count:,} customers",
                money_of(everyone),
                count(everyone.requests),
                count(tokens_of(everyone)),
                "",
            ]
        )
    headers = [
        header("Customer", "customer"),
        header("Spend", "cost"),
        header("Requests", "requests"),
        header("Tokens", "tokens"),
        "Budget used",
    ]
    search_form = (
        '<form class="search" method="get" action="/ui/customers" role="search">'
        f'<input type="hidden" name="from" value="{from_day}">'
        f'<input type="hidden" name="to" value="{to_day}">'
        f'<input type="hidden" name="sort" value="{esc(sort)}">'
        f'<label>Customer <input type="search" name="q" value="{esc(search or "")}" '
        'placeholder="part of a name"></label><button type="submit">Search</button></form>'
    )
    pages = max(1, -(-ranking.count // PAGE_SIZE))
    body = (
        range_form(
            "/ui/customers", from_day, to_day, data.today_utc(), {"sort": sort, "q": search or ""}
        )
        + search_form
        + f"<p>{ranking.count:,} customers with traffic in this range"
        + (f" matching “{esc(search)}”" if search else "")
        + ".</p>"
        + table(headers, rows, foot=foot, numeric=(1, 2, 3), cls="customers")
        + pager(
            "/ui/customers",
            {**keep, "sort": sort, "dir": "desc" if descending else "asc"},
            page,
            pages,
        )
    )
    return ctx.page("Customers", body, current="/ui/customers")
