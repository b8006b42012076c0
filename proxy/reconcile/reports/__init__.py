"""Parsers of the providers' usage and cost reports, exactly as their APIs return them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from proxy.reconcile.report import ProviderReport, ReportFormatError
from proxy.reconcile.reports import anthropic, openai

__all__ = ["KINDS", "parse_report"]

KINDS = ("openai", "anthropic")


def parse_report(
    kind: str, usage_documents: Sequence[Any], cost_documents: Sequence[Any]
) -> ProviderReport:
    """The report of provider `kind` from its usage and cost documents (parsed JSON: each
    one page, a list of pages, or a list of buckets)."""
    if kind == "openai":
        return openai.parse(usage_documents, cost_documents)
    if kind == "anthropic":
        return anthropic.parse(usage_documents, cost_documents)
    raise ReportFormatError(f"unknown report kind {kind!r} (known: {', '.join(KINDS)})")
