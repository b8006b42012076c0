"""The admin API: spend, usage records, providers and reload. Every route needs the admin token."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import orjson
from aiohttp import web

from proxy.access.auth import bearer_matches
from proxy.accounting.spend import SpendQuery, SpendQueryError, summarize, summarize_what_if
from proxy.admin.budgets import add_budget_routes
from proxy.admin.errors import error_docs
from proxy.admin.routes import AdminRoute, Doc, Param, add_admin_route_table
from proxy.errors import AuthenticationError, BadRequestError, ConfigError, NotFoundError
from proxy.reload import RELOADER, Reloader
from proxy.routing.breaker import Breaker
from proxy.routing.routes import Target
from proxy.routing.target_health import HealthBook, TargetHealth
from proxy.state import STATE, ProxyState, Snapshot

__all__ = ["add_admin_routes", "json_response", "providers_report", "query_spend", "require_admin"]


def require_admin(request: web.Request) -> ProxyState:
    state = request.app[STATE]
    token = state.config.admin.token
    if token is None:
        raise AuthenticationError(
            "The admin API is disabled: set admin.token in the config.", code="admin_disabled"
        )
    if not bearer_matches(request.headers, token.get_secret_value()):
        raise AuthenticationError("Invalid or missing admin token.", code="invalid_admin_token")
    return state


def json_response(data: object, status: int = 200) -> web.Response:
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
    answer = summarize(query, base, breakdown)
    if query.what_if:
        rows = await state.store.what_if_rows(
            customer=query.customer, from_day=query.from_day, to_day=query.to_day
        )
        answer["what_if"] = summarize_what_if(query, rows)
    return answer


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
    await state.recorder.flush()
    record = await state.store.get_usage(request_id)
    if record is None:
        raise NotFoundError(f"No usage record for request {request_id!r}.", code="usage_not_found")
    return json_response(record.to_dict())


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


def _target_report(target: Target, routes: list[str], health: HealthBook, now: float) -> dict:
    figures = health.peek(target)
    if figures is None:  # no request yet on this pool
        figures = TargetHealth(target.provider, Breaker(1, 1.0))
    breaker = figures.breaker
    return {
        "model": target.model,
        "routes": routes,
        "priced": target.price is not None,
        "breaker": {
            "state": breaker.state(now),
            "consecutive_failures": breaker.consecutive_failures,
            "opens": breaker.opens,
            "probe_in_s": round(breaker.remaining_s(now), 3),
        },
        "latency_ms": None if figures.latency_ms is None else round(figures.latency_ms, 3),
        "requests": figures.requests,
        "failures": figures.failures,
        "last_error": figures.last_error,
    }


def providers_report(snapshot: Snapshot, health: HealthBook, now: float) -> dict:
    """Providers, their targets with breaker state and recent figures, and the routes."""
    targets: dict[str, dict[str, tuple[Target, list[str]]]] = {n: {} for n in snapshot.providers}
    for route in snapshot.routes.values():
        for target in route.targets:
            entry = targets[target.provider.name].setdefault(target.model, (target, []))
            entry[1].append(route.name)
    return {
        "generation": snapshot.generation,
        "loaded_at": _iso(snapshot.loaded_at),
        "providers": [
            {
                "name": name,
                "kind": provider.kind,
                "base_url": provider.config.base_url,
                "price_namespace": provider.price_namespace,
                "pool_since_generation": provider.since_generation,
                "targets": [
                    _target_report(target, routes, health, now)
                    for target, routes in targets[name].values()
                ],
            }
            for name, provider in snapshot.providers.items()
        ],
        "routes": [
            {
                "name": route.name,
                "strategy": route.strategy,
                "targets": [f"{t.provider.name}/{t.model}" for t in route.targets],
                "retries": route.retries,
                "timeout_s": route.timeout_s,
            }
            for route in snapshot.routes.values()
        ],
    }


async def get_providers(request: web.Request) -> web.Response:
    state = require_admin(request)
    report = providers_report(state.snapshot, state.health, asyncio.get_running_loop().time())
    reloader: Reloader | None = request.app.get(RELOADER)
    if reloader is not None:
        report["reload"] = {
            "config_path": str(reloader.path),
            "succeeded": reloader.succeeded,
            "failed": reloader.failed,
            "last_error": reloader.last_error,
            "last_reload_at": _iso(reloader.last_reload_at),
        }
    return json_response(report)


async def post_reload(request: web.Request) -> web.Response:
    require_admin(request)
    reloader: Reloader | None = request.app.get(RELOADER)
    if reloader is None:
        raise BadRequestError(
            "This proxy was not started from a config file, so there is nothing to reload.",
            code="reload_unavailable",
        )
    try:
        changes = await reloader.reload("admin API")
    except ConfigError as exc:
        raise BadRequestError(
            f"Config rejected; the running config stays in force. {exc}", code="invalid_config"
        ) from None
    return json_response({"status": "reloaded", **changes})


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
            AdminRoute(
                "GET",
                "/admin/v1/providers",
                get_providers,
                "Providers, targets, breaker states, latency and error figures",
                {200: Doc("The providers report"), **error_docs()},
                tag="routing",
            ),
            AdminRoute(
                "POST",
                "/admin/v1/reload",
                post_reload,
                "Reload the config file (validated completely first)",
                {200: Doc("What changed"), **error_docs(400)},
                tag="routing",
            ),
        ],
    )
    add_budget_routes(app, require_admin)
