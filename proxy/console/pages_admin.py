"""The operator's pages beyond spend: budgets, keys (issue, rotate, revoke), prices, export,
and the customer links. Changes go through the same services as the admin API."""

from __future__ import annotations

from aiohttp import web
from pydantic import ValidationError

from proxy.access import service as access_service
from proxy.access.admission import changed
from proxy.accounting.export import FORMATS, ExportQuery, export_chunks
from proxy.accounting.pricing import parse_usd
from proxy.accounting.spend import SpendQueryError
from proxy.admin.models import KeyCreate, KeyRotate
from proxy.budgets.guard import BUDGETS
from proxy.budgets.service import list_with_states
from proxy.console import data
from proxy.console.core import Ctx, PageError, customer_path, now_ms, redirect, security_headers
from proxy.console.html import count, csrf_field, esc, link, money, query, table
from proxy.console.shares import create_share, share_url
from proxy.errors import NotFoundError
from proxy.utc import iso_utc

__all__ = [
    "budgets_page",
    "export_download",
    "export_page",
    "key_confirm",
    "key_issue",
    "key_revoke",
    "key_rotate",
    "keys_page",
    "prices_page",
    "share_create",
    "share_revoke",
]


async def budgets_page(ctx: Ctx) -> web.StreamResponse:
    guard = ctx.request.app[BUDGETS]
    rows = []
    for view in (await list_with_states(guard.store, guard.book))["budgets"]:
        item = view
        for budget in view["budgets"]:
            spent = budget.get("spent_usd")
            limit_nusd = _nusd(budget["limit_usd"])
            used = ""
            if spent is not None:
                pct = 100 * _nusd(spent) / max(limit_nusd, 1)
                used = f'<progress max="100" value="{min(pct, 100):.0f}"></progress> {pct:.0f}%'
            scope_text = item["scope"]
            label = esc(scope_text)
            if scope_text.startswith("customer/"):
                name = scope_text.split("/", 1)[1]
                label = link(f"/ui/customers/{customer_path(name)}", scope_text)
            rows.append(
                [
                    label,
                    esc(budget["period"]),
                    "—" if spent is None else money(_nusd(spent)),
                    money(limit_nusd),
                    used,
                    "hard" if budget["hard"] else "alert only",
                    esc(budget.get("resets_at") or "—"),
                    esc(item["source"]),
                ]
            )
    body = table(
        ["Scope", "Period", "Spent", "Limit", "Used", "Kind", "Resets (UTC)", "Set in"],
        rows,
        numeric=(2, 3),
        cls="budgets",
        empty="No budget is set.",
    ) + (
        '<p class="hint">Set budgets with <code>costproxy budgets set</code> or '
        "<code>PUT /admin/v1/budgets/…</code>; run-time values win over the config.</p>"
    )
    return ctx.page("Budgets", body, current="/ui/budgets")


def _nusd(usd: str) -> int:
    return parse_usd(usd)


def _secret_box(title: str, secret: str, note: str) -> str:
    return (
        f'<section class="secret" role="alert"><h2>{esc(title)}</h2>'
        f'<p><code id="secret">{esc(secret)}</code> '
        '<button type="button" data-copy="secret">Copy</button></p>'
        f'<p class="hint">{esc(note)} It is shown this once and stored only as a digest.</p>'
        "</section>"
    )


async def keys_page(ctx: Ctx, notice: str = "") -> web.StreamResponse:
    customer = ctx.request.query.get("customer") or None
    keys = await ctx.state.store.list_keys(customer)
    csrf = csrf_field(ctx.csrf or "")
    rows = []
    for key in keys:
        actions = (
            f'<a class="button" href="/ui/keys/{esc(key.id)}/rotate">Rotate</a> '
            f'<a class="button danger" href="/ui/keys/{esc(key.id)}/revoke">Revoke</a>'
        )
        who = (
            link(f"/ui/customers/{customer_path(key.customer)}", key.customer)
            if key.customer
            else "trusted"
            if key.trusted
            else "—"
        )
        rows.append(
            [
                esc(key.id),
                esc(key.name or ""),
                who,
                f"<code>{esc(key.prefix)}…</code>",
                esc(iso_utc(key.created_ms)),
                esc(iso_utc(key.last_used_ms)) if key.last_used_ms else "never",
                actions,
            ]
        )
    issue = (
        f'<form method="post" action="/ui/keys" class="inline">{csrf}'
        '<label>Customer <input name="customer" required maxlength="128"></label>'
        '<label>Name <input name="name" maxlength="128"></label>'
        '<button type="submit">Issue a key</button></form>'
    )
    flt = (
        '<form method="get" action="/ui/keys" class="filters"><label>Customer '
        f'<input name="customer" value="{esc(customer or "")}"></label>'
        '<button type="submit">Filter</button></form>'
    )
    body = (
        notice
        + "<section><h2>Issue a key</h2>"
        + issue
        + "</section>"
        + flt
        + table(
            ["Key", "Name", "Customer", "Starts with", "Created (UTC)", "Last used (UTC)", ""],
            rows,
            cls="keys",
            empty="No issued key (keys in the config file are not listed here).",
        )
    )
    return ctx.page("Keys", body, current="/ui/keys")


async def key_issue(ctx: Ctx) -> web.StreamResponse:
    form = await ctx.request.post()
    try:
        body = KeyCreate(
            customer=str(form.get("customer") or "").strip() or None,
            name=str(form.get("name") or "").strip() or None,
        )
    except ValidationError as exc:
        raise PageError(400, exc.errors(include_url=False)[0]["msg"]) from None
    created = await access_service.create_key(ctx.state.store, body)
    await changed(ctx.request.app)
    notice = _secret_box(
        f"Key {created['id']} issued for {created['customer']}",
        created["key"],
        "Give this key to the customer: it works at once, on every instance.",
    )
    return await keys_page(ctx, notice)


async def key_confirm(ctx: Ctx) -> web.StreamResponse:
    """GET /ui/keys/{id}/revoke or /rotate: say what will happen, ask to confirm."""
    key_id = ctx.request.match_info["key_id"]
    action = ctx.request.match_info["action"]
    try:
        key = await access_service.get_key(ctx.state.store, key_id)
    except NotFoundError:
        raise PageError(404, f"No key {key_id}.") from None
    if action == "revoke":
        what = "Every request with this key is refused from now on, on every instance."
        button = '<button type="submit" class="danger">Revoke the key</button>'
    else:
        what = (
            "A new secret is made; the old one keeps working for the grace period, so "
            "clients can switch without a failed request."
        )
        button = (
            '<label>Grace period <input type="number" name="grace_s" value="3600" min="0">'
            " seconds</label> "
            '<button type="submit">Rotate the key</button>'
        )
    body = (
        f"<p>Key <code>{esc(key['id'])}</code> ({esc(key.get('name') or 'no name')}) of "
        f"{esc(key.get('customer') or 'no customer')}, starting "
        f"<code>{esc(key['prefix'])}…</code>.</p><p>{esc(what)}</p>"
        f'<form method="post" action="/ui/keys/{esc(key_id)}/{action}">'
        f"{csrf_field(ctx.csrf or '')}{button} "
        f'<a href="/ui/keys">Cancel</a></form>'
    )
    return ctx.page(f"{action.title()} key {key_id}?", body, current="/ui/keys")


async def key_revoke(ctx: Ctx) -> web.StreamResponse:
    key_id = ctx.request.match_info["key_id"]
    try:
        await access_service.revoke_key(ctx.state.store, key_id)
    except NotFoundError:
        raise PageError(404, f"No key {key_id}.") from None
    await changed(ctx.request.app)
    return redirect(query("/ui/keys", {"revoked": key_id}))


async def key_rotate(ctx: Ctx) -> web.StreamResponse:
    key_id = ctx.request.match_info["key_id"]
    form = await ctx.request.post()
    try:
        body = KeyRotate(grace_s=int(str(form.get("grace_s") or "3600")))
    except (ValueError, ValidationError):
        raise PageError(400, "The grace period is a number of seconds.") from None
    try:
        rotated = await access_service.rotate_key(ctx.state.store, key_id, body)
    except NotFoundError:
        raise PageError(404, f"No key {key_id}.") from None
    await changed(ctx.request.app)
    notice = _secret_box(
        f"New secret for {key_id}",
        rotated["key"],
        f"The old secret works until {rotated['old_key_valid_until']}.",
    )
    return await keys_page(ctx, notice)


_PRICE_COLUMNS = ("input", "cached_input", "cache_write_5m", "output")
_PRICE_HEADERS = ["Routes", "Provider", "Model", "Input", "Cached input", "Cache write",
                  "Output", "Price from"]  # fmt: skip


async def prices_page(ctx: Ctx) -> web.StreamResponse:
    rows = []
    for row in data.price_rows(ctx.state.snapshot, now_ms()):
        rates = row.usd_per_mtok
        cells = (
            [esc(rates[d]) for d in _PRICE_COLUMNS]
            if rates is not None
            else ['<span class="unpriced">no price</span>', "", "", ""]
        )
        rows.append(
            [esc(", ".join(row.routes)), esc(row.provider), esc(row.model), *cells, esc(row.source)]
        )
    today = data.today_utc()
    recent = await ctx.state.store.global_rows(
        from_day=today.replace(day=1) if today.day > 1 else today, to_day=today
    )
    _, unpriced = data.day_series(recent, "model")
    body = (
        "<section><h2>Route targets</h2>"
        + table(
            _PRICE_HEADERS,
            rows,
            numeric=(3, 4, 5, 6),
            cls="prices",
        )
        + '<p class="hint">USD per 1M tokens, the standard price in force now (every '
        "dimension, tier, service tier and date: <code>costproxy prices show</code>).</p>"
        "</section>"
        + "<section><h2>Unpriced models seen this month</h2>"
        + table(
            ["Provider", "Model", "Requests"],
            [[esc(p), esc(m), count(n)] for p, m, n in unpriced],
            numeric=(2,),
            cls="unpriced-models",
            empty="None: every request this month had a price.",
        )
        + "</section>"
    )
    return ctx.page("Prices", body, current="/ui/prices")


async def export_page(ctx: Ctx) -> web.StreamResponse:
    customer = ctx.request.query.get("customer") or ""
    fixed = ctx.session is not None and not ctx.session.is_admin
    if fixed:
        customer = ctx.session.customer or ""  # type: ignore[union-attr]
    today = data.today_utc()
    customer_field = (
        f'<input type="hidden" name="customer" value="{esc(customer)}">'
        if fixed
        else f'<label>Customer <input name="customer" value="{esc(customer)}" '
        'placeholder="all"></label>'
    )
    formats = "".join(f'<option value="{esc(f)}">{esc(f)}</option>' for f in FORMATS)
    body = (
        '<form method="get" action="/ui/export/download" class="export">'
        f'<label>From <input type="date" name="from" value="{today.replace(day=1)}"></label>'
        f'<label>To <input type="date" name="to" value="{today}"></label>'
        f"{customer_field}"
        f'<label>Format <select name="format">{formats}</select></label>'
        '<button type="submit">Download</button></form>'
        '<p class="hint">One line per request, streamed from the store: the same file as '
        "<code>GET /admin/v1/usage</code> and <code>costproxy export</code>.</p>"
    )
    return ctx.page("Export", body, current="/ui/export")


async def export_download(ctx: Ctx) -> web.StreamResponse:
    params = dict(ctx.request.query)
    if ctx.session is not None and not ctx.session.is_admin:
        params["customer"] = ctx.session.customer or ""
    try:
        export = ExportQuery.parse(params)
    except SpendQueryError as exc:
        raise PageError(400, str(exc)) from None
    await ctx.state.recorder.drain()
    records = ctx.state.store.iter_usage(
        customer=export.customer, from_ms=export.from_ms, to_ms=export.to_ms
    )
    response = web.StreamResponse(
        headers={
            "Content-Type": FORMATS[export.format],
            "Content-Disposition": f'attachment; filename="{export.filename}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        }
    )
    security_headers(response)
    response.enable_chunked_encoding()
    await response.prepare(ctx.request)
    async for chunk in export_chunks(records, export.format):
        await response.write(chunk)
    await response.write_eof()
    return response


async def share_create(ctx: Ctx) -> web.StreamResponse:
    customer = ctx.request.match_info["customer"]
    form = await ctx.request.post()
    try:
        days = int(str(form.get("days") or "30"))
        _, secret = await create_share(ctx.state.store, customer, days, ctx.now_ms)
    except ValueError as exc:
        raise PageError(400, f"Invalid link: {exc}.") from None
    url = share_url(f"{ctx.request.scheme}://{ctx.request.host}", secret)
    body = (
        _secret_box(
            f"Read-only link for {customer}",
            url,
            f"Anyone with this link sees {customer}'s spend and requests (nothing of other "
            f"customers) for {days} days, until you revoke it.",
        )
        + f"<p>{link(f'/ui/customers/{customer_path(customer)}', 'Back to ' + customer)}</p>"
    )
    return ctx.page(f"Link for {customer}", body)


async def share_revoke(ctx: Ctx) -> web.StreamResponse:
    form = await ctx.request.post()
    if not await ctx.state.store.revoke_share(ctx.request.match_info["share_id"], ctx.now_ms):
        raise PageError(404, "No such link.")
    customer = str(form.get("customer") or "")
    return redirect(f"/ui/customers/{customer_path(customer)}" if customer else "/ui/customers")
