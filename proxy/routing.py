"""Routes: the model names clients send, each resolved to upstream targets. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from proxy.config import RouteConfig
from proxy.pricing import Price, PriceTable
from proxy.providers import Provider

__all__ = ["Route", "Target", "build_routes"]


@dataclass(frozen=True, slots=True)
class Target:
    provider: Provider
    model: str  # the upstream model name
    price: Price | None  # resolved once at load: no price lookups on the request path
    weight: float = 1.0
    priority: int = 0


@dataclass(frozen=True, slots=True)
class Route:
    name: str
    targets: tuple[Target, ...]  # in the order they are tried
    max_output_tokens: int | None = None

    def choose(self) -> Target:
        return self.targets[0]


def build_routes(
    models: Mapping[str, RouteConfig], providers: Mapping[str, Provider], prices: PriceTable
) -> dict[str, Route]:
    routes: dict[str, Route] = {}
    for name, config in models.items():
        ordered = sorted(enumerate(config.targets), key=lambda pair: (pair[1].priority, pair[0]))
        targets = tuple(
            Target(
                provider=providers[t.provider],
                model=t.model,
                price=prices.lookup(providers[t.provider].price_namespace, t.model),
                weight=t.weight,
                priority=t.priority,
            )
            for _, t in ordered
        )
        routes[name] = Route(name, targets, config.max_output_tokens)
    return routes
