"""OpenAI's organization Usage API (`/v1/organization/usage/completions`, `/embeddings`)
and Costs API (`/v1/organization/costs`), parsed as returned. Pure.

Usage results carry `input_tokens` (every input token, cached and cache writes
included), `input_cached_tokens`, `input_cache_write_tokens` (newer), `output_tokens` and
`num_model_requests`; `model` is a dated snapshot when grouped by model. Costs carry
`amount.value` (a JSON number or a decimal string of any precision) per `line_item`,
"<model>, <kind>" ("gpt-4o-mini-2024-07-18, cached input"); the line item grammar is not
documented, so it is read best effort (see `split_line_item`).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from proxy.reconcile.report import (
    ChargeKind,
    CostRow,
    ProviderReport,
    ReportFormatError,
    Span,
    UsageRow,
    day_of,
)
from proxy.reconcile.reports.pages import buckets, count, decimal, optional_str

__all__ = ["cost_row", "parse", "split_line_item", "usage_row"]

_USAGE_PREFIX = "organization.usage."
# Results of these kinds hold the tokens the proxy records; other usage kinds (images,
# audio, moderations, storage, tool calls) are counted as ignored.
_TOKEN_RESULTS = frozenset(
    {"organization.usage.completions.result", "organization.usage.embeddings.result"}
)
_COSTS = "organization.costs.result"
_KIND_WORDS: dict[str, ChargeKind] = {
    "input": "input",
    "cached input": "cached_input",
    "cache write": "cache_write_5m",  # OpenAI has one cache write; it is not timed
    "cache writes": "cache_write_5m",
    "output": "output",
}
_MODALITIES = ("audio", "image", "text")


def parse(usage_documents: Sequence[Any], cost_documents: Sequence[Any]) -> ProviderReport:
    usage: list[UsageRow] = []
    usage_spans: list[Span] = []
    ignored: dict[str, int] = {}
    for document in usage_documents:
        for bucket in buckets(document, "usage report"):
            span = _span(bucket, "usage report")
            usage_spans.append(span)
            for result in _results(bucket, "usage report"):
                row = usage_row(result, span[0])
                if row is None:
                    name = str(result.get("object"))
                    ignored[name] = ignored.get(name, 0) + 1
                else:
                    usage.append(row)
    costs: list[CostRow] = []
    cost_spans: list[Span] = []
    for document in cost_documents:
        for bucket in buckets(document, "costs report"):
            span = _span(bucket, "costs report")
            cost_spans.append(span)
            costs.extend(cost_row(result, span[0]) for result in _results(bucket, "costs report"))
    return ProviderReport(
        kind="openai",
        usage=tuple(usage),
        costs=tuple(costs),
        usage_spans=tuple(usage_spans),
        cost_spans=tuple(cost_spans),
        has_usage=bool(usage_documents),
        has_costs=bool(cost_documents),
        ignored=ignored,
    )


def _span(bucket: dict[str, Any], what: str) -> Span:
    start, end = bucket.get("start_time"), bucket.get("end_time")
    if not isinstance(start, int) or not isinstance(end, int) or isinstance(start, bool):
        raise ReportFormatError(f"{what}: a bucket needs integer start_time and end_time")
    if end < start:
        raise ReportFormatError(f"{what}: a bucket ends ({end}) before it starts ({start})")
    return start, end


def _results(bucket: dict[str, Any], what: str) -> list[dict[str, Any]]:
    results = bucket.get("results", [])
    if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
        raise ReportFormatError(f"{what}: a bucket's results must be a list of objects")
    return results


def usage_row(result: dict[str, Any], start_time: int) -> UsageRow | None:
    """A completions or embeddings result of a bucket starting at `start_time`; None
    for results of other usage kinds."""
    kind = result.get("object")
    if not isinstance(kind, str) or not kind.startswith(_USAGE_PREFIX):
        raise ReportFormatError(f"usage report: not a usage result: object {kind!r}")
    if kind not in _TOKEN_RESULTS:
        return None
    what = f"usage report ({kind})"
    return UsageRow(
        day=day_of(start_time),
        model=optional_str(result, "model"),
        project_id=optional_str(result, "project_id"),
        api_key_id=optional_str(result, "api_key_id"),
        requests=count(result, "num_model_requests", what),
        input_tokens=count(result, "input_tokens", what),
        cached_input_tokens=count(result, "input_cached_tokens", what),
        cache_write_5m_tokens=count(result, "input_cache_write_tokens", what),
        output_tokens=count(result, "output_tokens", what),
    )


def cost_row(result: dict[str, Any], start_time: int) -> CostRow:
    """A costs result of a bucket starting at `start_time`."""
    kind = result.get("object", _COSTS)
    if kind != _COSTS:
        raise ReportFormatError(f"costs report: not a costs result: object {kind!r}")
    amount = result.get("amount")
    if not isinstance(amount, dict) or "value" not in amount:
        raise ReportFormatError("costs report: a result needs amount.value")
    currency = amount.get("currency", "usd")
    if not isinstance(currency, str) or currency.lower() != "usd":
        raise ReportFormatError(f"costs report: only USD amounts are compared, got {currency!r}")
    label = optional_str(result, "line_item")
    model, charge, modality = split_line_item(label) if label else (None, None, None)
    return CostRow(
        day=day_of(start_time),
        amount_usd=decimal(amount["value"], "costs report: amount.value"),
        model=model,
        kind=charge,
        modality=modality,
        quantity_tokens=_quantity_tokens(result, charge),
        label=label,
        project_id=optional_str(result, "project_id"),
        api_key_id=optional_str(result, "api_key_id"),
    )


def _quantity_tokens(result: dict[str, Any], charge: str | None) -> Decimal | None:
    quantity = result.get("quantity")
    if quantity is None or charge not in _KIND_WORDS.values():
        return None
    tokens = decimal(quantity, "costs report: quantity")
    unit = result.get("quantity_unit")
    if unit == "1000_tokens":
        return tokens * 1000
    # Before `quantity_unit` existed, token lines gave their quantity in tokens.
    return tokens if unit in (None, "tokens") else None


def split_line_item(label: str) -> tuple[str, str | None, str | None]:
    """(model, kind, modality) of a line item, best effort:

    "gpt-4o-mini-2024-07-18, cached input" → (the model, "cached_input", None);
    "gpt-4o-audio-preview-2024-12-17 audio, input" or "<model>, audio input" → modality
    "audio"; "evals | gpt-4o-mini-2024-07-18, input" keeps the surface in the model name
    (that traffic never passes through a proxy); "ft-gpt-4o-2024-08-06, input" is a
    fine-tune's base. A line without ", " is a charge of its own ("assistants api | file
    search"): its label is the model and its kind None.
    """
    left, sep, right = label.rpartition(", ")
    if not sep:
        return label, None, None
    words = right.strip().lower()
    modality = None
    first, _, rest = words.partition(" ")
    if first in _MODALITIES and rest:
        modality, words = first, rest
    model = left.strip()
    head, _, last = model.rpartition(" ")
    if head and last.lower() in _MODALITIES:
        model, modality = head, last.lower()
    kind = _KIND_WORDS.get(words, words)
    return model, kind, modality
