"""Routing strategies and route building: pure functions, tested with tables."""

from __future__ import annotations

import pytest

from proxy.accounting.pricing import PriceSpec
from proxy.config import ProviderConfig, RouteConfig
from proxy.providers import build_provider
from proxy.routing.routes import (
    EXPLORE_EVERY,
    Route,
    RoutingInputs,
    Target,
    build_routes,
    cheapest_order,
    lowest_latency_order,
    order_targets,
    weighted_order,
)
from tests.support.prices import spec, spec_history

PROVIDERS = {name: build_provider(name, ProviderConfig(base_url="http://x")) for name in "abcd"}


NOW = 1_796_126_400_000  # 2026-12-01T12:00Z


def price(i: str, o: str) -> PriceSpec:
    return spec(i, o)


def lookup(table: dict[str, PriceSpec]):
    def price_of(namespace: str, model: str, base_url: str | None, kind: str | None):
        assert (base_url, kind) == ("http://x", "openai")  # the provider's, for the catalogue
        return table.get(f"{namespace}/{model}")

    return price_of


def target(name: str, weight: float = 1.0, p: PriceSpec | None = None) -> Target:
    return Target(provider=PROVIDERS[name], model="m", price=p, weight=weight)


def names(targets: tuple[Target, ...]) -> str:
    return "".join(t.provider.name for t in targets)


@pytest.mark.parametrize(
    ("weights", "u", "expected"),
    [
        ((9, 1), 0.0, "ab"),
        ((9, 1), 0.8999, "ab"),
        ((9, 1), 0.9, "ba"),
        ((9, 1), 0.9999999, "ba"),
        ((1, 1, 2), 0.49, "bac"),
        ((1, 1, 2), 0.5, "cab"),
        ((0, 1), 0.0, "ba"),  # weight 0: never drawn, still a fallback
        ((1, 0), 0.9999999, "ab"),
        ((0, 1, 0), 0.99, "bac"),
    ],
)
def test_weighted_draws_by_weight_and_keeps_the_rest_as_fallbacks(
    weights: tuple[float, ...], u: float, expected: str
) -> None:
    targets = [target("abc"[i], w) for i, w in enumerate(weights)]
    assert names(weighted_order(targets, u)) == expected


def test_weighted_shares_match_the_weights_over_a_grid_of_draws() -> None:
    targets = [target("a", 90), target("b", 10)]
    firsts = [weighted_order(targets, i / 1000).__getitem__(0) for i in range(1000)]
    assert sum(t.provider.name == "b" for t in firsts) == 100


# USD per 1M tokens: a is cheap on input, b cheap on output, c unpriced, d = a.
A, B, D = price("1", "10"), price("5", "2"), price("1", "10")


@pytest.mark.parametrize(
    ("input_tokens", "output_tokens", "expected"),
    [
        (1000, 10, "adbc"),  # prompt-heavy: a and d tie (priority order), b, unpriced last
        (10, 1000, "badc"),
        (0, 0, "abdc"),  # everything costs 0: priority order, unpriced still last
        # a: 1000×1 + 500×10 = 6000 = b: 1000×5 + 500×2 (µ$): a tie keeps priority order.
        (1000, 500, "abdc"),
    ],
)
def test_cheapest_orders_by_cost_of_the_estimated_tokens(
    input_tokens: int, output_tokens: int, expected: str
) -> None:
    targets = [target("a", p=A), target("b", p=B), target("c"), target("d", p=D)]
    assert names(cheapest_order(targets, input_tokens, output_tokens, NOW)) == expected


@pytest.mark.parametrize(
    ("latency", "seq", "expected"),
    [
        ({}, 1, "abc"),  # nothing measured: priority order, each gets measured
        ({"a": 50.0}, 1, "bca"),  # unmeasured first
        ({"a": 50.0, "b": 10.0, "c": 30.0}, 1, "bca"),
        ({"a": 50.0, "b": 10.0, "c": 30.0}, EXPLORE_EVERY - 1, "bca"),
        ({"a": 50.0, "b": 10.0, "c": 30.0}, EXPLORE_EVERY, "cba"),  # exploring: 2nd first
        ({"a": 50.0, "b": 10.0, "c": 30.0}, 2 * EXPLORE_EVERY, "abc"),  # then the 3rd
        ({"a": 50.0, "b": 10.0, "c": 30.0}, 3 * EXPLORE_EVERY, "cba"),
        ({"a": 5.0, "b": 5.0}, 1, "ab"),  # ties: priority order
    ],
)
def test_lowest_latency(latency: dict[str, float], seq: int, expected: str) -> None:
    targets = [target(n) for n in "abc" if n in expected]
    measured = {(name, "m"): ms for name, ms in latency.items()}
    assert names(lowest_latency_order(targets, measured, seq)) == expected


def test_cheapest_compares_the_prices_in_force_when_the_request_arrived() -> None:
    # b is dearer than a until 2026-12-01 (00:00 UTC), then cheaper.
    cheaper = [{"from": "2026-01-01", "input": "5", "output": "5"},
               {"from": "2026-12-01", "input": "0.5", "output": "0.5"}]  # fmt: skip
    from_config = build_routes(
        {"r": route_config("cheapest", a={"model": "m"}, b={"model": "m"})},
        PROVIDERS,
        lookup({"a/m": A, "b/m": spec_history(cheaper)}),
    )["r"].targets
    midnight = NOW - 12 * 3_600_000
    assert names(cheapest_order(from_config, 1000, 0, midnight - 1)) == "ab"
    assert names(cheapest_order(from_config, 1000, 0, midnight)) == "ba"


def test_order_targets_dispatches_by_strategy() -> None:
    targets = (target("a", 1, A), target("b", 3, B))
    inputs = RoutingInputs(
        u=0.5, input_tokens=10, output_tokens=1000, when_ms=NOW, latency_ms={}, seq=1
    )
    expected = {"fallback": "ab", "weighted": "ba", "cheapest": "ba", "lowest_latency": "ab"}
    for strategy, order in expected.items():
        route = Route("r", targets, strategy=strategy)  # type: ignore[arg-type]
        assert names(order_targets(route, inputs)) == order, strategy


def route_config(strategy: str = "fallback", **targets: dict) -> RouteConfig:
    return RouteConfig.model_validate(
        {"strategy": strategy, "targets": [{"provider": p, **t} for p, t in targets.items()]}
    )


def test_build_routes_orders_by_priority_then_list_order_and_resolves_prices() -> None:
    config = route_config(
        c={"model": "gpt-4o", "priority": 1},
        a={"model": "m", "priority": 0},
        b={"model": "m", "priority": 0},
    )
    prices = lookup({"c/gpt-4o": A})
    what_if = {"c/gpt-4o": (("x/y", B),), "*": (("z/w", D),)}

    [route] = build_routes({"r": config}, PROVIDERS, prices, what_if).values()

    assert names(route.targets) == "abc"
    assert [t.price for t in route.targets] == [None, None, A]
    assert route.targets[2].what_if == (("x/y", B), ("z/w", D))
    assert route.targets[0].what_if == (("z/w", D),)
    assert (route.retries, route.timeout_s, route.strategy) == (2, None, "fallback")


def test_cheapest_needs_every_target_priced() -> None:
    config = route_config("cheapest", a={"model": "m"}, b={"model": "n"})
    with pytest.raises(ValueError, match=r"models\.r: strategy cheapest .* b/n"):
        build_routes({"r": config}, PROVIDERS, lookup({"a/m": A}))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"strategy": "random", "targets": [{"provider": "a", "model": "m"}]}, "strategy"),
        ({"strategy": "weighted", "targets": [{"provider": "a", "model": "m", "weight": 0}]},
         "weight > 0"),
        ({"targets": [{"provider": "a", "model": "m"}, {"provider": "a", "model": "m"}]},
         "listed twice"),
        ({"targets": [{"provider": "a", "model": "m", "weight": -1}]}, "weight"),
        ({"targets": [{"provider": "a", "model": "m"}], "retries": -1}, "retries"),
        ({"targets": [{"provider": "a", "model": "m"}], "timeout_s": 0}, "timeout_s"),
        ({"targets": []}, "targets"),
    ],
)  # fmt: skip
def test_route_config_errors(data: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RouteConfig.model_validate(data)
