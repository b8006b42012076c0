"""The pure budget logic: periods, reservations, admission, messages and alerts, by tables;
admission properties with hypothesis."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.accounting.pricing import PriceBound
from proxy.budgets.alert_rules import due_alerts, forecast_exhausts, threshold_reached
from proxy.budgets.book import BudgetBook, parse_scope, scope, scope_label
from proxy.budgets.rules import (
    MAX_AMOUNT_NUSD,
    MAX_LIMIT_NUSD,
    BudgetRule,
    CounterState,
    first_violation,
    format_usd_short,
    output_tokens_bound,
    period_id,
    period_reset_ms,
    rejection,
    remaining_nusd,
    reservation_nusd,
    retry_after_s,
)
from tests.support.records import ts

HOUR = 3_600_000


@pytest.mark.parametrize(
    ("period", "iso", "pid", "reset"),
    [
        ("daily", "2026-11-30T23:59:59", "2026-11-30", "2026-12-01T00:00:00"),
        ("daily", "2026-12-01T00:00:00", "2026-12-01", "2026-12-02T00:00:00"),
        ("weekly", "2026-11-30T10:00:00", "2026-11-30", "2026-12-07T00:00:00"),  # a Monday
        ("weekly", "2026-12-06T23:59:59", "2026-11-30", "2026-12-07T00:00:00"),  # Sunday
        ("weekly", "1970-01-01T00:00:00", "1969-12-29", "1970-01-05T00:00:00"),
        ("monthly", "2026-11-30T23:59:59", "2026-11", "2026-12-01T00:00:00"),
        ("monthly", "2026-12-31T23:59:59", "2026-12", "2027-01-01T00:00:00"),
        ("monthly", "2024-02-29T12:00:00", "2024-02", "2024-03-01T00:00:00"),
        ("total", "2026-11-30T23:59:59", "total", None),
    ],
)
def test_periods(period, iso, pid, reset):
    assert period_id(period, ts(iso)) == pid
    assert period_reset_ms(period, pid) == (None if reset is None else ts(reset))


def test_an_exhausted_budget_reopens_at_the_turn_of_the_month():
    rule = BudgetRule("monthly", 1000)
    nov30 = ts("2026-11-30T23:59:00")
    before = CounterState(period_id("monthly", nov30), 1000, 0)
    assert first_violation(1, [rule], [before]) == 0
    assert retry_after_s(rule, before, 1, nov30) == 60
    after = CounterState(period_id("monthly", ts("2026-12-01T00:00:00")), 0, 0)
    assert first_violation(1, [rule], [after]) is None


# What reservations see of a price: its dearest input and output token prices (fUSD), fee.
PRICE = PriceBound(10**9, 2 * 10**9, 0)  # $1 and $2 per 1M tokens
DEAR = PriceBound(3 * 10**9, 10**9, 0)
FEE = PriceBound(10**9, 2 * 10**9, 5_000_000)


@pytest.mark.parametrize(
    ("endpoint", "payload", "route_max", "expected"),
    [
        ("chat.completions", {"max_tokens": 10}, None, 10),
        ("chat.completions", {"max_completion_tokens": 30, "max_tokens": 10}, None, 30),
        ("chat.completions", {"max_tokens": 10, "n": 3}, None, 30),
        ("chat.completions", {}, 500, 500),
        ("chat.completions", {}, None, 4096),
        ("responses", {"max_output_tokens": 7}, 500, 7),
        ("embeddings", {"max_tokens": 7}, 500, 0),
        ("chat.completions", {"max_tokens": True}, None, 4096),
    ],
)
def test_output_bound(endpoint, payload, route_max, expected):
    assert output_tokens_bound(endpoint, payload, route_max, 4096) == expected


@pytest.mark.parametrize(
    ("prompt", "output", "prices", "expected"),
    [
        (100, 10, [PRICE], 100 * 1000 + 10 * 2000),
        (100, 10, [PRICE, DEAR], 100 * 3000 + 10 * 2000),  # dearest of each, across targets
        (100, 10, [None, PRICE], 120_000),
        (100, 10, [None], 0),
        (1, 0, [PriceBound(1, 1, 0)], 1),  # rounded up: never reserve less than the cost
        (100, 10, [FEE], 120_000 + 5_000_000),  # a per-request fee on top
        (100, 10, [PRICE, FEE, None], 120_000 + 5_000_000),
        # max_tokens × n at their bounds: held at the bound, above every limit.
        (0, (2**31 - 1) ** 2, [PRICE], MAX_AMOUNT_NUSD),
        (2**63, 2**63, [DEAR], MAX_AMOUNT_NUSD),
    ],
)
def test_reservation(prompt, output, prices, expected):
    assert reservation_nusd(prompt, output, prices) == expected


@pytest.mark.parametrize(
    ("amount", "rules", "states", "violated"),
    [
        (10, [BudgetRule("daily", 100)], [CounterState("d", 80, 10)], None),
        (11, [BudgetRule("daily", 100)], [CounterState("d", 80, 10)], 0),
        (11, [BudgetRule("daily", 100, hard=False)], [CounterState("d", 80, 10)], None),
        (
            5,
            [BudgetRule("daily", 100), BudgetRule("monthly", 50)],
            [CounterState("d", 0, 0), CounterState("m", 46, 0)],
            1,
        ),
    ],
)
def test_admission_table(amount, rules, states, violated):
    assert first_violation(amount, rules, states) == violated


def test_remaining_is_the_tightest_hard_budget_less_its_settled_spend():
    rules = [BudgetRule("daily", 100), BudgetRule("monthly", 1000), BudgetRule("total", 5, False)]
    states = [CounterState("d", 10, 20), CounterState("m", 900, 50), CounterState("t", 0, 0)]
    assert remaining_nusd(rules, states) == 90  # monthly: 1000 - 900; holds are not spend


def test_remaining_does_not_depend_on_the_size_of_a_reservation():
    """The reservation is a worst-case estimate that shrinks when the proxy recounts a
    nearly spent budget's prompt with the tokenizer: it must not move the header."""
    rules = [BudgetRule("monthly", 100)]
    bytes_bound = remaining_nusd(rules, [CounterState("m", 60, 30)])
    recounted = remaining_nusd(rules, [CounterState("m", 60, 8)])
    assert bytes_bound == recounted == 40


@pytest.mark.parametrize(
    ("nusd", "text"),
    [(500 * 10**9, "500.00"), (1, "0.000000001"), (1_500_000_000, "1.50"), (10**7, "0.01")],
)
def test_format_usd_short(nusd, text):
    assert format_usd_short(nusd) == text


def test_rejection_message():
    now = ts("2026-11-15T12:00:00")
    refused = rejection(
        "customer acme",
        "customer/acme",
        BudgetRule("monthly", 500 * 10**9),
        CounterState("2026-11", 500 * 10**9, 0),
        10**6,
        now,
    )
    assert refused.message.startswith(
        "customer acme reached its monthly budget of $500.00 "
        "(spent $500.00, resets 2026-12-01T00:00:00Z"
    )
    assert refused.retry_after_s == 15 * 86_400 + 12 * 3600


def test_only_holds_in_flight_in_the_way_means_retry_soon():
    rule, state = BudgetRule("total", 100), CounterState("total", 50, 40)
    assert retry_after_s(rule, state, 20, 0) == 1
    assert retry_after_s(rule, CounterState("total", 95, 0), 20, 0) == 0  # never


@pytest.mark.parametrize(
    ("text", "kind", "names", "label"),
    [
        ("customer/acme", "customer", ("acme",), "customer acme"),
        ("end_user/acme/p%2F9", "end_user", ("acme", "p/9"), "end user p/9 of customer acme"),
        ("tag/feature=story", "tag", ("feature=story",), "tag feature=story"),
        ("global", "global", (), "the proxy"),
    ],
)
def test_scopes(text, kind, names, label):
    assert parse_scope(text) == (kind, names)
    assert scope(kind, *names) == text
    assert scope_label(text) == label


@pytest.mark.parametrize("text", ["planet/x", "customer", "end_user/acme", "customer/a/b"])
def test_bad_scopes(text):
    with pytest.raises(ValueError):
        parse_scope(text)


def test_which_budgets_apply():
    rule = BudgetRule("daily", 1)
    book = BudgetBook(
        {
            "customer/acme": (rule,),
            "key/k1": (rule,),
            "end_users/acme": (rule,),
            "end_user/acme/vip": (),
            "tag/f=s": (rule,),
            "global": (rule,),
        },
        {"customer/acme": ()},  # run-time: no customer budget for acme after all
    )
    applicable = book.applicable("acme", "k1", "p1", ("f=s", "g=h"))
    assert applicable.scopes == ("key/k1", "tag/f=s", "global", "end_user/acme/p1")
    assert book.applicable("acme", None, "vip", ()).scopes == ("global",)
    assert not BudgetBook({}, {}).applicable("acme", "k1", "p1", ("f=s",))


@pytest.mark.parametrize(
    ("limit", "spent", "percent", "reached"),
    [(1000, 499, 50, False), (1000, 500, 50, True), (3, 1, 34, False), (3, 2, 66, True)],
)
def test_thresholds(limit, spent, percent, reached):
    assert threshold_reached(limit, spent, percent) is reached


def test_forecast():
    now = ts("2026-11-30T12:00:00")
    reset = ts("2026-12-01T00:00:00")  # 12 hours left
    assert forecast_exhausts(1000, 400, 50, now, reset) is True  # 400 + 12 × 50 = 1000
    assert forecast_exhausts(1000, 400, 49, now, reset) is False
    assert forecast_exhausts(1000, 1000, 50, now, reset) is False  # thresholds say it
    assert forecast_exhausts(1000, 400, 50, now, None) is False


def test_due_alerts():
    rule = BudgetRule("monthly", 1000, alert_at=(50, 80, 100))
    state = CounterState("2026-11", 850, 0, burn_hour_nusd=150)  # 850 + 150 × 1h
    assert due_alerts(rule, state, ts("2026-11-30T23:00:00")) == [
        "threshold:50",
        "threshold:80",
        "forecast",
    ]
    assert due_alerts(rule, state, ts("2026-11-30T23:00:00"), forecast=False)[-1] == "threshold:80"


# Properties ---------------------------------------------------------------------------

amounts = st.integers(min_value=0, max_value=10**12)


@given(
    limit=st.integers(min_value=0, max_value=10**15),
    prompt=st.integers(min_value=0, max_value=200_000),
    output=st.integers(min_value=0, max_value=100_000),
    input_price=st.decimals(min_value=0, max_value=100, places=6),
    output_price=st.decimals(min_value=0, max_value=200, places=6),
)
def test_sequential_admission_takes_exactly_what_fits(
    limit, prompt, output, input_price, output_price
):
    bound = PriceBound(int(input_price * 10**9), int(output_price * 10**9), 0)
    amount = reservation_nusd(prompt, output, [bound])
    rule, state = BudgetRule("monthly", limit), CounterState("m", 0, 0)
    admitted = 0
    while first_violation(amount, [rule], [state]) is None and admitted < 1000:
        state = CounterState("m", 0, state.held_nusd + amount)
        admitted += 1
    if amount:
        assert admitted == min(1000, limit // amount)
    assert state.held_nusd <= limit or amount == 0


@given(
    limit=st.integers(min_value=0, max_value=10**6),
    events=st.lists(
        st.tuples(st.integers(min_value=1, max_value=10**5), st.floats(0, 1), st.booleans()),
        max_size=60,
    ),
)
def test_interleaved_reserves_and_settles_never_overspend(limit, events):
    """Any interleaving of reservations and settles (actual ≤ reserved) keeps
    spent + held ≤ limit, and so spent ≤ limit at the end."""
    rule = BudgetRule("daily", limit)
    spent, held, open_holds = 0, 0, []
    for amount, fraction, settle_one in events:
        if settle_one and open_holds:
            hold = open_holds.pop(0)
            held -= hold
            spent += int(hold * fraction)
        elif first_violation(amount, [rule], [CounterState("d", spent, held)]) is None:
            held += amount
            open_holds.append(amount)
        assert spent + held <= limit
    assert spent <= limit


def test_the_largest_amount_is_above_every_limit_and_exact_in_lua() -> None:
    assert MAX_LIMIT_NUSD < MAX_AMOUNT_NUSD < 2**53
