"""The budget routes of the admin API: GET/PUT/DELETE /admin/v1/budgets[/<scope>]."""

from __future__ import annotations

import orjson
from aiohttp import web

from proxy.admin.errors import error_docs
from proxy.admin.routes import AdminRoute, Doc, Param, json_response, read_plain_body
from proxy.budgets.guard import BUDGETS
from proxy.budgets.service import (
    BudgetInputError,
    body_rules,
    delete_scope,
    list_with_states,
    normalize_scope,
    put_scope,
    scope_view,
)
from proxy.errors import BadRequestError
from proxy.state import ProxyState

__all__ = ["budget_routes"]


def _scope(request: web.Request) -> str:
    try:
        return normalize_scope(request.match_info["scope"])
    except BudgetInputError as exc:
        raise BadRequestError(str(exc), code="invalid_budget_scope") from None


async def list_budgets(request: web.Request, state: ProxyState) -> web.Response:
    guard = request.app[BUDGETS]
    return json_response(await list_with_states(guard.store, guard.book))


async def get_budget(request: web.Request, state: ProxyState) -> web.Response:
    guard = request.app[BUDGETS]
    return json_response(await scope_view(guard.store, guard.book, _scope(request)))


async def put_budget(request: web.Request, state: ProxyState) -> web.Response:
    scope = _scope(request)
    try:
        rules = body_rules(orjson.loads(await read_plain_body(request)))
    except orjson.JSONDecodeError as exc:
        raise BadRequestError(f"the body is not JSON: {exc}", code="invalid_json") from None
    except BudgetInputError as exc:
        raise BadRequestError(str(exc), code="invalid_budget") from None
    guard = request.app[BUDGETS]
    history_days = state.config.store.retention_days
    await put_scope(guard.store, guard.book, scope, rules, history_days=history_days)
    await guard.refresh()  # this instance applies it at once; the others within refresh_s
    return json_response(await scope_view(guard.store, guard.book, scope))


async def delete_budget(request: web.Request, state: ProxyState) -> web.Response:
    scope = _scope(request)
    guard = request.app[BUDGETS]
    deleted = await delete_scope(guard.store, scope)
    await guard.refresh()
    return json_response({"deleted": deleted, **await scope_view(guard.store, guard.book, scope)})


_SCOPE = (
    Param("scope", "path", "e.g. customer/acme, key/prod, tag/feature=story.", required=True),
)
_ONE = "/admin/v1/budgets/{scope:.+}"


def budget_routes() -> list[AdminRoute]:
    return [
        AdminRoute(
            "GET",
            "/admin/v1/budgets",
            list_budgets,
            "Every budget, configured and set at run time, with spend and reset",
            {200: Doc("The budgets"), **error_docs()},
            tag="budgets",
        ),
        AdminRoute(
            "GET",
            _ONE,
            get_budget,
            "The budgets of one scope, with spend and reset",
            {200: Doc("The scope's budgets"), **error_docs(400, 404)},
            params=_SCOPE,
            tag="budgets",
        ),
        AdminRoute(
            "PUT",
            _ONE,
            put_budget,
            "Set a scope's run-time budgets (they win over the config; the period's spend "
            "so far counts)",
            {200: Doc("The scope's budgets"), **error_docs(400)},
            params=_SCOPE,
            tag="budgets",
        ),
        AdminRoute(
            "DELETE",
            _ONE,
            delete_budget,
            "Remove a scope's run-time budgets",
            {200: Doc("What remains"), **error_docs(400, 404)},
            params=_SCOPE,
            tag="budgets",
        ),
    ]
