"""The budget routes of the admin API: GET/PUT/DELETE /admin/v1/budgets[/<scope>]."""

from __future__ import annotations

import orjson
from aiohttp import web

from proxy.budget_admin import (
    BudgetInputError,
    body_rules,
    delete_scope,
    list_view,
    normalize_scope,
    put_scope,
    scope_view,
)
from proxy.errors import BadRequestError
from proxy.pipeline.budget import BUDGETS

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
        return _json(await scope_view(request.app[BUDGETS], _scope(request)))

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
        await put_scope(guard, scope, rules)
        return _json(await scope_view(guard, scope))

    async def delete_budget(request: web.Request) -> web.Response:
        require_admin(request)
        scope = _scope(request)
        guard = request.app[BUDGETS]
        deleted = await delete_scope(guard, scope)
        return _json({"deleted": deleted, **await scope_view(guard, scope)})

    app.router.add_get("/admin/v1/budgets", list_budgets)
    app.router.add_get("/admin/v1/budgets/{scope:.+}", get_budget)
    app.router.add_put("/admin/v1/budgets/{scope:.+}", put_budget)
    app.router.add_delete("/admin/v1/budgets/{scope:.+}", delete_budget)
