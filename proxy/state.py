"""What the running proxy holds: built once from the config, kept on the aiohttp app."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from proxy.auth import KeyIndex
from proxy.config import Config
from proxy.metrics import ProxyMetrics
from proxy.pricing import PriceTable
from proxy.providers import Provider, build_provider
from proxy.recorder import UsageRecorder
from proxy.request_log import RequestLog
from proxy.routing import Route, build_routes
from proxy.store.base import Store
from proxy.store.metered import MeteredStore

__all__ = ["STATE", "ProxyState", "build_state"]


@dataclass(slots=True)
class ProxyState:
    config: Config
    keys: KeyIndex
    providers: dict[str, Provider]
    routes: dict[str, Route]
    prices: PriceTable
    store: Store
    recorder: UsageRecorder
    metrics: ProxyMetrics
    request_log: RequestLog


STATE = web.AppKey("costproxy_state", ProxyState)


def build_state(config: Config, store: Store) -> ProxyState:
    providers = {name: build_provider(name, cfg) for name, cfg in config.providers.items()}
    prices = PriceTable.build(config.prices)
    routes = build_routes(config.models, providers, prices)
    metrics = ProxyMetrics(
        config.metrics,
        providers=providers,
        targets={(t.model, t.provider.name) for route in routes.values() for t in route.targets},
    )
    metered = MeteredStore(store, metrics)
    return ProxyState(
        config=config,
        keys=KeyIndex(config.keys),
        providers=providers,
        routes=routes,
        prices=prices,
        store=metered,
        recorder=UsageRecorder(metered),
        metrics=metrics,
        request_log=RequestLog(config.request_log.enabled),
    )
