"""Where a budget scope's past spend is kept, and which days a period covers. Pure tables."""

from __future__ import annotations

from datetime import date

import pytest

from proxy.budgets.alert_rules import refusal_exhausts
from proxy.budgets.rules import BudgetRule, CounterState
from proxy.budgets.seed import SpendSource, period_window, spend_source
from tests.support.records import ts


@pytest.mark.parametrize(
    ("scope", "source"),
    [
        ("customer/acme", SpendSource("acme", "base")),
        ("end_user/acme/p%2F9", SpendSource("acme", "end_user", "p/9")),
        ("tag/feature=story", SpendSource(None, "tag", "feature=story")),
        ("global", SpendSource(None, "base")),
        ("key/acme-prod", None),  # the aggregates have no key dimension
        ("end_users/acme", None),  # a template: seeded end user by end user
    ],
)
def test_spend_source(scope: str, source: SpendSource | None):
    assert spend_source(scope) == source


@pytest.mark.parametrize(
    ("period", "iso", "window"),
    [
        ("daily", "2026-11-20T23:59:59", ("2026-11-20", date(2026, 11, 20), date(2026, 11, 20))),
        ("weekly", "2026-11-20T12:00:00", ("2026-11-16", date(2026, 11, 16), date(2026, 11, 20))),
        ("weekly", "2026-11-16T00:00:00", ("2026-11-16", date(2026, 11, 16), date(2026, 11, 16))),
        ("monthly", "2024-02-29T12:00:00", ("2024-02", date(2024, 2, 1), date(2024, 2, 29))),
        ("total", "2026-11-20T12:00:00", ("total", date(2026, 8, 12), date(2026, 11, 20))),
    ],
)
def test_period_window(period: str, iso: str, window: tuple[str, date, date]):
    assert period_window(period, ts(iso), history_days=100) == window  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("rule", "spent", "held", "amount", "exhausts"),
    [
        (BudgetRule("daily", 100), 90, 0, 11, True),  # cannot fit beside settled spend
        (BudgetRule("daily", 100), 90, 0, 10, False),  # fits exactly: not refused for it
        (BudgetRule("daily", 100), 50, 45, 11, False),  # only waits for requests in flight
        (BudgetRule("daily", 100, alert_at=(50, 80)), 90, 0, 11, False),  # no 100% alert
        (BudgetRule("daily", 100, hard=False), 90, 0, 11, False),  # soft: never refuses
    ],
)
def test_a_refusal_announces_the_100_percent_alert(rule, spent, held, amount, exhausts):
    assert refusal_exhausts(rule, CounterState("d", spent, held), amount) is exhausts
