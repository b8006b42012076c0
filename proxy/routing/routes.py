"""Routes and the order a request tries their targets in, by strategy. Pure.

Every strategy returns all of the route's targets, best first: the first is where the
request goes, the rest are its fallbacks when attempts fail.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from proxy.accounting.pricing import PriceSpec, cost_nusd
from proxy.accounting.records import Usage
from proxy.accounting.whatif import Alternatives, alternatives_for
from proxy.config import OnClientDisconnect, RouteConfig, Strategy, StreamsConfig
from proxy.headers import NO_HEADERS, HeaderAllowlist
from proxy.providers import Provider

__all__ = [
    "EXPLORE_EVERY",
    "Route",
    "RoutingInputs",
    "Target",
    "TargetKey",
    "build_routes",
    "cheapest_order",
    "lowest_latency_order",
    "order_targets",
    "weighted_order",
]

# lowest_latency: one request in this many goes to another target than the fastest, so a
# target that was slow once is measured again and can win back its traffic.
EXPLORE_EVERY = 20

TargetKey = tuple[str, str]  # (provider name, upstream model)
# (namespace, model, base_url, provider kind) -> the price, resolved while routes are built.
PriceLookup = Callable[[str, str, str | None, str | None], PriceSpec | None]


@dataclass(frozen=True, slots=True)
class Target:
    provider: Provider
    model: str  # the upstream model name, as billed
    price: PriceSpec | None  # resolved once at load: no price lookups on the request path
    weight: float = 1.0
    priority: int = 0
    what_if: tuple[tuple[str, PriceSpec], ...] = ()  # (alternative "ns/model", its price)
    # The client headers this target is sent: its provider's and its route's allowlists.
    forward_headers: HeaderAllowlist = NO_HEADERS

    @property
    def key(self) -> TargetKey:
        return (self.provider.name, self.model)


@dataclass(frozen=True, slots=True)
class Route:
    name: str
    targets: tuple[Target, ...]  # priority order: lower priority first, ties in list order
    max_output_tokens: int | None = None
    strategy: Strategy = "fallback"
    retries: int = 2
    timeout_s: float | None = None
    backoff_base_s: float = 0.25
    backoff_max_s: float = 8.0
    on_client_disconnect: OnClientDisconnect = "drain"
    drain_timeout_s: float = 120.0
    api: str = "openai"  # the client API it serves: its targets' ("openai" | "anthropic")


@dataclass(frozen=True, slots=True)
class RoutingInputs:
    """What a strategy may look at besides the route; gathered by the caller."""

    u: float = 0.0  # uniform in [0, 1): weighted's draw
    input_tokens: int = 0  # cheapest: the request's estimated tokens
    output_tokens: int = 0
    when_ms: int = 0  # cheapest: when the request arrived (prices change over time)
    latency_ms: Mapping[TargetKey, float] | None = None  # lowest_latency: moving averages
    seq: int = 1  # lowest_latency: this request's number on the route, from 1


def weighted_order(targets: Sequence[Target], u: float) -> tuple[Target, ...]:
    """One target drawn by weight; the others follow in priority order."""
    total = sum(t.weight for t in targets)
    if total <= 0:
        return tuple(targets)
    point = u * total
    for index, target in enumerate(targets):
        if target.weight > 0 and point < target.weight:
            chosen = index
            break
        point -= target.weight
    else:  # float rounding left u * total at the very end: the last target with weight
        chosen = max(i for i, t in enumerate(targets) if t.weight > 0)
    return (targets[chosen], *targets[:chosen], *targets[chosen + 1 :])


def cheapest_order(
    targets: Sequence[Target], input_tokens: int, output_tokens: int, when_ms: int
) -> tuple[Target, ...]:
    """By the cost of these token counts at each target's standard prices in force at
    `when_ms`; unpriced last, ties in priority order (sorted() is stable)."""
    usage = Usage(input_tokens=input_tokens, output_tokens=output_tokens)

    def cost(target: Target) -> tuple[int, int]:
        if target.price is None:
            return (1, 0)
        return (0, cost_nusd(usage, target.price, when_ms))

    return tuple(sorted(targets, key=cost))


def lowest_latency_order(
    targets: Sequence[Target], latency_ms: Mapping[TargetKey, float], seq: int
) -> tuple[Target, ...]:
    """Unmeasured targets first (so each gets measured), then fastest first. Every
    EXPLORE_EVERY-th request the non-fastest targets take turns going first."""
    unmeasured = [t for t in targets if t.key not in latency_ms]
    if unmeasured:
        return (*unmeasured, *(t for t in targets if t.key in latency_ms))
    ordered = sorted(targets, key=lambda t: latency_ms[t.key])
    if len(ordered) > 1 and seq % EXPLORE_EVERY == 0:
        turn = 1 + (seq // EXPLORE_EVERY - 1) % (len(ordered) - 1)
        ordered.insert(0, ordered.pop(turn))
    return tuple(ordered)


def order_targets(route: Route, inputs: RoutingInputs) -> tuple[Target, ...]:
    if route.strategy == "weighted":
        return weighted_order(route.targets, inputs.u)
    if route.strategy == "cheapest":
        return cheapest_order(
            route.targets, inputs.input_tokens, inputs.output_tokens, inputs.when_ms
        )
    if route.strategy == "lowest_latency":
        return lowest_latency_order(route.targets, inputs.latency_ms or {}, inputs.seq)
    return route.targets


def build_routes(
    models: Mapping[str, RouteConfig],
    providers: Mapping[str, Provider],
    prices: PriceLookup,
    what_if: Alternatives | None = None,
    streams: StreamsConfig | None = None,
) -> dict[str, Route]:
    """Routes with prices, what-if alternatives and stream settings resolved. Raises
    ValueError naming the route on a problem."""
    what_if = what_if or {}
    streams = streams or StreamsConfig()
    routes: dict[str, Route] = {}
    for name, config in models.items():
        ordered = sorted(enumerate(config.targets), key=lambda pair: (pair[1].priority, pair[0]))
        targets = []
        route_headers = HeaderAllowlist.of(config.forward_headers)
        for _, t in ordered:
            provider = providers[t.provider]
            namespace = provider.price_namespace
            targets.append(
                Target(
                    provider=provider,
                    model=t.model,
                    price=prices(namespace, t.model, provider.config.base_url, provider.kind),
                    weight=t.weight,
                    priority=t.priority,
                    what_if=alternatives_for(what_if, namespace, t.model),
                    forward_headers=provider.forwarded | route_headers,
                )
            )
        if config.strategy == "cheapest":
            unpriced = [
                f"{t.provider.price_namespace}/{t.model}" for t in targets if t.price is None
            ]
            if unpriced:
                raise ValueError(
                    f"models.{name}: strategy cheapest needs a price for every target; "
                    f"none for {', '.join(unpriced)} (add them under prices:)"
                )
        routes[name] = Route(
            name=name,
            targets=tuple(targets),
            max_output_tokens=config.max_output_tokens,
            strategy=config.strategy,
            retries=config.retries,
            timeout_s=config.timeout_s,
            backoff_base_s=config.backoff_base_s,
            backoff_max_s=config.backoff_max_s,
            on_client_disconnect=config.on_client_disconnect or streams.on_client_disconnect,
            drain_timeout_s=config.drain_timeout_s or streams.drain_timeout_s,
            api=targets[0].provider.api,  # one API per route: checked by the config
        )
    return routes
