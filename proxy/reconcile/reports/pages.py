"""What the providers' report APIs share: pages of time buckets, and error bodies. Pure."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from typing import Any

from proxy.reconcile.report import ReportFormatError

__all__ = ["buckets", "count", "decimal", "error_message", "optional_str"]


def error_message(body: Any) -> str | None:
    """The message of an error body: `{"error": {"message": ...}}` (both providers'
    documented shape), or `{"error": "..."}` (what OpenAI sends for a missing scope)."""
    if not isinstance(body, dict) or "error" not in body:
        return None
    error = body["error"]
    if isinstance(error, str):
        return error
    if isinstance(error, dict):
        message = error.get("message")
        return message if isinstance(message, str) else str(error)
    return str(error)


def buckets(document: Any, what: str) -> Iterator[dict[str, Any]]:
    """The buckets of a document: one page (`{"data": [...], "has_more", "next_page"}`),
    a list of pages, or a list of buckets (several pages' `data` joined)."""
    if isinstance(document, list):
        for item in document:
            if isinstance(item, dict) and "data" in item:
                yield from _page(item, what)
            elif isinstance(item, dict):
                yield item
            else:
                raise ReportFormatError(f"{what}: a list of pages or buckets holds {item!r}")
        return
    if isinstance(document, dict):
        yield from _page(document, what)
        return
    raise ReportFormatError(f"{what}: expected a JSON object (a page) or a list of pages")


def _page(page: dict[str, Any], what: str) -> Iterator[dict[str, Any]]:
    message = error_message(page)
    if message is not None:
        raise ReportFormatError(f"{what}: this is an error answer, not a report: {message}")
    data = page.get("data")
    if not isinstance(data, list):
        raise ReportFormatError(f"{what}: a page must have a 'data' list of buckets")
    for bucket in data:
        if not isinstance(bucket, dict):
            raise ReportFormatError(f"{what}: a bucket must be an object, got {bucket!r}")
        yield bucket


def count(result: dict[str, Any], name: str, what: str) -> int:
    """A token or request count: a JSON integer (an integral float is taken too: some
    exports write 59200.0); missing or null is 0."""
    value = result.get(name)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ReportFormatError(f"{what}: {name} must be a number, got {value!r}")
    if isinstance(value, float):
        if not value.is_integer():
            raise ReportFormatError(f"{what}: {name} must be a whole number, got {value!r}")
        value = int(value)
    if value < 0:
        raise ReportFormatError(f"{what}: {name} must not be negative, got {value!r}")
    return value


def decimal(value: Any, what: str) -> Decimal:
    """An amount as the reports write it: a JSON number or a decimal string of any
    precision ("0.000004500000000000000000000000000000000", "0E-6176"). A float is read
    through its shortest repr, which is the decimal the provider wrote."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ReportFormatError(f"{what}: an amount must be a number or a string, got {value!r}")
    try:
        amount = Decimal(repr(value) if isinstance(value, float) else value)
    except InvalidOperation:
        raise ReportFormatError(f"{what}: {value!r} is not a decimal amount") from None
    if not amount.is_finite():
        raise ReportFormatError(f"{what}: {value!r} is not a finite amount")
    return amount


def optional_str(result: dict[str, Any], name: str) -> str | None:
    value = result.get(name)
    return value if isinstance(value, str) and value else None
