"""The admin API: reading spend and usage records. Every route needs the admin token."""

from __future__ import annotations

import orjson
from aiohttp import web

from proxy.auth import bearer_matches
from proxy.errors import AuthenticationError, BadRequestError, NotFoundError
from proxy.spend import SpendQuery, SpendQueryError, summarize
from proxy.state import STATE, ProxyState

__all__ = ["add_admin_routes", "query_spend"]


def _require_admin(request: web.Request) -> ProxyState:
    state = request.app[STATE]
    token = state.config.admin.token
    if token is None:
        raise AuthenticationError(
            "The admin API is disabled: set admin.token in the config.", code="admin_disabled"
        )
    if not bearer_matches(request.headers, token.get_secret_value()):
        raise AuthenticationError("Invalid or missing admin token.", code="invalid_admin_token")
    return state


def _json(data: object, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(data), content_type="application/json")


async def query_spend(state: ProxyState, query: SpendQuery) -> dict:
    await state.recorder.flush()  # read this instance's own writes
    base = await state.store.aggregate_rows(
        customer=query.customer, from_day=query.from_day, to_day=query.to_day, breakdown="base"
    )
    breakdown = None
    if query.breakdown != "base":
        breakdown = await state.store.aggregate_rows(
            customer=query.customer,
            from_day=query.from_day,
            to_day=query.to_day,
            breakdown=query.breakdown,
        )
    return summarize(query, base, breakdown)


async def get_spend(request: web.Request) -> web.Response:
    state = _require_admin(request)
    try:
        query = SpendQuery.parse(request.query)
    except SpendQueryError as exc:
        raise BadRequestError(str(exc), code="invalid_query") from None
    return _json(await query_spend(state, query))


async def get_usage_record(request: web.Request) -> web.Response:
    state = _require_admin(request)
    request_id = request.match_info["request_id"]
    await state.recorder.flush()
    record = await state.store.get_usage(request_id)
    if record is None:
        raise NotFoundError(f"No usage record for request {request_id!r}.", code="usage_not_found")
    return _json(record.to_dict())


def add_admin_routes(app: web.Application) -> None:
    app.router.add_get("/admin/v1/spend", get_spend)
    app.router.add_get("/admin/v1/usage/{request_id}", get_usage_record)
