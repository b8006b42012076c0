"""The local budget ledger used while the store is away: pure arithmetic."""

from __future__ import annotations

from proxy.budget_offline import OfflineLedger
from proxy.budgets import BudgetRule, CounterState, period_id

NOW = 1_790_000_000_000  # a millisecond timestamp in 2026
MONTHLY = BudgetRule("monthly", 1_000)
SOFT = BudgetRule("daily", 100, hard=False)
COUNTERS = [("customer/acme", MONTHLY)]


def ledger_knowing(spent: int, held: int = 0) -> OfflineLedger:
    ledger = OfflineLedger()
    pid = period_id("monthly", NOW)
    ledger.remember([("customer/acme", "monthly")], [CounterState(pid, spent, held)])
    return ledger


def test_admits_up_to_the_last_known_figure_plus_local_holds():
    ledger = ledger_knowing(spent=600, held=100)  # open holds are counted as if spent
    first = ledger.reserve("r1", 200, COUNTERS, NOW, unknown_is_zero=False)
    assert first is not None and first.violated is None
    assert first.states[0].held_nusd == 200
    second = ledger.reserve("r2", 200, COUNTERS, NOW, unknown_is_zero=False)
    assert second is not None and second.violated == 0  # 600 + 100 + 200 + 200 > 1000
    assert ledger.open_holds == 1


def test_settled_spend_counts_until_charged_to_the_store():
    ledger = ledger_knowing(spent=0)
    ledger.reserve("r1", 500, COUNTERS, NOW, unknown_is_zero=False)
    assert ledger.settle("r1", 300, COUNTERS)
    assert ledger.open_holds == 0
    (charge,) = ledger.charges
    assert (charge.request_id, charge.cost_nusd) == ("r1", 300)
    refused = ledger.reserve("r2", 701, COUNTERS, NOW, unknown_is_zero=False)
    assert refused is not None and refused.violated == 0  # 300 spent locally
    ledger.charged(charge)
    assert ledger.charges == [] and ledger.unsent_nusd == 0
    # Charged: the store's next figure carries it; until then the old one is all we have.
    admitted = ledger.reserve("r3", 1_000, COUNTERS, NOW, unknown_is_zero=False)
    assert admitted is not None and admitted.violated is None


def test_a_hold_the_store_made_is_not_settled_locally():
    ledger = ledger_knowing(spent=0)
    assert not ledger.settle("held-by-store", 10, COUNTERS)
    assert ledger.charges == []


def test_unknown_counters_are_refused_unless_taken_as_zero():
    ledger = OfflineLedger()
    assert ledger.reserve("r1", 1, COUNTERS, NOW, unknown_is_zero=False) is None
    answer = ledger.reserve("r1", 1_000, COUNTERS, NOW, unknown_is_zero=True)
    assert answer is not None and answer.violated is None


def test_a_new_period_starts_from_zero_and_soft_budgets_never_refuse():
    ledger = ledger_knowing(spent=1_000)
    next_month = NOW + 40 * 86_400_000
    answer = ledger.reserve("r1", 1_000, COUNTERS, next_month, unknown_is_zero=False)
    assert answer is not None and answer.violated is None
    counters = [("customer/acme", SOFT)]
    soft = ledger.reserve("r2", 10_000, counters, NOW, unknown_is_zero=True)
    assert soft is not None and soft.violated is None


def test_retrying_a_reservation_does_not_hold_twice():
    ledger = ledger_knowing(spent=0)
    ledger.reserve("r1", 400, COUNTERS, NOW, unknown_is_zero=False)
    again = ledger.reserve("r1", 400, COUNTERS, NOW, unknown_is_zero=False)
    assert again is not None and again.states[0].held_nusd == 400
    assert ledger.settle("r1", 400, COUNTERS)
    assert not ledger.settle("r1", 400, COUNTERS)
    assert ledger.unsent_nusd == 400
