"""Spend queries: parsing the question and summing aggregate rows into the answer. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from proxy.access.identifiers import normal_id
from proxy.accounting.pricing import format_usd, parse_usd
from proxy.accounting.records import (
    METRIC_FIELDS,
    MONEY_FIELDS,
    AggregateRow,
    Breakdown,
    Totals,
    WhatIfRow,
)
from proxy.accounting.whatif import TOKENIZER_NOTE

__all__ = [
    "DIMENSIONS",
    "SpendQuery",
    "SpendQueryError",
    "summarize",
    "summarize_what_if",
    "totals_from_json",
    "totals_json",
]

DIMENSIONS = ("customer", "model", "route", "provider", "day", "tag", "end_user")
MAX_RANGE_DAYS = 366


class SpendQueryError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class SpendQuery:
    customer: str | None
    from_day: date
    to_day: date
    group_by: tuple[str, ...] = ()
    what_if: bool = False  # also answer what the same requests would cost elsewhere

    @property
    def breakdown(self) -> Breakdown:
        if "tag" in self.group_by:
            return "tag"
        if "end_user" in self.group_by:
            return "end_user"
        return "base"

    @classmethod
    def parse(cls, params: Mapping[str, str], *, today: date | None = None) -> SpendQuery:
        """From query parameters `customer`, `from`, `to`, `group_by` (see the README)."""
        today = today or datetime.now(UTC).date()
        # A missing bound completes the month of the other one (or of today).
        from_day = _parse_day(params.get("from"), "from")
        to_day = _parse_day(params.get("to"), "to")
        from_day = from_day or (to_day or today).replace(day=1)
        to_day = to_day or _month_end(from_day)
        if to_day < from_day:
            raise SpendQueryError(f"'to' ({to_day}) is before 'from' ({from_day})")
        if (to_day - from_day).days >= MAX_RANGE_DAYS:
            raise SpendQueryError(f"a query covers at most {MAX_RANGE_DAYS} days")
        group_by = tuple(
            part.strip() for part in (params.get("group_by") or "").split(",") if part.strip()
        )
        unknown = [dim for dim in group_by if dim not in DIMENSIONS]
        if unknown:
            raise SpendQueryError(
                f"unknown group_by dimension(s) {', '.join(unknown)}; "
                f"use any of {', '.join(DIMENSIONS)}"
            )
        if len(set(group_by)) != len(group_by):
            raise SpendQueryError("group_by names a dimension twice")
        if "tag" in group_by and "end_user" in group_by:
            raise SpendQueryError("group_by cannot combine 'tag' and 'end_user'")
        what_if = (params.get("what_if") or "0").lower()
        if what_if not in ("0", "1", "true", "false"):
            raise SpendQueryError(f"'what_if' must be 1 or 0, got {what_if!r}")
        if what_if in ("1", "true") and {"tag", "end_user"} & set(group_by):
            raise SpendQueryError("what_if figures group by customer, model, route, provider, day")
        customer = normal_id(params["customer"]) if params.get("customer") else None
        return cls(
            customer=customer,
            from_day=from_day,
            to_day=to_day,
            group_by=group_by,
            what_if=what_if in ("1", "true"),
        )


def _parse_day(text: str | None, name: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise SpendQueryError(f"'{name}' must be a date like 2026-11-01, got {text!r}") from None


def _month_end(day: date) -> date:
    next_month = day.replace(day=28).toordinal() + 4
    first_of_next = date.fromordinal(next_month).replace(day=1)
    return date.fromordinal(first_of_next.toordinal() - 1)


def _json_name(metric: str) -> str:
    return metric.removesuffix("_nusd") + "_usd" if metric in MONEY_FIELDS else metric


def totals_from_json(data: Mapping[str, Any]) -> Totals:
    """The inverse of `totals_json`: a spend-API total (or group) back as Totals, exactly
    (money from its decimal string)."""
    values: dict[str, int] = {}
    for name in METRIC_FIELDS:
        value = data[_json_name(name)]
        values[name] = parse_usd(str(value)) if name in MONEY_FIELDS else int(value)
    return Totals(**values)


def totals_json(totals: Totals) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in METRIC_FIELDS:
        value = getattr(totals, name)
        out[_json_name(name)] = format_usd(value) if name in MONEY_FIELDS else value
    return out


def _dimension_value(row: AggregateRow | WhatIfRow, dim: str) -> str | None:
    if dim in ("tag", "end_user"):
        assert isinstance(row, AggregateRow)
        return row.dim or None  # "" is "requests without one"
    value = {
        "customer": row.customer,
        "model": row.model,
        "route": row.route,
        "provider": row.provider,
        "day": row.day,
    }[dim]
    return value


def summarize(
    query: SpendQuery,
    base_rows: Iterable[AggregateRow],
    breakdown_rows: Iterable[AggregateRow] | None = None,
) -> dict[str, Any]:
    """The spend answer. `total` always comes from the base rows; groups come from the
    breakdown rows when grouping by tag or end user (a request with two tags counts in
    both tag groups, so only then may the groups add up to more than the total)."""
    base_list = list(base_rows)
    total = Totals()
    for row in base_list:
        total.add(row.totals)
    answer: dict[str, Any] = {
        "from": query.from_day.isoformat(),
        "to": query.to_day.isoformat(),
        "customer": query.customer,
        "group_by": list(query.group_by),
        "total": totals_json(total),
    }
    if not query.group_by:
        return answer
    groups: dict[tuple[str | None, ...], Totals] = {}
    for row in base_list if breakdown_rows is None else breakdown_rows:
        key = tuple(_dimension_value(row, dim) for dim in query.group_by)
        groups.setdefault(key, Totals()).add(row.totals)
    answer["groups"] = [
        {**dict(zip(query.group_by, key, strict=True)), **totals_json(groups[key])}
        for key in sorted(groups, key=lambda k: tuple("" if v is None else v for v in k))
    ]
    return answer


def summarize_what_if(query: SpendQuery, rows: Iterable[WhatIfRow]) -> dict[str, Any]:
    """Actual vs alternative cost per alternative and the query's group_by dimensions.

    The actual figures are those of the requests each alternative covers. `saving_usd`
    is actual minus alternative (positive: the alternative is cheaper); it is null where
    some of the requests had no price, since their actual cost is unknown.
    """
    groups: dict[tuple[str | None, ...], tuple[Totals, list[int]]] = {}
    for row in rows:
        key = (row.alternative, *(_dimension_value(row, dim) for dim in query.group_by))
        totals, alternative = groups.setdefault(key, (Totals(), [0]))
        totals.add(row.totals)
        alternative[0] += row.what_if_nusd
    out = []
    for key in sorted(groups, key=lambda k: tuple("" if v is None else v for v in k)):
        totals, (alternative_nusd,) = groups[key]
        saving = None if totals.unpriced_requests else totals.cost_nusd - alternative_nusd
        out.append(
            {
                **dict(zip(("alternative", *query.group_by), key, strict=True)),
                "requests": totals.requests,
                "unpriced_requests": totals.unpriced_requests,
                "input_tokens": totals.input_tokens,
                "cached_input_tokens": totals.cached_input_tokens,
                "output_tokens": totals.output_tokens,
                "actual_cost_usd": format_usd(totals.cost_nusd),
                "alternative_cost_usd": format_usd(alternative_nusd),
                "saving_usd": None if saving is None else format_usd(saving),
            }
        )
    return {"note": TOKENIZER_NOTE, "group_by": ["alternative", *query.group_by], "groups": out}
