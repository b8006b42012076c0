"""The value types that flow from the request path into the store and back out of it.

Money is an integer number of nano-dollars (1e-9 USD) everywhere inside the program.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Literal

__all__ = [
    "METRIC_FIELDS",
    "MONEY_FIELDS",
    "AggregateRow",
    "Breakdown",
    "Totals",
    "Usage",
    "UsageRecord",
    "UsageSource",
    "WhatIfRow",
]

UsageSource = Literal["upstream", "estimated"]
Breakdown = Literal["base", "tag", "end_user"]


@dataclass(frozen=True, slots=True)
class Usage:
    """What a request is billed for, in OpenAI's sense of the counts: every part is
    included in its total. `input_tokens` holds every prompt token (cache reads, cache
    writes, audio and image tokens included); `output_tokens` every token the provider
    bills as output (reasoning, hidden thinking, audio and image included)."""

    input_tokens: int = 0
    cached_input_tokens: int = 0  # cache reads, part of input
    output_tokens: int = 0
    reasoning_tokens: int = 0  # part of output
    cache_write_5m_tokens: int = 0  # written to a 5-minute cache, part of input
    cache_write_1h_tokens: int = 0  # written to a 1-hour cache, part of input
    input_audio_tokens: int = 0  # part of input
    input_image_tokens: int = 0  # part of input
    output_audio_tokens: int = 0  # part of output
    output_image_tokens: int = 0  # part of output
    web_search_requests: int = 0  # server-side searches the provider bills per call
    service_tier: str | None = None  # as the response names it ("default", "flex", ...)
    provider_cost_nusd: int | None = None  # the provider's own figure, where it reports one
    source: UsageSource = "upstream"


@dataclass(slots=True)
class UsageRecord:
    """One proxied request, as billed. `cost_nusd is None` means the model had no price."""

    request_id: str
    ts_ms: int  # UTC epoch milliseconds when the request arrived
    customer: str
    route: str  # the model name the client sent
    provider: str  # the provider's name in the config
    model: str  # the upstream model name, as billed
    endpoint: str  # "chat.completions", "completions", "embeddings", "responses", "messages"
    status: int
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    cost_nusd: int | None = None
    usage_source: UsageSource = "upstream"
    end_user: str | None = None
    tags: tuple[str, ...] = ()  # sorted "key=value" strings
    key_id: str | None = None
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    attempts: int = 1
    # Alternative "ns/model" -> what the same tokens would have cost there (see whatif.py).
    what_if: dict[str, int] = field(default_factory=dict)
    # The parts of usage beyond the four counts above (see Usage), and money beside cost.
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0
    input_audio_tokens: int = 0
    input_image_tokens: int = 0
    output_audio_tokens: int = 0
    output_image_tokens: int = 0
    web_search_requests: int = 0
    service_tier: str | None = None
    provider_cost_nusd: int | None = None  # what the provider says it cost, where it says
    billable_nusd: int | None = None  # what the customer is charged (billing markup)

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _RECORD_FIELDS}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UsageRecord:
        values = {k: v for k, v in data.items() if k in _RECORD_FIELD_SET}
        values["tags"] = tuple(values.get("tags") or ())
        values["what_if"] = dict(values.get("what_if") or {})
        return cls(**values)


_RECORD_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(UsageRecord))
_RECORD_FIELD_SET = frozenset(_RECORD_FIELDS)

# The additive counters kept for every aggregate, in a fixed order (stores rely on it).
METRIC_FIELDS: tuple[str, ...] = (
    "cost_nusd",
    "requests",
    "unpriced_requests",
    "input_tokens",
    "cached_input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "cache_write_5m_tokens",
    "cache_write_1h_tokens",
    "input_audio_tokens",
    "output_audio_tokens",
    "web_search_requests",
    "estimated_requests",
    "billable_nusd",
)
# Metrics that are money (nano-dollars): written as "<name without _nusd>_usd" strings.
MONEY_FIELDS = frozenset({"cost_nusd", "billable_nusd"})


@dataclass(slots=True)
class Totals:
    cost_nusd: int = 0
    requests: int = 0
    unpriced_requests: int = 0
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0
    input_audio_tokens: int = 0
    output_audio_tokens: int = 0
    web_search_requests: int = 0
    estimated_requests: int = 0
    billable_nusd: int = 0

    @classmethod
    def of(cls, record: UsageRecord) -> Totals:
        return cls(
            cost_nusd=record.cost_nusd or 0,
            requests=1,
            unpriced_requests=1 if record.cost_nusd is None else 0,
            input_tokens=record.input_tokens,
            cached_input_tokens=record.cached_input_tokens,
            output_tokens=record.output_tokens,
            reasoning_tokens=record.reasoning_tokens,
            cache_write_5m_tokens=record.cache_write_5m_tokens,
            cache_write_1h_tokens=record.cache_write_1h_tokens,
            input_audio_tokens=record.input_audio_tokens,
            output_audio_tokens=record.output_audio_tokens,
            web_search_requests=record.web_search_requests,
            estimated_requests=1 if record.usage_source == "estimated" else 0,
            billable_nusd=record.billable_nusd or 0,
        )

    def add(self, other: Totals) -> None:
        for name in METRIC_FIELDS:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_tuple(self) -> tuple[int, ...]:
        return tuple(getattr(self, name) for name in METRIC_FIELDS)


@dataclass(slots=True)
class AggregateRow:
    """Totals of one customer on one UTC day for one (route, provider, model).

    `dim` is the tag ("key=value") for the tag breakdown or the end user for the end_user
    breakdown; "" there means "none"; it is None in the base breakdown.
    """

    customer: str
    day: str  # ISO date, UTC
    route: str
    provider: str
    model: str
    totals: Totals = field(default_factory=Totals)
    dim: str | None = None


@dataclass(slots=True)
class WhatIfRow:
    """One alternative's figures for one customer, UTC day and (route, provider, model).

    `totals` are the actual figures of the requests it covers (those recorded while the
    rule was in force); `what_if_nusd` is what they would have cost at the alternative.
    """

    customer: str
    day: str
    route: str
    provider: str
    model: str
    alternative: str
    totals: Totals = field(default_factory=Totals)
    what_if_nusd: int = 0
