"""Budgets while the store is away: enforced from the figures the store last gave this
instance plus what this instance has held and spent since, and the spend still to be
charged to the store's counters once it answers again. Pure bookkeeping, no I/O.

The local figure errs on the side of refusing: open reservations the store reported are
kept as if spent, and other instances' spend during the outage is unknown (each instance
enforces its own view; the overshoot is bounded by what the other instances spend while
the store is away).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from proxy.budgets import BudgetRule, CounterState, Period, first_violation, period_id
from proxy.store.base import ReserveAnswer

__all__ = ["Charge", "OfflineLedger"]

_Key = tuple[str, str]  # (scope, period)


@dataclass(frozen=True, slots=True)
class Charge:
    """Spend settled on this instance that the store's budget counters do not have yet."""

    request_id: str
    cost_nusd: int
    counters: tuple[tuple[str, BudgetRule], ...]
    pids: tuple[str, ...]  # the period each counter was in when the spend happened


class OfflineLedger:
    def __init__(self) -> None:
        self._known: dict[_Key, CounterState] = {}  # the store's last answer per counter
        self._unsent: dict[tuple[str, str, str], int] = {}  # (scope, period, pid) -> nusd
        self._held: dict[tuple[str, str, str], int] = {}  # offline holds, same keys
        self._holds: dict[str, tuple[int, tuple[tuple[str, str, str], ...]]] = {}
        self.charges: list[Charge] = []

    def remember(self, counters: Sequence[tuple[str, Period]], states: Sequence[CounterState]):
        """The store's figures for these counters, from a reserve or settle answer."""
        for (scope, period), state in zip(counters, states, strict=True):
            self._known[(scope, period)] = state

    def reserve(
        self,
        request_id: str,
        amount_nusd: int,
        counters: Sequence[tuple[str, BudgetRule]],
        now_ms: int,
        *,
        unknown_is_zero: bool,
    ) -> ReserveAnswer | None:
        """What the store would have answered, from local figures; None when a counter
        was never seen by this instance and `unknown_is_zero` is false (it cannot be
        checked). Holds the amount when admitted, as the store would."""
        keys = []
        states = []
        for scope, rule in counters:
            pid = period_id(rule.period, now_ms)
            known = self._known.get((scope, rule.period))
            if known is None and not unknown_is_zero:
                return None
            base = 0 if known is None or known.pid != pid else known.spent_nusd + known.held_nusd
            key = (scope, rule.period, pid)
            keys.append(key)
            states.append(
                CounterState(pid, base + self._unsent.get(key, 0), self._held.get(key, 0))
            )
        violated = first_violation(amount_nusd, [rule for _, rule in counters], states)
        if violated is not None or request_id in self._holds:
            return ReserveAnswer(violated, tuple(states), now_ms)
        for key in keys:
            self._held[key] = self._held.get(key, 0) + amount_nusd
        self._holds[request_id] = (amount_nusd, tuple(keys))
        held = tuple(CounterState(s.pid, s.spent_nusd, s.held_nusd + amount_nusd) for s in states)
        return ReserveAnswer(None, held, now_ms)

    def settle(
        self, request_id: str, cost_nusd: int, counters: Sequence[tuple[str, BudgetRule]]
    ) -> bool:
        """Settle a hold made by `reserve`; False when it was not (the store holds it)."""
        hold = self._holds.pop(request_id, None)
        if hold is None:
            return False
        amount, keys = hold
        for key in keys:
            left = self._held[key] - amount
            if left:
                self._held[key] = left
            else:
                del self._held[key]
        self.owe(request_id, cost_nusd, counters, tuple(pid for _, _, pid in keys))
        return True

    def owe(
        self,
        request_id: str,
        cost_nusd: int,
        counters: Sequence[tuple[str, BudgetRule]],
        pids: tuple[str, ...],
    ) -> None:
        """Spend the store's counters must be charged with when it is back (also counted
        by local checks until then)."""
        charge = Charge(request_id, cost_nusd, tuple(counters), pids)
        self.charges.append(charge)
        for key in self._keys(charge):
            self._unsent[key] = self._unsent.get(key, 0) + cost_nusd

    def charged(self, charge: Charge) -> None:
        """`charge` is in the store now: local checks stop adding it."""
        self.charges.remove(charge)
        for key in self._keys(charge):
            left = self._unsent[key] - charge.cost_nusd
            if left:
                self._unsent[key] = left
            else:
                del self._unsent[key]

    @property
    def open_holds(self) -> int:
        return len(self._holds)

    @property
    def unsent_nusd(self) -> int:
        return sum(charge.cost_nusd for charge in self.charges)

    @staticmethod
    def _keys(charge: Charge) -> list[tuple[str, str, str]]:
        return [
            (scope, rule.period, pid)
            for (scope, rule), pid in zip(charge.counters, charge.pids, strict=True)
        ]
