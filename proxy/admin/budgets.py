"""The budget routes of the admin API: GET/PUT/DELETE /admin/v1/budgets[/<scope>]."""

from __future__ import annotations

import orjson
from aiohttp import web

from proxy.admin.errors import error_docs
from proxy.admin.routes import AdminRoute, Doc, Param, add_admin_route_table
from proxy.budgets.guard import BUDGETS
from proxy.budgets.service import (
    BudgetInputError,
    body_rules,
    delete_scope,
    list_view,
    normalize_scope,
    put_scope,
    scope_view,
)
from proxy.errors import BadRequestError

__all__ = ["add_budget_routes"]


def _json(data: object) -> web.Response:
    return web.Response(body=orjson.dumps(data), content_type="application/json")


def _scope(request: web.Request) -> str:
    try:
        return normalize_scope(request.match_info["scope"])
    except BudgetInputError as exc:
        raise BadRequestError(str(exc), code="invalid_budget_scope") from None


def add_budget_routes(app: web.Application, require_admin) -> None:
    async def list_budgets(request: web.Request) -> web.Response:
        require_admin(request)
        return _json(list_view(request.app[BUDGETS].book))

    async def get_budget(request: web.Request) -> web.Response:
        require_admin(request)
        guard = request.app[BUDGETS]
        return _json(await scope_view(guard.store, guard.book, _scope(request)))

    async def put_budget(request: web.Request) -> web.Response:
        require_admin(request)
        scope = _scope(request)
        try:
            rules = body_rules(orjson.loads(await request.read()))
        except orjson.JSONDecodeError as exc:
            raise BadRequestError(f"the body is not JSON: {exc}", code="invalid_json") from None
        except BudgetInputError as exc:
            raise BadRequestError(str(exc), code="invalid_budget") from None
        guard = request.app[BUDGETS]
        await put_scope(guard.store, scope, rules)
        await guard.refresh()  # this instance applies it at once; the others within refresh_s
        return _json(await scope_view(guard.store, guard.book, scope))

    async def delete_budget(request: web.Request) -> web.Response:
        require_admin(request)
        scope = _scope(request)
        guard = request.app[BUDGETS]
        deleted = await delete_scope(guard.store, scope)
        await guard.refresh()
        return _json({"deleted": deleted, **await scope_view(guard.store, guard.book, scope)})

    scope = (
        Param("scope", "path", "e.g. customer/acme, key/prod, tag/feature=story.", required=True),
    )
    one = "/admin/v1/budgets/{scope:.+}"
    add_admin_route_table(
        app,
        [
            AdminRoute(
                "GET",
                "/admin/v1/budgets",
                list_budgets,
                "Every budget, configured and set at run time",
                {200: Doc("The budgets"), **error_docs()},
                tag="budgets",
            ),
            AdminRoute(
                "GET",
                one,
                get_budget,
                "The budgets of one scope, with spend and reset",
                {200: Doc("The scope's budgets"), **error_docs(400, 404)},
                params=scope,
                tag="budgets",
            ),
            AdminRoute(
                "PUT",
                one,
                put_budget,
                "Set a scope's run-time budgets (they win over the config)",
                {200: Doc("The scope's budgets"), **error_docs(400)},
                params=scope,
                tag="budgets",
            ),
            AdminRoute(
                "DELETE",
                one,
                delete_budget,
                "Remove a scope's run-time budgets",
                {200: Doc("What remains"), **error_docs(400, 404)},
                params=scope,
                tag="budgets",
            ),
        ],
    )
