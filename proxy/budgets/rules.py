"""Budget arithmetic: periods, reservations, admission, remaining. Pure: no I/O, no clock.

Every function takes the time it needs (`now_ms`, UTC epoch milliseconds) as an argument.
Money is integer nano-dollars. The Redis reserve script mirrors `first_violation`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal, TypeGuard

from proxy.accounting.pricing import PriceBound, format_usd_short, parse_usd
from proxy.config import MAX_LIMIT_USD, BudgetConfig
from proxy.utc import iso_utc

__all__ = [
    "MAX_AMOUNT_NUSD",
    "MAX_COUNTER_NUSD",
    "MAX_LIMIT_NUSD",
    "PERIODS",
    "BudgetRule",
    "CounterState",
    "Period",
    "Rejection",
    "ReserveAnswer",
    "Seed",
    "SettleAnswer",
    "bounded_amount",
    "choices_of",
    "first_violation",
    "output_tokens_bound",
    "period_id",
    "period_reset_ms",
    "rejection",
    "remaining_nusd",
    "reservation_nusd",
    "retry_after_s",
    "stated_max_output",
]

Period = Literal["daily", "weekly", "monthly", "total"]
PERIODS: tuple[Period, ...] = ("daily", "weekly", "monthly", "total")
_MS_PER_DAY = 86_400_000
_EPOCH = date(1970, 1, 1)
_FUSD_PER_NUSD = 10**6
MAX_LIMIT_NUSD = parse_usd(MAX_LIMIT_USD)
# The most one reservation or settle moves a counter by. Larger amounts (an absurd
# max_tokens times n times a price) are held at this bound: above every limit, so every
# hard budget still refuses them, and exact in Lua's doubles (2^53).
MAX_AMOUNT_NUSD = 2**53 - 1
# Counters saturate here: a sum of bounded amounts then never passes the 64-bit integers
# of SQLite and Redis (OverflowError, HINCRBY's overflow error), whatever is in flight.
MAX_COUNTER_NUSD = 2**62
# Fields that cap a request's output, by endpoint family; the largest one given counts.
_MAX_OUTPUT_FIELDS = ("max_tokens", "max_completion_tokens", "max_output_tokens")


@dataclass(frozen=True, slots=True)
class BudgetRule:
    period: Period
    limit_nusd: int
    hard: bool = True
    alert_at: tuple[int, ...] = (50, 80, 100)

    @classmethod
    def from_config(cls, budget: BudgetConfig) -> BudgetRule:
        return cls(budget.period, parse_usd(budget.limit_usd), budget.hard, budget.alert_at)

    def to_json(self) -> dict[str, Any]:
        return {
            "period": self.period,
            "limit_usd": format_usd_short(self.limit_nusd),
            "hard": self.hard,
            "alert_at": list(self.alert_at),
        }


@dataclass(frozen=True, slots=True)
class CounterState:
    """One budget counter as the store saw it: `pid` is the period it is in."""

    pid: str
    spent_nusd: int  # settled spend in the period
    held_nusd: int  # open reservations (this request's included, after a reserve)
    burn_hour_nusd: int = 0  # spend settled in the last hour (settle answers only)


# Periods -------------------------------------------------------------------------------


def _day_index(now_ms: int) -> int:
    return now_ms // _MS_PER_DAY


def _day(index: int) -> date:
    return _EPOCH + timedelta(days=index)


def period_id(period: Period, now_ms: int) -> str:
    """The period containing `now_ms`: "2026-11-30" (daily), "2026-11-30" (the Monday of a
    weekly period), "2026-11" (monthly), "total"."""
    day = _day_index(now_ms)
    if period == "daily":
        return _day(day).isoformat()
    if period == "weekly":
        return _day(day - (day + 3) % 7).isoformat()  # 1970-01-01 was a Thursday
    if period == "monthly":
        return _day(day).isoformat()[:7]
    if period == "total":
        return "total"
    raise ValueError(f"unknown budget period {period!r}")


def _ms(day: date) -> int:
    return (day - _EPOCH).days * _MS_PER_DAY


def period_reset_ms(period: Period, pid: str) -> int | None:
    """When the period `pid` ends (the next one starts); None for `total`."""
    if period == "total":
        return None
    if period == "monthly":
        year, month = (int(part) for part in pid.split("-"))
        return _ms(date(year + month // 12, month % 12 + 1, 1))
    start = date.fromisoformat(pid)
    return _ms(start + timedelta(days=1 if period == "daily" else 7))


def period_max_s(period: Period) -> int | None:
    """An upper bound on a period's length: how long a per-period marker must live."""
    return {"daily": 86_400, "weekly": 7 * 86_400, "monthly": 31 * 86_400}.get(period)


# Reservations --------------------------------------------------------------------------


def output_tokens_bound(
    endpoint: str, payload: Mapping[str, object], route_max: int | None, default_max: int
) -> int:
    """The most output tokens the request can be billed for, as far as the proxy can tell:
    the largest max-tokens field it states, else the route's max_output_tokens, else the
    configured default. Times `n` choices. Embeddings produce no output tokens."""
    if endpoint == "embeddings":
        return 0
    stated = stated_max_output(payload)
    per_choice = stated if stated is not None else (route_max or default_max)
    return per_choice * choices_of(payload)


def choices_of(payload: Mapping[str, object]) -> int:
    """How many completions the request asks for (`n`; 1 when absent or not a count)."""
    n = payload.get("n")
    return n if _count(n) and n > 1 else 1


def stated_max_output(payload: Mapping[str, object]) -> int | None:
    """The largest of the request's max-tokens fields (chat, completions and responses
    name it differently; a client may send several), or None when it states none."""
    stated = [v for f in _MAX_OUTPUT_FIELDS if _count(v := payload.get(f))]
    return max(stated) if stated else None


def _count(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def bounded_amount(amount_nusd: int) -> int:
    """An amount as the stores take it: 0..MAX_AMOUNT_NUSD."""
    return min(max(amount_nusd, 0), MAX_AMOUNT_NUSD)


def reservation_nusd(
    prompt_tokens: int, output_tokens: int, bounds: Iterable[PriceBound | None]
) -> int:
    """The worst-case cost, at the dearest prices of any target (a fallback may land on
    it; any service tier, prompt-size tier or priced part of the tokens), plus its
    per-request fee, rounded up and held at MAX_AMOUNT_NUSD. Unpriced targets cannot be
    bounded and are left out (see the guard's refusal of unpriced targets); no price at
    all: 0. Web searches are not bounded: a request does not say how many the provider
    will run."""
    known = [b for b in bounds if b is not None]
    if not known:
        return 0
    input_fusd = max(b.input_fusd for b in known)
    output_fusd = max(b.output_fusd for b in known)
    fee_nusd = max(b.per_request_nusd for b in known)
    fusd = prompt_tokens * input_fusd + output_tokens * output_fusd
    return bounded_amount(-(-fusd // _FUSD_PER_NUSD) + fee_nusd)


# Admission -----------------------------------------------------------------------------


def first_violation(
    amount_nusd: int, rules: Sequence[BudgetRule], states: Sequence[CounterState]
) -> int | None:
    """The index of the first hard budget that `amount_nusd` would overrun, or None.

    Admitted when, for every hard budget: spent + open reservations + amount <= limit.
    """
    for index, (rule, state) in enumerate(zip(rules, states, strict=True)):
        if rule.hard and state.spent_nusd + state.held_nusd + amount_nusd > rule.limit_nusd:
            return index
    return None


def remaining_nusd(rules: Sequence[BudgetRule], states: Sequence[CounterState]) -> int | None:
    """What is left of the tightest budget: its limit minus the spend settled so far in
    the period. Hard budgets count when there are any, else the soft ones.

    Reservations are left out on purpose: they are worst-case estimates (this request's
    own one shrinks when a nearly spent budget makes the proxy count tokens instead of
    bytes), so counting them made the figure rise between sequential requests. Settled
    spend only grows within a period, so this figure only falls, until the limit or the
    period changes."""
    pairs = list(zip(rules, states, strict=True))
    hard = [pair for pair in pairs if pair[0].hard] or pairs
    if not hard:
        return None
    return max(0, min(r.limit_nusd - s.spent_nusd for r, s in hard))


def retry_after_s(rule: BudgetRule, state: CounterState, amount_nusd: int, now_ms: int) -> int:
    """Seconds until the request could fit: soon when only open reservations are in the
    way (they settle within a request's lifetime), else at the period's reset."""
    if state.spent_nusd + amount_nusd <= rule.limit_nusd:
        return 1
    reset = period_reset_ms(rule.period, state.pid)
    if reset is None:
        return 0  # never: a `total` budget only reopens when its limit is raised
    return max(1, -(-(reset - now_ms) // 1000))


# Rejection messages --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rejection:
    message: str
    retry_after_s: int
    scope: str
    period: Period


def rejection(
    scope_label: str,
    scope: str,
    rule: BudgetRule,
    state: CounterState,
    amount_nusd: int,
    now_ms: int,
) -> Rejection:
    """ "customer acme reached its monthly budget of $500.00 (spent $500.00, resets ...)"."""
    reset = period_reset_ms(rule.period, state.pid)
    resets = "never resets" if reset is None else f"resets {iso_utc(reset)}"
    in_flight = (
        f", ${format_usd_short(state.held_nusd)} reserved by requests in flight"
        if state.held_nusd
        else ""
    )
    verb = "reached" if state.spent_nusd >= rule.limit_nusd else "has too little left of"
    message = (
        f"{scope_label} {verb} its {rule.period} budget of ${format_usd_short(rule.limit_nusd)} "
        f"(spent ${format_usd_short(state.spent_nusd)}{in_flight}, {resets}; this request "
        f"may cost up to ${format_usd_short(amount_nusd)})"
    )
    return Rejection(message, retry_after_s(rule, state, amount_nusd, now_ms), scope, rule.period)


@dataclass(frozen=True, slots=True)
class ReserveAnswer:
    """`violated`: index of the first hard budget the request would overrun (None: held).
    `states`: every counter, after the reservation when it was made. `now_ms`: store time."""

    violated: int | None
    states: tuple[CounterState, ...]
    now_ms: int


@dataclass(frozen=True, slots=True)
class Seed:
    """Raise counter (scope, period) to at least `floor_nusd`, if it is still in `pid`
    (see proxy.budgets.seed)."""

    scope: str
    period: Period
    pid: str
    floor_nusd: int


@dataclass(frozen=True, slots=True)
class SettleAnswer:
    states: tuple[CounterState, ...]  # after the settle, with the last hour's burn
    now_ms: int
