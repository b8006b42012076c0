"""Recent usage records, filtered, a page at a time; and one record in full."""

from __future__ import annotations

import orjson
from aiohttp import web

from proxy.console.core import Ctx, PageError, customer_path
from proxy.console.html import esc, link, query
from proxy.console.requests_table import cost_cell, requests_table
from proxy.utc import iso_utc

__all__ = ["request_page", "requests_page"]

PAGE_SIZE = 50


async def requests_page(ctx: Ctx) -> web.StreamResponse:
    params = ctx.request.query
    customer = params.get("customer") or None
    if ctx.session is not None and not ctx.session.is_admin:
        customer = ctx.session.customer  # a shared link sees its own customer's only
    model = params.get("model") or None
    status_text = params.get("status") or ""
    try:
        status = int(status_text) if status_text else None
    except ValueError:
        raise PageError(400, "The status is a number, like 200 or 429.") from None
    await ctx.state.recorder.flush()
    page = await ctx.state.store.recent_usage(
        customer=customer, model=model, status=status, cursor=params.get("cursor"), limit=PAGE_SIZE
    )
    fixed = ctx.session is not None and not ctx.session.is_admin
    customer_input = (
        f'<input type="hidden" name="customer" value="{esc(customer)}">'
        if fixed
        else f'<label>Customer <input name="customer" value="{esc(customer or "")}"></label>'
    )
    filters = (
        '<form class="filters" method="get" action="/ui/requests">'
        + customer_input
        + f'<label>Model <input name="model" value="{esc(model or "")}"></label>'
        + '<label>Status <input name="status" inputmode="numeric" size="4" '
        + f'value="{esc(status_text)}"></label>'
        + '<button type="submit">Filter</button></form>'
    )
    more = ""
    if page.next_cursor is not None:
        keep = {"customer": customer or "", "model": model or "", "status": status_text}
        older = query("/ui/requests", {**keep, "cursor": page.next_cursor})
        more = f'<nav class="pager">{link(older, "Older →")}</nav>'
    body = filters + requests_table(page.records, show_customer=not fixed) + more
    return ctx.page("Requests", body, current="/ui/requests")


async def request_page(ctx: Ctx) -> web.StreamResponse:
    request_id = ctx.request.match_info["request_id"]
    await ctx.state.recorder.flush()
    record = await ctx.state.store.get_usage(request_id)
    if record is None:
        raise PageError(404, f"No usage record for request {request_id} (or it was trimmed).")
    ctx.require_customer(record.customer)
    data = record.to_dict()
    rows = "".join(
        f"<tr><th scope=row>{esc(name)}</th><td>{esc(value)}</td></tr>"
        for name, value in data.items()
        if name not in ("cost_nusd", "ts_ms")
    )
    summary = (
        f"<p>{esc(iso_utc(record.ts_ms))} · "
        f"{link(f'/ui/customers/{customer_path(record.customer)}', record.customer)} · "
        f"{esc(record.model)} · cost {cost_cell(record)}</p>"
    )
    raw = orjson.dumps(data, option=orjson.OPT_INDENT_2).decode()
    body = (
        summary
        + f'<div class="table-wrap"><table class="record"><tbody>{rows}</tbody></table></div>'
        + f"<details><summary>As JSON (GET /admin/v1/usage/{esc(request_id)})</summary>"
        + f"<pre>{esc(raw)}</pre></details>"
    )
    return ctx.page(f"Request {request_id}", body, current="/ui/requests")
