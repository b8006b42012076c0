"""The admin API: reading spend and usage records. Every route needs the admin token."""

from __future__ import annotations

import hmac

import orjson
from aiohttp import web

from proxy.admin_errors import error_docs
from proxy.admin_routes import AdminRoute, Doc, Param, add_admin_route_table
from proxy.errors import AuthenticationError, BadRequestError, NotFoundError
from proxy.spend import SpendQuery, SpendQueryError, summarize
from proxy.state import STATE, ProxyState

__all__ = ["add_admin_routes", "json_response", "query_spend", "require_admin"]


def require_admin(request: web.Request) -> ProxyState:
    state = request.app[STATE]
    token = state.config.admin.token
    if token is None:
        raise AuthenticationError(
            "The admin API is disabled: set admin.token in the config.", code="admin_disabled"
        )
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        presented.strip().encode(), token.get_secret_value().encode()
    ):
        raise AuthenticationError("Invalid or missing admin token.", code="invalid_admin_token")
    return state


def json_response(data: object, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(data), content_type="application/json")


async def query_spend(state: ProxyState, query: SpendQuery) -> dict:
    await state.recorder.drain()  # read this instance's own writes
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
    state = require_admin(request)
    try:
        query = SpendQuery.parse(request.query)
    except SpendQueryError as exc:
        raise BadRequestError(str(exc), code="invalid_query") from None
    return json_response(await query_spend(state, query))


async def get_usage_record(request: web.Request) -> web.Response:
    state = require_admin(request)
    request_id = request.match_info["request_id"]
    await state.recorder.drain()
    record = await state.store.get_usage(request_id)
    if record is None:
        raise NotFoundError(f"No usage record for request {request_id!r}.", code="usage_not_found")
    return json_response(record.to_dict())


def add_admin_routes(app: web.Application) -> None:
    add_admin_route_table(
        app,
        [
            AdminRoute(
                "GET",
                "/admin/v1/spend",
                get_spend,
                "Spend and token totals, optionally grouped",
                {200: Doc("The spend answer"), **error_docs(400)},
                params=(
                    Param("customer", "query", "Only this customer."),
                    Param("from", "query", "First UTC day.", {"type": "string", "format": "date"}),
                    Param("to", "query", "Last UTC day.", {"type": "string", "format": "date"}),
                    Param("group_by", "query", "Comma list of dimensions."),
                ),
                tag="spend",
            ),
            AdminRoute(
                "GET",
                "/admin/v1/usage/{request_id}",
                get_usage_record,
                "The usage record of one request",
                {200: Doc("The record"), **error_docs(404)},
                params=(Param("request_id", "path", "From x-request-id.", required=True),),
                tag="usage",
            ),
        ],
    )
