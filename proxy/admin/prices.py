"""Admin API: the prices of the route targets, and of any model at a configured provider."""

from __future__ import annotations

import time
from collections.abc import Mapping

from aiohttp import web

from proxy.accounting.price_book import PriceBook
from proxy.accounting.price_view import catalogue_version, price_entry
from proxy.admin.errors import error_docs
from proxy.admin.routes import AdminRoute, Doc, Param, json_response
from proxy.errors import NotFoundError
from proxy.providers import Provider
from proxy.routing.routes import Route
from proxy.state import ProxyState, Snapshot
from proxy.utc import iso_utc

__all__ = ["model_price", "price_routes", "prices_report"]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _entry(provider: Provider, model: str, routes: list[str], book: PriceBook, now_ms: int) -> dict:
    answer = book.resolve(
        provider.price_namespace,
        model,
        provider.config.base_url,
        provider.kind,
        remember=bool(routes),  # a one-off question does not grow the snapshot's book
    )
    return {
        "provider": provider.name,
        "model": model,
        "price_namespace": provider.price_namespace,
        "routes": routes,
        **price_entry(answer, now_ms),
    }


def prices_report(
    routes: Mapping[str, Route], providers: Mapping[str, Provider], book: PriceBook, now_ms: int
) -> dict:
    """Every route target once, with the routes that use it, in route order."""
    targets: dict[tuple[str, str], list[str]] = {}
    for route in routes.values():
        for target in route.targets:
            targets.setdefault(target.key, []).append(route.name)
    entries = [
        _entry(providers[name], model, names, book, now_ms)
        for (name, model), names in targets.items()
    ]
    return {
        "at": iso_utc(now_ms),
        "catalogue": {"package": "genai-prices", "version": catalogue_version()},
        "unpriced": sum(not e["priced"] for e in entries),
        "targets": entries,
    }


def model_price(snapshot: Snapshot, provider_name: str, model: str, now_ms: int) -> dict:
    """The price of `model` at a configured provider, whether a route uses it or not.
    Raises NotFoundError for a provider the config does not define."""
    provider = snapshot.providers.get(provider_name)
    if provider is None:
        known = ", ".join(sorted(snapshot.providers))
        raise NotFoundError(
            f"No provider {provider_name!r} in the config (known: {known}).",
            code="provider_not_found",
        )
    routes = [
        route.name
        for route in snapshot.routes.values()
        if any(t.key == (provider_name, model) for t in route.targets)
    ]
    return _entry(provider, model, routes, snapshot.prices, now_ms)


async def get_prices(request: web.Request, state: ProxyState) -> web.Response:
    snapshot = state.snapshot
    report = prices_report(snapshot.routes, snapshot.providers, snapshot.prices, _now_ms())
    return json_response(report)


async def get_model_price(request: web.Request, state: ProxyState) -> web.Response:
    info = request.match_info
    return json_response(model_price(state.snapshot, info["provider"], info["model"], _now_ms()))


def price_routes() -> list[AdminRoute]:
    return [
        AdminRoute(
            "GET",
            "/admin/v1/prices",
            get_prices,
            "Every route target with the price in force now, its source and its dates",
            {200: Doc("The prices report"), **error_docs()},
            tag="prices",
        ),
        AdminRoute(
            "GET",
            "/admin/v1/prices/{provider}/{model:.+}",
            get_model_price,
            "The price of one model at a configured provider (config or catalogue)",
            {200: Doc("The price, or why there is none"), **error_docs(404)},
            params=(
                Param("provider", "path", "A provider's name in the config.", required=True),
                Param("model", "path", "The upstream model name (may contain '/').", required=True),
            ),
            tag="prices",
        ),
    ]
