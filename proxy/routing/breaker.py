"""A circuit breaker for one upstream target. Pure: time is passed in, nothing is awaited.

closed ──N consecutive failures──▶ open ──cool-down over──▶ half-open (one probe at a time)
   ▲                                 ▲                          │
   └──────────── probe succeeds ─────┼──── probe fails ─────────┘
"""

from __future__ import annotations

from typing import Literal

__all__ = ["STATE_CODES", "Breaker", "BreakerState"]

BreakerState = Literal["closed", "open", "half_open"]
# For a gauge: 0 closed, 1 half-open, 2 open (higher is worse).
STATE_CODES: dict[BreakerState, int] = {"closed": 0, "half_open": 1, "open": 2}


class Breaker:
    """`allows(now)` asks without committing; `acquire(now)` commits to sending a request
    (in half-open it takes the single probe slot). Every acquire is followed by exactly
    one of `success()`, `failure(now)` or `release()` (the attempt was abandoned)."""

    __slots__ = (
        "consecutive_failures",
        "cooldown_s",
        "failure_threshold",
        "opened_at",
        "opens",
        "probing",
    )

    def __init__(self, failure_threshold: int, cooldown_s: float) -> None:
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self.consecutive_failures = 0
        self.opened_at: float | None = None  # None: closed
        self.probing = False  # a half-open probe is in flight
        self.opens = 0  # times it opened, for metrics

    def state(self, now: float) -> BreakerState:
        if self.opened_at is None:
            return "closed"
        if self.probing or now - self.opened_at >= self.cooldown_s:
            return "half_open"
        return "open"

    def allows(self, now: float) -> bool:
        state = self.state(now)
        return state == "closed" or (state == "half_open" and not self.probing)

    def acquire(self, now: float) -> bool:
        if not self.allows(now):
            return False
        if self.opened_at is not None:
            self.probing = True
        return True

    def success(self) -> None:
        self.consecutive_failures = 0
        self.opened_at = None
        self.probing = False

    def failure(self, now: float) -> None:
        self.consecutive_failures += 1
        if self.probing or (
            self.opened_at is None and self.consecutive_failures >= self.failure_threshold
        ):
            self.opens += 1
            self.opened_at = now  # (re)open: a failed probe starts a new cool-down
        self.probing = False

    def release(self) -> None:
        """The acquired attempt never ran to an outcome (e.g. the client went away)."""
        self.probing = False

    def remaining_s(self, now: float) -> float:
        """Seconds until an open breaker lets a probe through (0 when not open)."""
        if self.opened_at is None:
            return 0.0
        return max(0.0, self.opened_at + self.cooldown_s - now)
