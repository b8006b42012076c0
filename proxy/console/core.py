"""What every console page goes through: who is asking, may they, the CSRF check on
changes, the security headers, HTML error pages, and the server time in a header."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote, urlsplit

from aiohttp import web

from proxy.console.html import esc, layout, query
from proxy.console.session import COOKIE, Session, SessionSigner
from proxy.errors import ProxyError
from proxy.state import STATE, ProxyState

__all__ = [
    "SIGNERS",
    "Access",
    "Ctx",
    "Handler",
    "PageError",
    "admin_token_matches",
    "console_endpoint",
    "customer_path",
    "now_ms",
    "redirect",
    "security_headers",
]

Access = Literal["public", "any", "admin"]
# No inline script or style anywhere; images only from here (and data: for SVG swatches).
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# Set up empty by add_console (the app is frozen once it runs); filled on first use.
SIGNERS = web.AppKey("costproxy_console_signers", dict)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class PageError(Exception):
    """A console answer other than 200: shown as a page, never as a traceback."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(slots=True)
class Ctx:
    request: web.Request
    state: ProxyState
    session: Session | None
    signer: SessionSigner
    now_ms: int

    @property
    def csrf(self) -> str | None:
        return None if self.session is None else self.signer.csrf(self.session)

    def nav(self) -> list[tuple[str, str]]:
        if self.session is None:
            return []
        if not self.session.is_admin:
            customer = self.session.customer or ""
            return [
                (f"/ui/customers/{customer_path(customer)}", customer),
                (query("/ui/requests", {"customer": customer}), "Requests"),
                (query("/ui/export", {"customer": customer}), "Export"),
            ]
        return [
            ("/ui/", "Overview"),
            ("/ui/customers", "Customers"),
            ("/ui/requests", "Requests"),
            ("/ui/budgets", "Budgets"),
            ("/ui/keys", "Keys"),
            ("/ui/prices", "Prices"),
            ("/ui/export", "Export"),
        ]

    def page(self, title: str, body: str, *, current: str = "", status: int = 200) -> web.Response:
        if self.session is None:
            who = ""
        elif self.session.is_admin:
            who = "operator"
        else:
            who = f"read-only: {self.session.customer}"
        html = layout(title, body, nav=self.nav(), current=current, csrf=self.csrf, who=who)
        return web.Response(text=html, content_type="text/html", status=status)

    def require_customer(self, customer: str) -> None:
        """A shared link sees its own customer only; anything else does not exist for it."""
        if self.session is None or not self.session.may_see(customer):
            raise PageError(404, "No such page.")


def customer_path(text: str) -> str:
    return quote(text, safe="")


Handler = Callable[[Ctx], Awaitable[web.StreamResponse]]


def redirect(location: str) -> web.Response:
    """303 See Other: after a form, the browser GETs the next page."""
    return web.Response(status=303, headers={"Location": location})


def security_headers(response: web.StreamResponse, *, cache: bool = False) -> None:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Cache-Control"] = "private, max-age=3600" if cache else "no-store"


def _signer(app: web.Application, token: str) -> SessionSigner:
    # One signer per admin token: a reload that changes the token ends every session.
    signers = app[SIGNERS]
    signer = signers.get(token)
    if signer is None:
        signers.clear()
        signer = signers[token] = SessionSigner(token)
    return signer


async def _session(
    state: ProxyState, signer: SessionSigner, request: web.Request
) -> Session | None:
    session = signer.load(request.cookies.get(COOKIE), now_ms())
    if session is None or session.is_admin:
        return session
    # A shared link: still there, still live (revoking it ends its sessions at once).
    share = await state.store.find_share(session.share_sha256 or "")
    if share is None or not share.live(now_ms()) or share.customer != session.customer:
        return None
    return session


def _same_origin(request: web.Request) -> bool:
    # Browsers send Origin on every POST (same-origin referrer policy: the real origin);
    # a request without one is not a browser form, so no other site's page sent it.
    origin = request.headers.get("Origin")
    return origin is None or urlsplit(origin).netloc == request.host


def console_endpoint(
    handler: Handler, access: Access
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def endpoint(request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        state = request.app[STATE]
        token = state.config.admin.token
        if token is None:
            response: web.StreamResponse = _bare_page(
                503, "The console is off", "Set <code>admin.token</code> in the config to use it."
            )
        else:
            signer = _signer(request.app, token.get_secret_value())
            try:
                session = await _session(state, signer, request)
                ctx = Ctx(request, state, session, signer, now_ms())
                response = await _guarded(ctx, handler, access)
            except PageError as exc:
                response = _error_page(exc.status, exc.message)
            except ProxyError as exc:  # e.g. the store is down: say so, as a page
                response = _error_page(exc.status, exc.message)
                response.headers.update(exc.headers)  # Retry-After, where it says one
        if response.prepared:  # a streamed download set its own headers
            return response
        security_headers(response)
        response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
        return response

    endpoint.__name__ = getattr(handler, "__name__", "console")
    return endpoint


async def _guarded(ctx: Ctx, handler: Handler, access: Access) -> web.StreamResponse:
    request = ctx.request
    if access != "public":
        if ctx.session is None:
            if request.method == "GET":
                return redirect(query("/ui/login", {"next": request.path_qs}))
            raise PageError(403, "Your session has ended: log in again.")
        if access == "admin" and not ctx.session.is_admin:
            raise PageError(403, "A shared link shows one customer's pages only.")
    if request.method == "POST":
        if not _same_origin(request):
            raise PageError(403, "This form was sent from another site.")
        if access != "public":
            form = await request.post()
            assert ctx.session is not None
            if not ctx.signer.csrf_ok(ctx.session, str(form.get("csrf") or "")):
                raise PageError(403, "The form has expired: reload the page and try again.")
    return await handler(ctx)


def admin_token_matches(ctx: Ctx, given: str) -> bool:
    token = ctx.state.config.admin.token
    if token is None:
        return False
    # Digests first: the comparison takes the same time whatever the length given.
    return hmac.compare_digest(
        hashlib.sha256(given.encode()).digest(),
        hashlib.sha256(token.get_secret_value().encode()).digest(),
    )


def _bare_page(status: int, title: str, body_html: str) -> web.Response:
    html = layout(title, f"<p>{body_html}</p>", nav=[], current="", csrf=None, who="")
    return web.Response(text=html, content_type="text/html", status=status)


def _error_page(status: int, message: str) -> web.Response:
    titles = {400: "Bad request", 403: "Not allowed", 404: "Not found", 503: "Unavailable"}
    body = f'{esc(message)} <a href="/ui/">Back to the console</a>'
    return _bare_page(status, titles.get(status, "Error"), body)
