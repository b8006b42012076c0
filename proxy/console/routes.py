"""The console's routes under /ui/, and its static files (shipped in the package)."""

from __future__ import annotations

from importlib.resources import files

from aiohttp import web

from proxy.console import pages_admin as admin
from proxy.console import pages_auth as auth
from proxy.console.core import (
    SIGNERS,
    Access,
    Handler,
    console_endpoint,
    redirect,
    security_headers,
)
from proxy.console.pages_customer import customer_page
from proxy.console.pages_requests import request_page, requests_page
from proxy.console.pages_spend import customers_page, overview_page

__all__ = ["ROUTES", "add_console"]

# (method, path, handler, who may use it): "any" is the operator or a customer's link.
ROUTES: tuple[tuple[str, str, Handler, Access], ...] = (
    ("GET", "/ui/", overview_page, "admin"),
    ("GET", "/ui/login", auth.login_form, "public"),
    ("POST", "/ui/login", auth.login_submit, "public"),
    ("POST", "/ui/logout", auth.logout, "any"),
    ("GET", "/ui/share/{secret}", auth.open_share, "public"),
    ("GET", "/ui/customers", customers_page, "admin"),
    ("GET", "/ui/customers/{customer}", customer_page, "any"),
    ("POST", "/ui/customers/{customer}/shares", admin.share_create, "admin"),
    ("POST", "/ui/shares/{share_id}/revoke", admin.share_revoke, "admin"),
    ("GET", "/ui/requests", requests_page, "any"),
    ("GET", "/ui/requests/{request_id}", request_page, "any"),
    ("GET", "/ui/budgets", admin.budgets_page, "admin"),
    ("GET", "/ui/keys", admin.keys_page, "admin"),
    ("POST", "/ui/keys", admin.key_issue, "admin"),
    ("GET", "/ui/keys/{key_id}/{action:revoke|rotate}", admin.key_confirm, "admin"),
    ("POST", "/ui/keys/{key_id}/revoke", admin.key_revoke, "admin"),
    ("POST", "/ui/keys/{key_id}/rotate", admin.key_rotate, "admin"),
    ("GET", "/ui/prices", admin.prices_page, "admin"),
    ("GET", "/ui/export", admin.export_page, "any"),
    ("GET", "/ui/export/download", admin.export_download, "any"),
)

_STATIC_TYPES = {
    "console.css": "text/css",
    "console.js": "text/javascript",
    "favicon.svg": "image/svg+xml",
}


def _static() -> dict[str, bytes]:
    folder = files("proxy.console").joinpath("static")
    return {name: folder.joinpath(name).read_bytes() for name in _STATIC_TYPES}


def add_console(app: web.Application) -> None:
    """Serve the console at /ui/ (on the admin listener when admin.port is set)."""
    static = _static()  # read once at start: a few KB
    app[SIGNERS] = {}

    async def static_file(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in static:
            raise web.HTTPNotFound()
        response = web.Response(body=static[name], content_type=_STATIC_TYPES[name])
        security_headers(response, cache=True)
        return response

    async def to_console(request: web.Request) -> web.Response:
        return redirect("/ui/")

    app.router.add_get("/ui", to_console)
    app.router.add_get("/ui/static/{name}", static_file)
    for method, path, handler, access in ROUTES:
        app.router.add_route(method, path, console_endpoint(handler, access))
