"""The provider's report in one shape, whatever the provider: usage rows, cost rows and
the time its buckets cover. Pure value types.

Token counts follow OpenAI's sense, as the proxy's records do: `input_tokens` holds every
input token (uncached, cache reads and cache writes); the parts are also given alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Literal

__all__ = [
    "CHARGE_KINDS",
    "ChargeKind",
    "CostRow",
    "ProviderReport",
    "ReportFormatError",
    "Span",
    "UsageRow",
    "day_of",
]

# The token charges a price table knows; a cost line of any other kind (web searches,
# storage, audio input, ...) keeps the provider's own words.
ChargeKind = Literal["input", "cached_input", "cache_write_5m", "cache_write_1h", "output"]
CHARGE_KINDS: tuple[ChargeKind, ...] = (
    "input",
    "cached_input",
    "cache_write_5m",
    "cache_write_1h",
    "output",
)


class ReportFormatError(ValueError):
    """The document is not a report of the expected kind; the message says what is wrong."""


Span = tuple[int, int]  # a bucket's [start, end) in Unix seconds, UTC


def day_of(seconds: int) -> date:
    return datetime.fromtimestamp(seconds, UTC).date()


@dataclass(frozen=True, slots=True)
class UsageRow:
    """One result of one bucket of the usage report."""

    day: date
    model: str | None  # as the provider names it (a dated snapshot); None: not grouped
    project_id: str | None = None  # OpenAI project or Anthropic workspace, when grouped
    api_key_id: str | None = None
    requests: int | None = None  # Anthropic's usage report counts no requests
    input_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0
    output_tokens: int = 0

    @property
    def uncached_input_tokens(self) -> int:
        return (
            self.input_tokens
            - self.cached_input_tokens
            - self.cache_write_5m_tokens
            - self.cache_write_1h_tokens
        )


@dataclass(frozen=True, slots=True)
class CostRow:
    """One amount of one bucket of the cost report, in USD."""

    day: date
    amount_usd: Decimal
    model: str | None = None  # None: the report does not split this amount by model
    # A ChargeKind, another kind in the provider's words, or None when not split by kind.
    kind: str | None = None
    # "audio", "image", "text": a line of one modality only (its price is not the table's).
    modality: str | None = None
    quantity_tokens: Decimal | None = None  # tokens billed, where the report says
    label: str | None = None  # the line item or description as the report gives it
    project_id: str | None = None
    api_key_id: str | None = None


@dataclass(frozen=True, slots=True)
class ProviderReport:
    """What the provider reported. `usage_spans`/`cost_spans` say which time the reports
    cover (an empty bucket covers its time with "nothing"); a report not given at all has
    `has_usage`/`has_costs` False. `ignored` counts results of kinds the proxy does not
    record (images, audio, storage, ...), by their object name."""

    kind: str
    usage: tuple[UsageRow, ...] = ()
    costs: tuple[CostRow, ...] = ()
    usage_spans: tuple[Span, ...] = ()
    cost_spans: tuple[Span, ...] = ()
    has_usage: bool = False
    has_costs: bool = False
    counts_requests: bool = True  # Anthropic's usage report has no request counts
    ignored: dict[str, int] = field(default_factory=dict)
