"""The console's HTML helpers: money to the cent with the exact value, escaping."""

from __future__ import annotations

import pytest

from proxy.accounting.records import Totals
from proxy.console.html import esc, money, money_of, query, table


@pytest.mark.parametrize(
    ("nusd", "shown", "exact"),
    [
        (0, "$0.00", "0.000000000"),
        (1, "&lt;$0.01", "0.000000001"),  # spent something: never shown as $0.00
        (4_999_999, "&lt;$0.01", "0.004999999"),
        (5_000_000, "&lt;$0.01", "0.005000000"),  # rounds to $0.00 (to even): not zero
        (15_000_000, "$0.02", "0.015000000"),
        (25_000_000, "$0.02", "0.025000000"),
        (1_234_567_891_234, "$1,234.57", "1234.567891234"),
        (-1_500_000_000, "-$1.50", "-1.500000000"),
    ],
)
def test_money_to_the_cent_with_the_exact_amount(nusd: int, shown: str, exact: str) -> None:
    html = money(nusd)
    assert f">{shown}</span>" in html
    assert f'title="${exact}"' in html and f'data-usd="{exact}"' in html


def test_unpriced_is_never_a_zero() -> None:
    assert ">unpriced<" in money_of(Totals(requests=3, unpriced_requests=3))
    mixed = money_of(Totals(cost_nusd=10**9, requests=3, unpriced_requests=1))
    assert ">$1.00<" in mixed and "+1 unpriced" in mixed
    assert "unpriced" not in money_of(Totals(cost_nusd=0, requests=2))


def test_values_are_escaped() -> None:
    hostile = '<script>alert("x")</script>'
    assert esc(hostile) == "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"
    assert "<script>" not in table(["a"], [[esc(hostile)]])
    assert (
        query("/ui/requests", {"customer": "a&b c", "model": ""}) == "/ui/requests?customer=a%26b+c"
    )
