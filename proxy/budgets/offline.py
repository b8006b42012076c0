"""Budgets while the store is away: enforced from the figures the store last gave this
instance plus what this instance has held and spent since, and the spend still to be
charged to the store's counters once it answers again. Pure bookkeeping, no I/O.

The local figure errs on the side of refusing: open reservations the store reported are
kept as if spent, and other instances' spend during the outage is unknown (each instance
enforces its own view; the overshoot is bounded by what the other instances spend while
the store is away).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace

from proxy.budgets.rules import (
    BudgetRule,
    CounterState,
    Period,
    ReserveAnswer,
    first_violation,
    period_id,
)

__all__ = ["Charge", "OfflineLedger"]

_Key = tuple[str, str]  # (scope, period)
_Counters = tuple[tuple[str, BudgetRule], ...]


@dataclass(frozen=True, slots=True)
class Charge:
    """Spend settled on this instance that the store's budget counters do not have yet."""

    request_id: str  # the id the store knows it by: a request's, or one per coalesced sum
    cost_nusd: int
    counters: _Counters
    pids: tuple[str, ...]  # the period each counter was in when the spend happened


class OfflineLedger:
    """Memory stays bounded however long the store is away: the store's figures are kept
    for the `max_counters` counters used most recently, and spend settled offline is
    summed per set of counters (one charge each), not kept per request."""

    def __init__(self, max_counters: int = 100_000) -> None:
        self._max_counters = max_counters
        self._known: dict[_Key, CounterState] = {}  # the store's last answer, oldest first
        self._unsent: dict[tuple[str, str, str], int] = {}  # (scope, period, pid) -> nusd
        self._held: dict[tuple[str, str, str], int] = {}  # offline holds, same keys
        self._holds: dict[str, tuple[int, tuple[tuple[str, str, str], ...]]] = {}
        self._charges: dict[str, Charge] = {}  # by request_id
        self._summing: dict[tuple[_Counters, tuple[str, ...]], str] = {}  # -> open charge id

    @property
    def charges(self) -> list[Charge]:
        return list(self._charges.values())

    def remember(
        self, counters: Sequence[tuple[str, Period]], states: Sequence[CounterState]
    ) -> None:
        """The store's figures for these counters, from a reserve or settle answer."""
        known = self._known
        for (scope, period), state in zip(counters, states, strict=True):
            key = (scope, period)
            known.pop(key, None)  # re-inserted last: the dict stays in order of use
            known[key] = state
        while len(known) > self._max_counters:
            del known[next(iter(known))]

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
        if not cost_nusd:
            return True
        counters = tuple(counters)
        pids = tuple(pid for _, _, pid in keys)
        # The store never saw this request: its spend joins the sum for these counters.
        charge_id = self._summing.get((counters, pids))
        if charge_id is None:
            charge_id = self._summing[(counters, pids)] = f"offline-{secrets.token_hex(12)}"
            self._charges[charge_id] = Charge(charge_id, 0, counters, pids)
        charge = self._charges[charge_id]
        self._charges[charge_id] = replace(charge, cost_nusd=charge.cost_nusd + cost_nusd)
        self._add_unsent(self._keys(charge), cost_nusd)
        return True

    def owe(
        self,
        request_id: str,
        cost_nusd: int,
        counters: Sequence[tuple[str, BudgetRule]],
        pids: tuple[str, ...],
    ) -> None:
        """A settle the store could not take, of a hold the store may have: charged under
        the request's own id, so that the store releases that hold (also counted by local
        checks until then)."""
        charge = Charge(request_id, cost_nusd, tuple(counters), pids)
        self._charges[request_id] = charge
        self._add_unsent(self._keys(charge), cost_nusd)

    def charged(self, charge: Charge) -> None:
        """`charge`, as it was sent, is in the store now: local checks stop adding it. A sum
        that grew meanwhile keeps the rest, under a new id (the store has used this one)."""
        current = self._charges.pop(charge.request_id)
        summing = (charge.counters, charge.pids)
        if self._summing.get(summing) == charge.request_id:
            del self._summing[summing]
        rest = current.cost_nusd - charge.cost_nusd
        if rest:
            rest_id = self._summing[summing] = f"offline-{secrets.token_hex(12)}"
            self._charges[rest_id] = replace(current, request_id=rest_id, cost_nusd=rest)
        self._add_unsent(self._keys(charge), -charge.cost_nusd)

    @property
    def open_holds(self) -> int:
        return len(self._holds)

    @property
    def unsent_nusd(self) -> int:
        return sum(charge.cost_nusd for charge in self._charges.values())

    def _add_unsent(self, keys: list[tuple[str, str, str]], nusd: int) -> None:
        for key in keys:
            left = self._unsent.get(key, 0) + nusd
            if left:
                self._unsent[key] = left
            else:
                del self._unsent[key]

    @staticmethod
    def _keys(charge: Charge) -> list[tuple[str, str, str]]:
        return [
            (scope, rule.period, pid)
            for (scope, rule), pid in zip(charge.counters, charge.pids, strict=True)
        ]
