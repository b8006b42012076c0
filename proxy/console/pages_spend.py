"""Where the money goes: the overview, the customer list and one customer's page."""

from __future__ import annotations

from datetime import date, timedelta

from aiohttp import web

from proxy.accounting.pricing import parse_usd

from proxy.accounting.rollups import RANK_BY, RankBy
from proxy.budgets.guard import BUDGETS
from proxy.budgets.service import scope_view
from proxy.console import data
from proxy.console.charts import stacked_bars
from proxy.console.core import Ctx, PageError, customer_path
from proxy.console.html import count, csrf_field, esc, link, money, money_of, query, table
from proxy.console.requests_table import requests_table
from proxy.console.widgets import (
    breakdown_table,
    card,
    group_totals,
    pager,
    range_form,
    tokens_of,
)
from proxy.utc import iso_utc

__all__ = ["customer_page", "customers_page", "overview_page"]

PAGE_SIZE = 50


def _days(answer: dict) -> list[str]:
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
    total = group_totals(view.answer["total"])
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
    chart = stacked_bars(_days(view.answer), view.series, label=f"Spend per day by {by}")
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
        + f"<section><h2>Top customers</h2>{top}<p>{link('/ui/customers', 'All customers →')}</p></section>"
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
    by: RankBy = sort  # type: ignore[assignment]
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
        budget = (
            "—"
            if share is None
            else f'<progress max="100" value="{min(share * 100, 100):.0f}"></progress> {share * 100:.0f}%'
        )
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
        f'<input type="hidden" name="from" value="{from_day}"><input type="hidden" name="to" value="{to_day}">'
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


async def customer_page(ctx: Ctx) -> web.StreamResponse:
    customer = ctx.request.match_info["customer"]
    ctx.require_customer(customer)
    from_day, to_day = data.parse_range(ctx.request.query)
    await ctx.state.recorder.flush()
    store = ctx.state.store
    view = await data.customer_view(store, customer, from_day, to_day)
    total = group_totals(view.total["total"])
    series: dict[str, dict[str, int]] = {}
    for group in view.by_day_model.get("groups", []):
        series.setdefault(group["model"], {})[group["day"]] = group_totals(group).cost_nusd
    guard = ctx.request.app[BUDGETS]
    budgets = await scope_view(store, guard.book, f"customer/{customer}")
    keys = await store.list_keys(customer) if ctx.session and ctx.session.is_admin else []
    recent = await store.recent_usage(customer=customer, limit=20)
    cards = card(
        "Spend in range",
        money_of(total),
        f"{total.requests:,} requests, {tokens_of(total):,} tokens",
    )
    body = (
        range_form(
            f"/ui/customers/{customer_path(customer)}", from_day, to_day, data.today_utc(), {}
        )
        + f'<section class="cards">{cards}</section>'
        + "<section><h2>Spend per day</h2>"
        + stacked_bars(_days(view.total), series, label=f"Spend of {customer} per day by model")
        + "</section>"
        + '<div class="cols">'
        + f"<section><h2>By model</h2>{breakdown_table(view.by_model, 'model', 'Model')}</section>"
        + f"<section><h2>By tag</h2>{breakdown_table(view.by_tag, 'tag', 'Tag', none_label='(untagged)')}</section>"
        + f"<section><h2>By end user</h2>{breakdown_table(view.by_end_user, 'end_user', 'End user')}</section>"
        + f"<section><h2>Budgets</h2>{_budgets_table(budgets)}</section>"
        + "</div>"
        + (_keys_section(keys) if ctx.session and ctx.session.is_admin else "")
        + "<section><h2>Recent requests</h2>"
        + requests_table(recent.records, show_customer=False)
        + f"<p>{link(query('/ui/requests', {'customer': customer}), 'All requests of ' + customer + ' →')}</p>"
        + "</section>"
        + (await _shares_section(ctx, customer) if ctx.session and ctx.session.is_admin else "")
    )
    return ctx.page(
        f"Customer {customer}", body, current=f"/ui/customers/{customer_path(customer)}"
    )


def _budgets_table(view: dict) -> str:
    rows = []
    for item in view["budgets"]:
        spent = item.get("spent_usd")
        limit = item["limit_usd"]
        share = ""
        if spent is not None:
            pct = 100 * _nusd(spent) / max(_nusd(limit), 1)
            share = f'<progress max="100" value="{min(pct, 100):.0f}"></progress> {pct:.0f}%'
        rows.append(
            [
                esc(item["period"]),
                "—" if spent is None else money(_nusd(spent)),
                money(_nusd(limit)),
                share,
                "hard" if item["hard"] else "alert only",
                esc(item.get("resets_at") or "never"),
            ]
        )
    return table(
        ["Period", "Spent", "Limit", "Used", "Kind", "Resets (UTC)"],
        rows,
        numeric=(1, 2),
        cls="budgets",
        empty="No budget for this customer.",
    )


def _keys_section(keys: list) -> str:
    rows = [
        [
            esc(k.id),
            esc(k.name or ""),
            f"<code>{esc(k.prefix)}…</code>",
            esc(iso_utc(k.last_used_ms)) if k.last_used_ms else "never",
        ]
        for k in keys
    ]
    return (
        "<section><h2>Keys</h2>"
        + table(
            ["Key", "Name", "Starts with", "Last used (UTC)"],
            rows,
            cls="keys",
            empty="No issued key (keys from the config file are not listed).",
        )
        + f"<p>{link('/ui/keys', 'Manage keys →')}</p></section>"
    )


async def _shares_section(ctx: Ctx, customer: str) -> str:
    shares = await ctx.state.store.list_shares(customer)
    csrf = csrf_field(ctx.csrf or "")
    rows = []
    for share in shares:
        live = share.live(ctx.now_ms)
        state = "live" if live else ("revoked" if share.revoked_ms else "expired")
        action = (
            f'<form method="post" action="/ui/shares/{esc(share.id)}/revoke">{csrf}'
            f'<input type="hidden" name="customer" value="{esc(customer)}">'
            '<button type="submit" class="danger">Revoke</button></form>'
            if live
            else ""
        )
        rows.append([esc(share.id), esc(iso_utc(share.expires_ms)), state, action])
    create = (
        f'<form method="post" action="/ui/customers/{esc(customer_path(customer))}/shares" class="inline">{csrf}'
        '<label>Valid for <input type="number" name="days" value="30" min="1" max="366"> days</label>'
        '<button type="submit">Create a read-only link</button></form>'
    )
    return (
        "<section><h2>Read-only links</h2>"
        + table(["Link", "Expires (UTC)", "State", ""], rows, cls="shares", empty="No link yet.")
        + create
        + "</section>"
    )
