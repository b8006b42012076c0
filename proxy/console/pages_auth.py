"""Logging in with the admin token, logging out, and opening a customer's shared link."""

from __future__ import annotations

from aiohttp import web

from proxy.access.shares import share_sha256
from proxy.access.throttle import count_failure, refuse_blocked
from proxy.console.core import Ctx, PageError, admin_token_matches, customer_path, redirect
from proxy.console.html import esc, layout
from proxy.console.session import COOKIE, Session
from proxy.errors import AuthenticationError

__all__ = ["login_form", "login_submit", "logout", "open_share"]


def _safe_next(target: str | None) -> str:
    """Only a console path: never an open redirect to another site."""
    if target and target.startswith("/ui/") and not target.startswith("//"):
        return target
    return "/ui/"


def _login_html(next_path: str, error: str = "") -> str:
    message = f'<p class="error" role="alert">{esc(error)}</p>' if error else ""
    body = (
        f"{message}"
        '<form method="post" action="/ui/login" class="login">'
        f'<input type="hidden" name="next" value="{esc(next_path)}">'
        '<label>Admin token <input type="password" name="token" autocomplete="current-password" '
        "required autofocus></label>"
        '<button type="submit">Log in</button></form>'
        '<p class="hint">The token is <code>admin.token</code> from the config (the quickstart '
        "writes it to <code>data/admin-token</code>). It is checked once; the console then "
        "keeps a signed session cookie for 12 hours.</p>"
    )
    return layout("Log in", body, nav=[], current="", csrf=None, who="")


async def login_form(ctx: Ctx) -> web.StreamResponse:
    html = _login_html(_safe_next(ctx.request.query.get("next")))
    return web.Response(text=html, content_type="text/html")


def _with_session(ctx: Ctx, response: web.StreamResponse, session: Session) -> None:
    response.set_cookie(
        COOKIE,
        ctx.signer.dump(session),
        max_age=max(1, (session.expires_ms - ctx.now_ms) // 1000),
        path="/ui/",
        httponly=True,
        samesite="Strict",
        secure=ctx.request.secure,
    )


async def login_submit(ctx: Ctx) -> web.StreamResponse:
    # Guessing the admin token here is guessing it on the admin API: the same throttle.
    refuse_blocked(ctx.request, "admin")
    form = await ctx.request.post()
    next_path = _safe_next(str(form.get("next") or ""))
    if not admin_token_matches(ctx, str(form.get("token") or "")):
        error = AuthenticationError("Not the admin token.", code="invalid_admin_token")
        count_failure(ctx.request, "admin", error)
        html = _login_html(next_path, "That is not the admin token.")
        return web.Response(text=html, content_type="text/html", status=401)
    response = redirect(next_path)
    _with_session(ctx, response, ctx.signer.admin(ctx.now_ms))
    return response


async def logout(ctx: Ctx) -> web.StreamResponse:
    response = redirect("/ui/login")
    response.del_cookie(COOKIE, path="/ui/")
    return response


async def open_share(ctx: Ctx) -> web.StreamResponse:
    """A shared link: checked against the store, then swapped for a session cookie and a
    redirect, so the secret leaves the address bar (and never reaches a Referer)."""
    refuse_blocked(ctx.request, "console")
    secret = ctx.request.match_info["secret"]
    share = await ctx.state.store.find_share(share_sha256(secret))
    if share is None or not share.live(ctx.now_ms):
        error = AuthenticationError("Unknown shared link.", code="invalid_share_link")
        count_failure(ctx.request, "console", error)
        raise PageError(404, "This link is unknown, expired or revoked.")
    response = redirect(f"/ui/customers/{customer_path(share.customer)}")
    session = ctx.signer.share(ctx.now_ms, share.customer, share.sha256, share.expires_ms)
    _with_session(ctx, response, session)
    return response
