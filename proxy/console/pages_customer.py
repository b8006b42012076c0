"""One customer's page: spend over time; by model, tag and end user; budgets; keys;
recent requests; and, for the operator, its read-only links."""

from __future__ import annotations

from aiohttp import web

from proxy.accounting.pricing import parse_usd
from proxy.accounting.spend import totals_from_json
from proxy.budgets.guard import BUDGETS
from proxy.budgets.service import scope_view
from proxy.console import data
from proxy.console.charts import stacked_bars
from proxy.console.core import Ctx, customer_path
from proxy.console.html import csrf_field, esc, link, money, money_of, query, table
from proxy.console.pages_spend import days_of
from proxy.console.requests_table import requests_table
from proxy.console.widgets import (
    breakdown_table,
    card,
    range_form,
    section,
    tokens_of,
    used_bar,
)
from proxy.utc import iso_utc

__all__ = ["customer_page"]


async def customer_page(ctx: Ctx) -> web.StreamResponse:
    customer = ctx.request.match_info["customer"]
    ctx.require_customer(customer)
    from_day, to_day = data.parse_range(ctx.request.query)
    await ctx.state.recorder.flush()
    store = ctx.state.store
    view = await data.customer_view(store, customer, from_day, to_day)
    total = totals_from_json(view.total["total"])
    series: dict[str, dict[str, int]] = {}
    for group in view.by_day_model.get("groups", []):
        series.setdefault(group["model"], {})[group["day"]] = totals_from_json(group).cost_nusd
    guard = ctx.request.app[BUDGETS]
    budgets = await scope_view(store, guard.book, f"customer/{customer}")
    keys = await store.list_keys(customer) if ctx.session and ctx.session.is_admin else []
    recent = await store.recent_usage(customer=customer, limit=20)
    all_requests = query("/ui/requests", {"customer": customer})
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
        + stacked_bars(days_of(view.total), series, label=f"Spend of {customer} per day by model")
        + "</section>"
        + '<div class="cols">'
        + section("By model", breakdown_table(view.by_model, "model", "Model"))
        + section(
            "By tag", breakdown_table(view.by_tag, "tag", "Tag", none_label="(untagged)", top=10)
        )
        + section("By end user", breakdown_table(view.by_end_user, "end_user", "End user", top=10))
        + section("Budgets", _budgets_table(budgets))
        + "</div>"
        + (_keys_section(keys) if ctx.session and ctx.session.is_admin else "")
        + "<section><h2>Recent requests</h2>"
        + requests_table(recent.records, show_customer=False)
        + f"<p>{link(all_requests, f'All requests of {customer} →')}</p>"
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
        share = "" if spent is None else used_bar(parse_usd(spent) / max(parse_usd(limit), 1))
        rows.append(
            [
                esc(item["period"]),
                "—" if spent is None else money(parse_usd(spent)),
                money(parse_usd(limit)),
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
        f'<form method="post" action="/ui/customers/{esc(customer_path(customer))}/shares" '
        f'class="inline">{csrf}<label>Valid for <input type="number" name="days" value="30" '
        'min="1" max="366"> days</label>'
        '<button type="submit">Create a read-only link</button></form>'
    )
    return (
        "<section><h2>Read-only links</h2>"
        + table(["Link", "Expires (UTC)", "State", ""], rows, cls="shares", empty="No link yet.")
        + create
        + "</section>"
    )
