"""Which budget alerts are due, and what an alert says. Pure: no I/O, no clock.

A threshold alert is due once settled spend reaches `threshold`% of the limit; the forecast
alert is due when, at the burn rate of the last hour, the spend would reach the limit
before the period ends. A hard budget's 100% alert is also due when it refuses a request
that would not fit even with nothing in flight: a hard budget holds each request's worst
case, so its spend may never reach the limit itself. Each is claimed in the store once per
budget period, so "due" may be answered many times: the claim makes it fire once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from proxy.accounting.pricing import format_usd_short
from proxy.budgets.rules import BudgetRule, CounterState, period_reset_ms
from proxy.utc import iso_utc

__all__ = ["Alert", "due_alerts", "forecast_exhausts", "refusal_exhausts", "threshold_reached"]

_MS_PER_HOUR = 3_600_000


def threshold_reached(limit_nusd: int, spent_nusd: int, percent: int) -> bool:
    # Integer cross-multiplication: no rounding at the edge of a threshold.
    return spent_nusd * 100 >= limit_nusd * percent


def forecast_exhausts(
    limit_nusd: int, spent_nusd: int, burn_hour_nusd: int, now_ms: int, reset_ms: int | None
) -> bool:
    """spent + burn/hour × hours left ≥ limit (before the limit is already reached)."""
    if reset_ms is None or burn_hour_nusd <= 0 or spent_nusd >= limit_nusd:
        return False
    left_ms = max(0, reset_ms - now_ms)
    return spent_nusd * _MS_PER_HOUR + burn_hour_nusd * left_ms >= limit_nusd * _MS_PER_HOUR


def refusal_exhausts(rule: BudgetRule, state: CounterState, amount_nusd: int) -> bool:
    """A refusal that announces the budget's 100% alert: a hard budget with one, refusing
    a request that does not fit beside settled spend alone (not one that only waits for
    requests in flight to settle)."""
    return rule.hard and 100 in rule.alert_at and state.spent_nusd + amount_nusd > rule.limit_nusd


def due_alerts(
    rule: BudgetRule, state: CounterState, now_ms: int, *, forecast: bool = True
) -> list[str]:
    """Names of the alerts due now: "threshold:50", ..., "forecast"."""
    due = [
        f"threshold:{p}"
        for p in rule.alert_at
        if threshold_reached(rule.limit_nusd, state.spent_nusd, p)
    ]
    reset = period_reset_ms(rule.period, state.pid)
    if forecast and forecast_exhausts(
        rule.limit_nusd, state.spent_nusd, state.burn_hour_nusd, now_ms, reset
    ):
        due.append("forecast")
    return due


@dataclass(frozen=True, slots=True)
class Alert:
    scope: str
    customer: str | None
    rule: BudgetRule
    state: CounterState
    name: str  # "threshold:80" | "forecast"
    now_ms: int
    # "spend": settled spend made it due; "refused": a hard budget refused a request
    # (its 100% alert: the reservation keeps spend itself below the limit).
    trigger: str = "spend"

    def payload(self) -> dict[str, Any]:
        """The webhook body and the structured log line's fields."""
        reset = period_reset_ms(self.rule.period, self.state.pid)
        threshold = int(self.name.split(":")[1]) if self.name.startswith("threshold:") else None
        projected = None
        if self.name == "forecast" and reset is not None:
            left_ms = max(0, reset - self.now_ms)
            projected = self.state.spent_nusd + self.state.burn_hour_nusd * left_ms // _MS_PER_HOUR
        return {
            "type": "budget_alert",
            "alert": self.name,
            "customer": self.customer,
            "scope": self.scope,
            "period": self.rule.period,
            "period_id": self.state.pid,
            "hard": self.rule.hard,
            "limit_usd": format_usd_short(self.rule.limit_nusd),
            "spent_usd": format_usd_short(self.state.spent_nusd),
            "threshold_percent": threshold,
            "forecast": self.name == "forecast",
            "trigger": self.trigger,
            "burn_last_hour_usd": format_usd_short(self.state.burn_hour_nusd),
            "projected_spend_usd": None if projected is None else format_usd_short(projected),
            "resets_at": None if reset is None else iso_utc(reset),
            "at": iso_utc(self.now_ms),
        }
