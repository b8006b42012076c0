"""Requests- and tokens-per-minute limits: bucket arithmetic and the 429 answer. Pure.

Each limit is a leaky bucket in integer "units": one request (or token) is WINDOW_MS units
and the bucket drains `limit` units per millisecond, so a full bucket empties in exactly one
minute and a burst of `limit` is allowed. Integers only: the Redis script does the same
sums in Lua doubles, exact below 2^53 (limits are capped at 10^9 per minute).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from proxy.errors import ProxyError

__all__ = [
    "MAX_LIMIT",
    "WINDOW_MS",
    "Bucket",
    "Decision",
    "InProcessLimiter",
    "Limiter",
    "RateLimitError",
    "Reading",
    "decide",
    "drained",
    "format_duration",
]

WINDOW_MS = 60_000
MAX_LIMIT = 10**9
Kind = Literal["requests", "tokens"]


@dataclass(frozen=True, slots=True)
class Bucket:
    scope: str  # "key:<id>" or "customer:<id>": what the limit belongs to
    kind: Kind
    limit: int  # per minute

    @property
    def name(self) -> str:
        return f"{self.scope}:{self.kind}"


@dataclass(frozen=True, slots=True)
class Reading:
    """A bucket's level after the decision (units), and what this request asked of it."""

    bucket: Bucket
    used: int
    cost: int

    @property
    def remaining(self) -> int:
        return max(0, self.bucket.limit * WINDOW_MS - self.used) // WINDOW_MS

    @property
    def reset_ms(self) -> int:
        """Until the bucket is empty again."""
        return -(-self.used // self.bucket.limit) if self.used > 0 else 0

    @property
    def retry_after_ms(self) -> int:
        """Until this request's cost would fit; 0 when it fits now."""
        over = self.used + self.cost * WINDOW_MS - self.bucket.limit * WINDOW_MS
        return -(-over // self.bucket.limit) if over > 0 else 0


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    readings: tuple[Reading, ...]

    @property
    def retry_after_ms(self) -> int:
        return max((r.retry_after_ms for r in self.readings), default=0)

    def headers(self) -> dict[str, str]:
        """OpenAI's x-ratelimit-* headers, from the tightest bucket of each kind."""
        out: dict[str, str] = {}
        for kind in ("requests", "tokens"):
            readings = [r for r in self.readings if r.bucket.kind == kind]
            if not readings:
                continue
            tightest = min(readings, key=lambda r: (r.remaining, -r.reset_ms))
            out[f"x-ratelimit-limit-{kind}"] = str(tightest.bucket.limit)
            out[f"x-ratelimit-remaining-{kind}"] = str(tightest.remaining)
            out[f"x-ratelimit-reset-{kind}"] = format_duration(tightest.reset_ms)
        if not self.allowed:
            wait = self.retry_after_ms
            out["retry-after"] = str(max(1, math.ceil(wait / 1000)))
            out["retry-after-ms"] = str(wait)
        return out


def drained(used: int, at_ms: int, limit: int, now_ms: int) -> int:
    return max(0, used - max(0, now_ms - at_ms) * limit)


def decide(
    levels: Sequence[int], buckets: Sequence[Bucket], costs: Sequence[int]
) -> tuple[Decision, list[int]]:
    """All or nothing: every bucket takes its cost, or none does. `levels` are already
    drained to now; returns the decision and the levels to store."""
    fits = all(
        used + cost * WINDOW_MS <= b.limit * WINDOW_MS
        for used, cost, b in zip(levels, costs, buckets, strict=True)
    )
    after = [
        used + cost * WINDOW_MS if fits else used for used, cost in zip(levels, costs, strict=True)
    ]
    readings = tuple(
        Reading(b, used, cost) for b, used, cost in zip(buckets, after, costs, strict=True)
    )
    return Decision(fits, readings), after


def format_duration(ms: int) -> str:
    """As OpenAI writes reset times (Go durations): "20ms", "1s", "1.5s", "6m0s", "1h0m0s"."""
    if ms < 1000:
        return f"{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds = f"{rest / 1000:.3f}".rstrip("0").rstrip(".")
    if hours:
        return f"{hours}h{minutes}m{seconds}s"
    if minutes:
        return f"{minutes}m{seconds}s"
    return f"{seconds}s"


class RateLimitError(ProxyError):
    status = 429
    type = "requests"
    code = "rate_limit_exceeded"


class Limiter(Protocol):
    async def take(self, buckets: Sequence[Bucket], costs: Sequence[int]) -> Decision:
        """Take `costs` from `buckets` atomically, or nothing when any would overflow."""

    async def adjust(self, buckets: Sequence[Bucket], deltas: Sequence[int]) -> None:
        """Add (or give back, when negative) units without a limit check: settle's correction."""


class InProcessLimiter:
    """The embedded store's limiter: one process, so a dict is atomic enough."""

    def __init__(self, clock: Callable[[], int] | None = None) -> None:
        self._clock = clock or (lambda: time.time_ns() // 1_000_000)
        self._levels: dict[str, tuple[int, int]] = {}  # name -> (used units, at ms)

    def _level(self, bucket: Bucket, now: int) -> int:
        used, at = self._levels.get(bucket.name, (0, now))
        return drained(used, at, bucket.limit, now)

    async def take(self, buckets: Sequence[Bucket], costs: Sequence[int]) -> Decision:
        now = self._clock()
        decision, after = decide([self._level(b, now) for b in buckets], buckets, costs)
        if decision.allowed:
            for bucket, used in zip(buckets, after, strict=True):
                self._levels[bucket.name] = (used, now)
        self._forget_empty(now)
        return decision

    async def adjust(self, buckets: Sequence[Bucket], deltas: Sequence[int]) -> None:
        now = self._clock()
        for bucket, delta in zip(buckets, deltas, strict=True):
            used = max(0, self._level(bucket, now) + delta * WINDOW_MS)
            self._levels[bucket.name] = (used, now)

    def _forget_empty(self, now: int) -> None:
        # Bounded memory: buckets that have drained hold nothing worth keeping.
        if len(self._levels) > 10_000:
            self._levels = {
                name: (used, at)
                for name, (used, at) in self._levels.items()
                if used - (now - at) > 0  # conservative: drains at least 1 unit per ms
            }
