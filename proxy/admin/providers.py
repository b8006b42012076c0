"""Admin API: providers, their targets' breakers and figures; reloading the config."""

from __future__ import annotations

import asyncio

from aiohttp import web

from proxy.admin.errors import error_docs
from proxy.admin.routes import AdminRoute, Doc, json_response
from proxy.errors import BadRequestError, ConfigError
from proxy.reload import RELOADER, Reloader
from proxy.routing.breaker import Breaker
from proxy.routing.routes import Target
from proxy.routing.target_health import HealthBook, TargetHealth
from proxy.state import ProxyState, Snapshot
from proxy.utc import iso_utc

__all__ = ["provider_routes", "providers_report"]


def _iso_s(seconds: float | None) -> str | None:
    return None if seconds is None else iso_utc(round(seconds * 1000))


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
        "loaded_at": iso_utc(round(snapshot.loaded_at * 1000)),
        "providers": [
            {
                "name": name,
                "kind": provider.kind,
                "base_url": provider.config.base_url,
                "price_namespace": provider.price_namespace,
                "pool_since_generation": provider.since_generation,
                "connections": {
                    "in_use": provider.share.in_use,
                    "max": provider.share.capacity,
                    "per_customer": provider.share.per_customer,
                },
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


async def get_providers(request: web.Request, state: ProxyState) -> web.Response:
    report = providers_report(state.snapshot, state.health, asyncio.get_running_loop().time())
    reloader: Reloader | None = request.app.get(RELOADER)
    if reloader is not None:
        report["reload"] = {
            "config_path": str(reloader.path),
            "succeeded": reloader.succeeded,
            "failed": reloader.failed,
            "last_error": reloader.last_error,
            "last_reload_at": _iso_s(reloader.last_reload_at),
        }
    return json_response(report)


async def post_reload(request: web.Request, state: ProxyState) -> web.Response:
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


def provider_routes() -> list[AdminRoute]:
    return [
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
    ]
