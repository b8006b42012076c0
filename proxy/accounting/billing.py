"""What a customer is charged beside what a request cost: a markup and a per-request fee.
Pure.

billable = cost x (1 + markup_pct/100) + per_request_usd, computed from the exact cost (in
femto-dollars, before the cost itself is rounded) and rounded once to the nano-dollar,
half to even. A request the provider did not bill is not charged; one whose cost is
unknown (no price) has an unknown billable amount too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from proxy.accounting.pricing import FUSD_PER_NUSD, NUSD_PER_USD, round_half_even
from proxy.config import BillingConfig, Config

__all__ = ["NO_MARKUP", "Billing", "Markup"]


@dataclass(frozen=True, slots=True)
class Markup:
    # The factor (1 + markup_pct/100) as an exact fraction.
    numerator: int
    denominator: int
    per_request_nusd: int = 0

    @classmethod
    def of(cls, config: BillingConfig) -> Markup:
        numerator, denominator = (100 + config.markup_pct).as_integer_ratio()
        per_request = config.per_request_usd * NUSD_PER_USD
        return cls(numerator, denominator * 100, int(per_request))

    def billable_nusd(self, cost_fusd: int) -> int:
        fee_fusd = self.per_request_nusd * FUSD_PER_NUSD
        numerator = cost_fusd * self.numerator + fee_fusd * self.denominator
        return round_half_even(numerator, self.denominator * FUSD_PER_NUSD)


NO_MARKUP = Markup(1, 1)


@dataclass(frozen=True, slots=True)
class Billing:
    """The global markup and each customer's own, where the config gives one."""

    default: Markup = NO_MARKUP
    customers: Mapping[str, Markup] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: Config) -> Billing:
        return cls(
            default=Markup.of(config.billing),
            customers={
                name: Markup.of(customer.billing)
                for name, customer in config.customers.items()
                if customer.billing is not None
            },
        )

    def for_customer(self, customer: str) -> Markup:
        return self.customers.get(customer, self.default)
