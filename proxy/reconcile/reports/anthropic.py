"""Anthropic's Admin API usage report (`/v1/organizations/usage_report/messages`) and cost
report (`/v1/organizations/cost_report`), parsed as returned. Pure.

Usage results split input into `uncached_input_tokens`, `cache_read_input_tokens` and
`cache_creation.ephemeral_{5m,1h}_input_tokens`, and count no requests. Cost amounts are
decimal strings in cents ("123.45" is $1.2345); with `group_by[]=description` each one
names its `model` and `token_type`. A workspace is reported as the row's project.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
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

__all__ = ["cost_row", "parse", "usage_row"]

_TOKEN_TYPES: dict[str, ChargeKind] = {
    "uncached_input_tokens": "input",
    "cache_read_input_tokens": "cached_input",
    "cache_creation.ephemeral_5m_input_tokens": "cache_write_5m",
    "cache_creation.ephemeral_1h_input_tokens": "cache_write_1h",
    "output_tokens": "output",
}


def parse(usage_documents: Sequence[Any], cost_documents: Sequence[Any]) -> ProviderReport:
    usage: list[UsageRow] = []
    usage_spans: list[Span] = []
    for document in usage_documents:
        for bucket in buckets(document, "usage report"):
            span = _span(bucket, "usage report")
            usage_spans.append(span)
            usage.extend(usage_row(r, span[0]) for r in _results(bucket, "usage report"))
    costs: list[CostRow] = []
    cost_spans: list[Span] = []
    for document in cost_documents:
        for bucket in buckets(document, "cost report"):
            span = _span(bucket, "cost report")
            cost_spans.append(span)
            costs.extend(cost_row(r, span[0]) for r in _results(bucket, "cost report"))
    return ProviderReport(
        kind="anthropic",
        usage=tuple(usage),
        costs=tuple(costs),
        usage_spans=tuple(usage_spans),
        cost_spans=tuple(cost_spans),
        has_usage=bool(usage_documents),
        has_costs=bool(cost_documents),
        counts_requests=False,
    )


def _time(value: Any, what: str) -> int:
    if not isinstance(value, str):
        raise ReportFormatError(f"{what}: bucket times must be RFC 3339 strings, got {value!r}")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ReportFormatError(f"{what}: {value!r} is not an RFC 3339 time") from None
    if moment.tzinfo is None:
        raise ReportFormatError(f"{what}: {value!r} has no time zone")
    return int(moment.timestamp())


def _span(bucket: dict[str, Any], what: str) -> Span:
    start = _time(bucket.get("starting_at"), what)
    end = _time(bucket.get("ending_at"), what)
    if end < start:
        raise ReportFormatError(f"{what}: a bucket ends before it starts")
    return start, end


def _results(bucket: dict[str, Any], what: str) -> list[dict[str, Any]]:
    results = bucket.get("results", [])
    if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
        raise ReportFormatError(f"{what}: a bucket's results must be a list of objects")
    return results


def usage_row(result: dict[str, Any], start: int) -> UsageRow:
    what = "usage report"
    creation = result.get("cache_creation") or {}
    if not isinstance(creation, dict):
        raise ReportFormatError(f"{what}: cache_creation must be an object")
    uncached = count(result, "uncached_input_tokens", what)
    cached = count(result, "cache_read_input_tokens", what)
    write_5m = count(creation, "ephemeral_5m_input_tokens", what)
    write_1h = count(creation, "ephemeral_1h_input_tokens", what)
    return UsageRow(
        day=day_of(start),
        model=optional_str(result, "model"),
        project_id=optional_str(result, "workspace_id"),
        api_key_id=optional_str(result, "api_key_id"),
        requests=None,
        input_tokens=uncached + cached + write_5m + write_1h,
        cached_input_tokens=cached,
        cache_write_5m_tokens=write_5m,
        cache_write_1h_tokens=write_1h,
        output_tokens=count(result, "output_tokens", what),
    )


def cost_row(result: dict[str, Any], start: int) -> CostRow:
    what = "cost report"
    currency = result.get("currency", "USD")
    if not isinstance(currency, str) or currency.upper() != "USD":
        raise ReportFormatError(f"{what}: only USD amounts are compared, got {currency!r}")
    if "amount" not in result:
        raise ReportFormatError(f"{what}: a result needs an amount")
    cents = decimal(result["amount"], f"{what}: amount")
    cost_type = optional_str(result, "cost_type")
    token_type = optional_str(result, "token_type")
    kind: str | None
    if token_type is not None:
        kind = _TOKEN_TYPES.get(token_type, token_type)
    else:
        kind = cost_type if cost_type != "tokens" else None
    return CostRow(
        day=day_of(start),
        amount_usd=cents / 100,  # the amount is in cents
        model=optional_str(result, "model"),
        kind=kind,
        label=optional_str(result, "description"),
        project_id=optional_str(result, "workspace_id"),
    )
