"""What the proxy has learnt about each target: its breaker, latency and error figures.

One `HealthBook` per app, kept across reloads for targets whose provider did not change.
Plain attributes and `entries()` are what the admin API and metrics read.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from proxy.config import BreakerConfig
from proxy.providers import Provider
from proxy.routing.breaker import Breaker
from proxy.routing.routes import Route, Target, TargetKey

__all__ = ["LATENCY_ALPHA", "HealthBook", "TargetHealth"]

# Weight of the newest sample in the moving average of time to first byte: about the last
# five requests dominate, so a change of upstream speed shows within a few requests.
LATENCY_ALPHA = 0.3


@dataclass(slots=True)
class TargetHealth:
    provider: Provider  # the pool these figures were measured on
    breaker: Breaker
    latency_ms: float | None = None  # moving average of time to first byte
    requests: int = 0  # attempts sent
    failures: int = 0  # attempts that failed (connection, timeout, 429, 5xx, broken stream)
    last_error: str | None = None

    def observe_latency(self, ms: float) -> None:
        if self.latency_ms is None:
            self.latency_ms = ms
        else:
            self.latency_ms += LATENCY_ALPHA * (ms - self.latency_ms)


class HealthBook:
    def __init__(self, breaker: BreakerConfig) -> None:
        self._breaker = breaker
        self._targets: dict[TargetKey, TargetHealth] = {}
        self._route_seq: dict[str, int] = {}

    def of(self, target: Target) -> TargetHealth:
        health = self._targets.get(target.key)
        if health is None or health.provider is not target.provider:
            health = TargetHealth(
                provider=target.provider,
                breaker=Breaker(self._breaker.failure_threshold, self._breaker.cooldown_s),
            )
            self._targets[target.key] = health
        return health

    def peek(self, target: Target) -> TargetHealth | None:
        """The figures of `target`, if any were gathered on its current provider pool."""
        health = self._targets.get(target.key)
        return health if health is not None and health.provider is target.provider else None

    def next_seq(self, route: str) -> int:
        """This request's number on `route`, from 1 (lowest_latency's exploration turns)."""
        seq = self._route_seq.get(route, 0) + 1
        self._route_seq[route] = seq
        return seq

    def latency_ms(self, targets: Iterable[Target]) -> dict[TargetKey, float]:
        out: dict[TargetKey, float] = {}
        for target in targets:
            health = self.peek(target)
            if health is not None and health.latency_ms is not None:
                out[target.key] = health.latency_ms
        return out

    def adopt(self, routes: Iterable[Route], breaker: BreakerConfig) -> None:
        """After a reload: keep the figures of targets still routed to on the same
        provider pool, forget the rest, and apply the (maybe new) breaker settings."""
        self._breaker = breaker
        kept: dict[TargetKey, TargetHealth] = {}
        route_names = set()
        for route in routes:
            route_names.add(route.name)
            for target in route.targets:
                health = self._targets.get(target.key)
                if health is not None and health.provider is target.provider:
                    health.breaker.failure_threshold = breaker.failure_threshold
                    health.breaker.cooldown_s = breaker.cooldown_s
                    kept[target.key] = health
        self._targets = kept
        self._route_seq = {n: seq for n, seq in self._route_seq.items() if n in route_names}

    def entries(self) -> Iterator[tuple[TargetKey, TargetHealth]]:
        yield from sorted(self._targets.items())
