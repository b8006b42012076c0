"""Admin API: spend (totals, grouped, what-if) and the usage record of one request."""

from __future__ import annotations

from aiohttp import web

from proxy.accounting.record_view import record_json
from proxy.accounting.reports import query_spend
from proxy.accounting.spend import SpendQuery, SpendQueryError
from proxy.admin.errors import error_docs
from proxy.admin.routes import AdminRoute, Doc, Param, json_response
from proxy.errors import BadRequestError, NotFoundError
from proxy.state import ProxyState

__all__ = ["spend_routes"]


async def get_spend(request: web.Request, state: ProxyState) -> web.Response:
    try:
        query = SpendQuery.parse(request.query)
    except SpendQueryError as exc:
        raise BadRequestError(str(exc), code="invalid_query") from None
    await state.recorder.flush()  # read this instance's own writes
    return json_response(await query_spend(state.store, query))


async def get_usage_record(request: web.Request, state: ProxyState) -> web.Response:
    request_id = request.match_info["request_id"]
    await state.recorder.flush()
    record = await state.store.get_usage(request_id)
    if record is None:
        raise NotFoundError(f"No usage record for request {request_id!r}.", code="usage_not_found")
    return json_response(record_json(record))


def spend_routes() -> list[AdminRoute]:
    return [
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
                Param("what_if", "query", "1: add what-if costs and savings."),
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
    ]
