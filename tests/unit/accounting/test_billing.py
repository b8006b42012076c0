"""Billing: what a customer is charged, from the exact cost, rounded once."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.accounting.billing import NO_MARKUP, Billing, Markup
from proxy.config import BillingConfig, parse_config
from proxy.errors import ConfigError


def markup(pct: str, per_request: str = "0") -> Markup:
    return Markup.of(BillingConfig(markup_pct=Decimal(pct), per_request_usd=Decimal(per_request)))


@pytest.mark.parametrize(
    ("pct", "per_request", "cost_fusd", "billable_nusd"),
    [
        ("0", "0", 420_000 * 10**6, 420_000),  # no markup: what it cost
        ("20", "0", 420_000 * 10**6, 504_000),
        ("12.5", "0", 1_000 * 10**6, 1_125),
        ("0", "0.001", 0, 1_000_000),  # the fee alone
        ("10", "0.000000001", 5 * 10**6, 6),  # 5 × 1.1 + 1 = 6.5 → 6 (half to even)
        ("-100", "0", 9 * 10**6, 0),  # a free customer
        # from the exact cost: 0.4 nUSD of cost (rounded alone: 0) × 1.5 = 0.6 → 1
        ("50", "0", 400_000, 1),
        # ties to even: 2.5 → 2, 3.5 → 4
        ("150", "0", 10**6, 2),
        ("250", "0", 10**6, 4),
    ],
)
def test_billable_is_cost_times_markup_plus_fee_rounded_once(
    pct: str, per_request: str, cost_fusd: int, billable_nusd: int
) -> None:
    assert markup(pct, per_request).billable_nusd(cost_fusd) == billable_nusd


@given(
    pct=st.decimals(min_value=-100, max_value=1000, places=4),
    per_request=st.decimals(min_value=0, max_value=1, places=9),
    cost_fusd=st.integers(min_value=0, max_value=10**20),
)
def test_billable_equals_the_exact_fraction_rounded_half_to_even(
    pct: Decimal, per_request: Decimal, cost_fusd: int
) -> None:
    exact = Fraction(cost_fusd, 10**15) * (1 + Fraction(pct) / 100) + Fraction(per_request)
    assert markup(str(pct), str(per_request)).billable_nusd(cost_fusd) == round(exact * 10**9)


def test_a_customer_markup_replaces_the_global_one() -> None:
    config = parse_config(
        {
            "providers": {"p": {"base_url": "http://127.0.0.1:1"}},
            "models": {"m": {"targets": [{"provider": "p", "model": "m"}]}},
            "billing": {"markup_pct": "20"},
            "customers": {
                "acme": {"billing": {"markup_pct": "5", "per_request_usd": "0.01"}},
                "globex": {"rpm": 10},
            },
        },
        env={},
    )
    billing = Billing.from_config(config)
    assert billing.for_customer("acme") == markup("5", "0.01")
    assert billing.for_customer("globex") == markup("20")
    assert billing.for_customer("anyone") == markup("20")
    assert Billing().for_customer("acme") == NO_MARKUP


@pytest.mark.parametrize(
    ("billing", "message"),
    [
        ({"markup_pct": "-101"}, "greater than or equal to -100"),
        ({"per_request_usd": "0.0000000001"}, "9 decimal places"),
        ({"markup": 5}, "Extra inputs"),
    ],
)
def test_bad_billing_is_named(billing: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(
            {
                "providers": {"p": {"base_url": "http://127.0.0.1:1"}},
                "models": {"m": {"targets": [{"provider": "p", "model": "m"}]}},
                "billing": billing,
            },
            env={},
        )
