"""What the running proxy holds, kept on the aiohttp app.

Everything derived from the config is one immutable `Snapshot`, swapped whole on reload;
a request pins the snapshot it started with (see `runtime.Runtime`). The store, the
recorder and what was learnt about targets (`HealthBook`) outlive snapshots.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import orjson
from aiohttp import web

from proxy.access.auth import KeyIndex
from proxy.access.auth_failures import AuthFailures
from proxy.accounting.billing import Billing
from proxy.accounting.journal import Journal
from proxy.accounting.price_book import PriceBook
from proxy.accounting.pricing import PriceSpec
from proxy.accounting.recorder import RecorderPolicy, UsageRecorder
from proxy.accounting.whatif import resolve_rules
from proxy.config import Config
from proxy.errors import ConfigError
from proxy.observability.metrics import ProxyMetrics
from proxy.observability.request_log import RequestLog
from proxy.providers import Provider, build_provider
from proxy.providers.transport import AiohttpTransport, TransportFactory
from proxy.routing.routes import Route, build_routes
from proxy.routing.target_health import HealthBook
from proxy.runtime import Runtime
from proxy.store.base import Store
from proxy.store.guard import GuardedStore
from proxy.store.metered import MeteredStore

__all__ = ["STATE", "ProxyState", "Snapshot", "build_snapshot", "build_state"]


@dataclass(frozen=True, slots=True, eq=False)
class Snapshot:
    config: Config
    keys: KeyIndex
    providers: Mapping[str, Provider]
    routes: Mapping[str, Route]
    prices: PriceBook
    billing: Billing
    models_body: bytes  # GET /v1/models: the route names
    generation: int = 1  # 1 at start, +1 per successful reload
    loaded_at: float = field(default_factory=time.time)
    # How providers built for this config reach their upstream (tests pass a mock).
    make_transport: TransportFactory = AiohttpTransport


def _models_body(config: Config) -> bytes:
    created = int(time.time())
    return orjson.dumps(
        {
            "object": "list",
            "data": [
                {"id": name, "object": "model", "created": created, "owned_by": "costproxy"}
                for name in config.models
            ],
        }
    )


def build_snapshot(
    config: Config,
    *,
    previous: Snapshot | None = None,
    source: str = "<config>",
    make_transport: TransportFactory | None = None,
) -> Snapshot:
    """Everything derived from `config`, checked completely (price keys of what-if rules,
    prices of cheapest routes). A provider whose config is unchanged from `previous` is
    taken over with its connection pool; new ones are built but not started. No I/O.
    Raises ConfigError naming the problem."""
    generation = 1 if previous is None else previous.generation + 1
    if make_transport is None:
        make_transport = AiohttpTransport if previous is None else previous.make_transport
    providers: dict[str, Provider] = {}
    for name, provider_config in config.providers.items():
        kept = previous.providers.get(name) if previous is not None else None
        if kept is not None and kept.config == provider_config:
            providers[name] = kept
        else:
            providers[name] = build_provider(name, provider_config, make_transport)
            providers[name].since_generation = generation
    try:
        prices = PriceBook(config.prices)
        what_if = resolve_rules(config.what_if, _alternative_prices(prices, providers))
        routes = build_routes(config.models, providers, prices.lookup, what_if, config.streams)
    except ValueError as exc:
        raise ConfigError(f"{source}: invalid config: {exc}") from None
    return Snapshot(
        config=config,
        keys=KeyIndex(config.keys),
        providers=providers,
        routes=routes,
        prices=prices,
        billing=Billing.from_config(config),
        models_body=_models_body(config),
        generation=generation,
        make_transport=make_transport,
    )


def _alternative_prices(
    prices: PriceBook, providers: Mapping[str, Provider]
) -> Callable[[str, str], PriceSpec | None]:
    """What-if alternatives are named "namespace/model": a configured provider billed
    under that namespace lends its base_url and kind to find the catalogue provider."""
    by_namespace = {p.price_namespace: p for p in providers.values()}

    def price_of(namespace: str, model: str) -> PriceSpec | None:
        provider = by_namespace.get(namespace)
        if provider is None:
            return prices.lookup(namespace, model)
        return prices.lookup(namespace, model, provider.config.base_url, provider.kind)

    return price_of


@dataclass(slots=True)
class ProxyState:
    runtime: Runtime[Snapshot]
    health: HealthBook
    store: Store
    recorder: UsageRecorder
    # Set up from the config at start: a reload changes neither (counters must not reset).
    metrics: ProxyMetrics
    request_log: RequestLog
    # Weighted draws and backoff jitter. One generator per app (not the random module's
    # global one), so a test may seed it.
    rng: random.Random = field(default_factory=random.Random)
    # Failed authentications per client address (every listener's: client, admin, metrics).
    auth_failures: AuthFailures = field(default_factory=AuthFailures)

    # The current snapshot's parts, for code that is not pinned to one request.
    @property
    def snapshot(self) -> Snapshot:
        return self.runtime.current

    @property
    def config(self) -> Config:
        return self.runtime.current.config

    @property
    def keys(self) -> KeyIndex:
        return self.runtime.current.keys

    @property
    def routes(self) -> Mapping[str, Route]:
        return self.runtime.current.routes

    @property
    def providers(self) -> Mapping[str, Provider]:
        return self.runtime.current.providers

    @property
    def prices(self) -> PriceBook:
        return self.runtime.current.prices


STATE = web.AppKey("costproxy_state", ProxyState)


def build_state(
    config: Config,
    store: Store,
    *,
    source: str = "<config>",
    make_transport: TransportFactory | None = None,
) -> ProxyState:
    snapshot = build_snapshot(config, source=source, make_transport=make_transport)
    health = HealthBook(config.breaker)
    metrics = ProxyMetrics(
        config.metrics,
        providers=snapshot.providers,
        targets={(t.model, t.provider.name) for r in snapshot.routes.values() for t in r.targets},
        health=health,
    )
    sc = config.store
    # Everything on the request path and in the admin API goes through the guard (per-call
    # deadlines, "down" errors classified), timed and counted by the metered wrapper.
    metered = MeteredStore(GuardedStore(store, timeout=sc.call_timeout_s), metrics)
    policy = RecorderPolicy(
        fail_closed=sc.on_error == "fail_closed",
        reconnect_min_s=sc.reconnect_min_s,
        reconnect_max_s=sc.reconnect_max_s,
        health_interval_s=sc.health_interval_s,
    )
    journal = Journal(sc.journal_dir, max_bytes=sc.journal_max_bytes)
    return ProxyState(
        runtime=Runtime(snapshot, providers_of=lambda s: s.providers.values()),
        health=health,
        store=metered,
        recorder=UsageRecorder(metered, journal, policy),
        metrics=metrics,
        request_log=RequestLog(config.request_log.enabled),
    )
