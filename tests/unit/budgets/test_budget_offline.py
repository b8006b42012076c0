"""The local budget ledger used while the store is away: pure arithmetic."""

from __future__ import annotations

from proxy.budgets.offline import OfflineLedger
from proxy.budgets.rules import BudgetRule, CounterState, period_id

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
    assert charge.cost_nusd == 300 and charge.counters == tuple(COUNTERS)
    refused = ledger.reserve("r2", 701, COUNTERS, NOW, unknown_is_zero=False)
    assert refused is not None and refused.violated == 0  # 300 spent locally
    ledger.charged(charge)
    assert ledger.charges == [] and ledger.unsent_nusd == 0
    # Charged: the store's next figure carries it; until then the old one is all we have.
    admitted = ledger.reserve("r3", 1_000, COUNTERS, NOW, unknown_is_zero=False)
    assert admitted is not None and admitted.violated is None


def test_offline_spend_is_summed_per_set_of_counters_not_kept_per_request():
    ledger = ledger_knowing(spent=0)
    other = [("customer/globex", MONTHLY)]
    for i in range(1_000):
        ledger.reserve(f"a{i}", 1, COUNTERS, NOW, unknown_is_zero=True)
        ledger.settle(f"a{i}", 1, COUNTERS)
        ledger.reserve(f"g{i}", 1, other, NOW, unknown_is_zero=True)
        ledger.settle(f"g{i}", 1, other)
    assert sorted(c.cost_nusd for c in ledger.charges) == [1_000, 1_000]
    assert len({c.request_id for c in ledger.charges}) == 2
    assert ledger.unsent_nusd == 2_000


def test_a_sum_that_grows_while_it_is_sent_keeps_the_rest_under_a_new_id():
    ledger = ledger_knowing(spent=0)
    ledger.reserve("r1", 100, COUNTERS, NOW, unknown_is_zero=False)
    ledger.settle("r1", 100, COUNTERS)
    (sent,) = ledger.charges
    ledger.reserve("r2", 40, COUNTERS, NOW, unknown_is_zero=False)  # settles mid-send
    ledger.settle("r2", 40, COUNTERS)
    ledger.charged(sent)
    (rest,) = ledger.charges
    assert rest.cost_nusd == 40 and rest.request_id != sent.request_id
    assert ledger.unsent_nusd == 40
    answer = ledger.reserve("r3", 960, COUNTERS, NOW, unknown_is_zero=False)
    assert answer is not None and answer.violated is None  # 0 known + 40 unsent + 960


def test_a_failed_settle_is_owed_under_the_request_id_the_store_holds():
    ledger = ledger_knowing(spent=0)
    ledger.owe("held-by-store", 70, COUNTERS, (period_id("monthly", NOW),))
    (charge,) = ledger.charges
    assert (charge.request_id, charge.cost_nusd) == ("held-by-store", 70)
    refused = ledger.reserve("r1", 931, COUNTERS, NOW, unknown_is_zero=False)
    assert refused is not None and refused.violated == 0


def test_figures_are_kept_for_the_most_recently_used_counters_only():
    ledger = OfflineLedger(max_counters=2)
    pid = period_id("monthly", NOW)
    for name in ("a", "b", "a", "c"):  # "a" used again: "b" is the oldest when "c" comes
        ledger.remember([(f"customer/{name}", "monthly")], [CounterState(pid, 0, 0)])

    def known(name: str) -> bool:
        counters = [(f"customer/{name}", MONTHLY)]
        return ledger.reserve(f"q-{name}", 1, counters, NOW, unknown_is_zero=False) is not None

    assert known("a") and known("c") and not known("b")


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
    assert ledger.settle("r2", 0, COUNTERS) is False  # never held
    ledger.reserve("r3", 10, COUNTERS, NOW, unknown_is_zero=False)
    assert ledger.settle("r3", 0, COUNTERS) and ledger.unsent_nusd == 400  # unpriced
