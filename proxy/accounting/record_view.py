"""One usage record as the outside world sees it: the answer of `GET /admin/v1/usage/{id}`
and each line of the usage export are the same object. Pure.

Money leaves as decimal strings with 9 decimals (`cost_usd`, `provider_cost_usd`,
`billable_usd`, and each `what_if` alternative), never as floats or nano-dollar integers;
`tags` is a list and `what_if` an object; `time` (ISO-8601 UTC) stands beside `ts_ms`.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from proxy.accounting.pricing import format_usd
from proxy.accounting.records import UsageRecord
from proxy.utc import iso_utc

__all__ = ["RECORD_JSON_FIELDS", "record_json"]

# Money fields of the record and the names they leave under.
_MONEY = {
    "cost_nusd": "cost_usd",
    "provider_cost_nusd": "provider_cost_usd",
    "billable_nusd": "billable_usd",
}
_NAMES = tuple(_MONEY.get(f.name, f.name) for f in fields(UsageRecord))
_AT = _NAMES.index("ts_ms") + 1
RECORD_JSON_FIELDS: tuple[str, ...] = (*_NAMES[:_AT], "time", *_NAMES[_AT:])


def _usd(nusd: int | None) -> str | None:
    return None if nusd is None else format_usd(nusd)


def record_json(record: UsageRecord) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in record.to_dict().items():
        if name in _MONEY:
            out[_MONEY[name]] = _usd(value)
        elif name == "ts_ms":
            out[name] = value
            out["time"] = iso_utc(value)
        elif name == "tags":
            out[name] = list(value)
        elif name == "what_if":
            out[name] = {alt: format_usd(nusd) for alt, nusd in sorted(value.items())}
        else:
            out[name] = value
    return out
