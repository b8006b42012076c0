"""The comparison: the proxy's figures against the provider's report, per UTC day × model,
as the JSON answer of `costproxy reconcile` and `GET /admin/v1/reconcile/{provider}`. Pure.

Differences are the provider's figure minus the proxy's. A row matches when each
difference is within the tolerance; the whole matches when every row does and the report
covers every day asked for.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from typing import Any

from proxy.reconcile.coverage import uncovered
from proxy.reconcile.explain import Explanation, PriceOf, explain_prices, explain_traffic
from proxy.reconcile.figures import Figures, ProxyRow, Tolerance, nusd_of_usd
from proxy.reconcile.models import match_models
from proxy.reconcile.report import CostRow, ProviderReport, ReportFormatError, UsageRow

__all__ = ["ReconcileInputError", "Scope", "reconcile"]


class ReconcileInputError(ReportFormatError):
    """The report cannot be compared as given (for example, not grouped by model)."""


@dataclass(frozen=True, slots=True)
class Scope:
    """Which of the organisation's traffic is this provider's: the report's rows of other
    projects (OpenAI) or workspaces (Anthropic) and API keys are left out."""

    project_ids: frozenset[str] = frozenset()
    api_key_ids: frozenset[str] = frozenset()

    def words(self) -> str:
        parts = [f"project {p}" for p in sorted(self.project_ids)]
        parts += [f"API key {k}" for k in sorted(self.api_key_ids)]
        return " / ".join(parts) or "the organisation"


@dataclass(slots=True)
class _Billed:
    """The provider's rows of one (day, model)."""

    usage: list[UsageRow] = field(default_factory=list)
    costs: list[CostRow] = field(default_factory=list)
    names: set[str] = field(default_factory=set)


def _scoped(
    rows: Iterable[UsageRow] | Iterable[CostRow], scope: Scope, what: str, notes: list[str]
) -> list[Any]:
    kept = []
    unfiltered: set[str] = set()
    for row in rows:
        if scope.project_ids:
            if row.project_id is None:
                unfiltered.add("project")
            elif row.project_id not in scope.project_ids:
                continue
        if scope.api_key_ids:
            if row.api_key_id is None:
                unfiltered.add("API key")
            elif row.api_key_id not in scope.api_key_ids:
                continue
        kept.append(row)
    for dimension in sorted(unfiltered):
        notes.append(
            f"the {what} is not grouped by {dimension}: it covers the whole organisation, "
            f"not only {scope.words()}"
        )
    return kept


def _provider_usage(billed: _Billed, report: ProviderReport) -> Figures:
    if not report.has_usage:
        return Figures(None, None, None, None, None, 0)
    usage = billed.usage
    requests: int | None = sum(u.requests or 0 for u in usage)
    if not report.counts_requests:
        requests = None
    return Figures(
        requests=requests,
        input_tokens=sum(u.input_tokens for u in usage),
        cached_input_tokens=sum(u.cached_input_tokens for u in usage),
        cache_write_tokens=sum(u.cache_write_5m_tokens + u.cache_write_1h_tokens for u in usage),
        output_tokens=sum(u.output_tokens for u in usage),
    )


def _attribute_costs(
    costs: Sequence[CostRow], usage: Sequence[UsageRow]
) -> tuple[list[CostRow], dict[date, Decimal]]:
    """Costs not split by model belong to the day's only model, when the usage report
    shows one; the others stay unattributed (day → amount)."""
    models_by_day: dict[date, set[str]] = defaultdict(set)
    for u in usage:
        if u.model is not None and (u.input_tokens or u.output_tokens or u.requests):
            models_by_day[u.day].add(u.model)
    attributed: list[CostRow] = []
    unattributed: dict[date, Decimal] = defaultdict(Decimal)
    for cost in costs:
        if cost.model is not None:
            attributed.append(cost)
            continue
        models = models_by_day.get(cost.day, set())
        if len(models) == 1:
            attributed.append(replace(cost, model=next(iter(models))))
        elif cost.amount_usd:
            unattributed[cost.day] += cost.amount_usd
    return attributed, dict(unattributed)


def reconcile(
    *,
    provider: str,
    report: ProviderReport,
    proxy_rows: Sequence[ProxyRow],
    from_day: date,
    to_day: date,
    tolerance: Tolerance,
    price_of: PriceOf,
    scope: Scope = Scope(),
) -> dict[str, Any]:
    """The comparison of [from_day, to_day] as JSON-ready data (money as 9-decimal
    strings). Raises ReconcileInputError when the usage report is not grouped by model."""
    notes: list[str] = []
    in_range = [r for r in proxy_rows if from_day <= r.day <= to_day]
    usage: list[UsageRow] = _scoped(
        (u for u in report.usage if from_day <= u.day <= to_day), scope, "usage report", notes
    )
    costs: list[CostRow] = _scoped(
        (c for c in report.costs if from_day <= c.day <= to_day), scope, "cost report", notes
    )
    if any(u.model is None and (u.input_tokens or u.output_tokens) for u in usage):
        raise ReconcileInputError(
            "the usage report is not grouped by model: ask for it with group_by[]=model"
        )
    for name, n in sorted(report.ignored.items()):
        notes.append(f"{n} usage result(s) of kind {name} ignored: the proxy does not record them")
    costs, unattributed = _attribute_costs(costs, usage)

    billed = _by_row(usage, costs, {r.model for r in in_range})
    recorded = {(r.day, r.model): r for r in in_range}
    gaps = _gaps(report, from_day, to_day, unattributed)

    rows = []
    for day, model in sorted(recorded.keys() | billed.keys()):
        entry = billed.get((day, model), _Billed())
        proxy = recorded.get((day, model))
        row = _row(
            day, model, proxy, entry, report, tolerance, price_of, scope,
            gaps.get(day, []), cost_split=day not in unattributed,
        )  # fmt: skip
        if row is not None:
            rows.append(row)

    totals = _totals(in_range, usage, costs, unattributed, report)
    if not report.has_costs:
        notes.append("no cost report: costs are not compared")
    if not report.has_usage:
        notes.append("no usage report: requests and tokens are not compared")
    return {
        "provider": provider,
        "report": report.kind,
        "from": from_day.isoformat(),
        "to": to_day.isoformat(),
        "tolerance_pct": tolerance.as_json(),
        "rows": rows,
        "totals": totals,
        "days_not_covered": [
            {"day": day.isoformat(), "why": "; ".join(g["message"] for g in why)}
            for day, why in sorted(gaps.items())
        ],
        "notes": notes,
        "matched": not gaps and all(row["within_tolerance"] for row in rows),
    }


def _by_row(
    usage: Sequence[UsageRow], costs: Sequence[CostRow], recorded_models: set[str]
) -> dict[tuple[date, str], _Billed]:
    """The report's rows by (day, the model name the proxy's row has: see models.py)."""
    names = match_models(
        recorded_models,
        {u.model for u in usage if u.model is not None}
        | {c.model for c in costs if c.model is not None},
    )
    billed: dict[tuple[date, str], _Billed] = defaultdict(_Billed)
    for u in usage:
        assert u.model is not None  # checked by the caller
        entry = billed[(u.day, names[u.model])]
        entry.usage.append(u)
        entry.names.add(u.model)
    for c in costs:
        assert c.model is not None  # attributed by the caller
        entry = billed[(c.day, names[c.model])]
        entry.costs.append(c)
        entry.names.add(c.model)
    return billed


def _gaps(
    report: ProviderReport, from_day: date, to_day: date, unattributed: dict[date, Decimal]
) -> dict[date, list[Explanation]]:
    """Days whose figures the report does not give in full, and why."""
    gaps: dict[date, list[Explanation]] = defaultdict(list)
    for what, given, spans in (
        ("usage report", report.has_usage, report.usage_spans),
        ("cost report", report.has_costs, report.cost_spans),
    ):
        if given:
            for day, covered in uncovered(spans, from_day, to_day).items():
                words = f"covers {day} only {covered}" if covered else f"has no bucket for {day}"
                gaps[day].append({"code": "day_not_covered", "message": f"the {what} {words}"})
    for day, amount in unattributed.items():
        gaps[day].append(
            {
                "code": "cost_not_split",
                "message": f"the cost report does not split ${amount:f} of {day.isoformat()} "
                "by model (ask for it grouped by line item or description)",
            }
        )
    return gaps


def _row(
    day: date,
    model: str,
    proxy: ProxyRow | None,
    billed: _Billed,
    report: ProviderReport,
    tolerance: Tolerance,
    price_of: PriceOf,
    scope: Scope,
    gaps: list[Explanation],
    *,
    cost_split: bool,
) -> dict[str, Any] | None:
    ours = proxy.figures() if proxy is not None else Figures()
    theirs = _provider_usage(billed, report)
    theirs.cost_nusd = None
    if report.has_costs and cost_split:
        theirs.cost_nusd = nusd_of_usd(sum((c.amount_usd for c in billed.costs), Decimal(0)))
    if ours.is_zero() and theirs.is_zero():
        return None  # nothing on either side (a zero line item, failed requests only)
    difference = theirs.minus(ours)
    within = all(
        d is None or tolerance.allows(name, d, p or 0)
        for (name, d), p in zip(difference.values().items(), theirs.values().values(), strict=True)
    )
    explained = list(gaps)
    traffic = explain_traffic(model, proxy, theirs, scope.words())
    if gaps:  # the report's figures of the day are partial: absence says nothing
        traffic = [t for t in traffic if t["code"] != "not_in_report"]
    explained += traffic
    explained += explain_prices(
        model,
        billed.usage if report.has_usage else None,
        billed.costs,
        price_of,
        tolerance.cost_pct,
    )
    return {
        "day": day.isoformat(),
        "model": model,
        "report_models": sorted(billed.names),
        "proxy": ours.as_json(),
        "provider": theirs.as_json(),
        "difference": difference.as_json(),
        "within_tolerance": within,
        "explained": explained,
    }


def _totals(
    proxy_rows: Sequence[ProxyRow],
    usage: Sequence[UsageRow],
    costs: Sequence[CostRow],
    unattributed: dict[date, Decimal],
    report: ProviderReport,
) -> dict[str, Any]:
    """Sums of each side (the provider's: every scoped amount, attributed or not)."""
    ours = Figures()
    for row in proxy_rows:
        ours.add(row.figures())
    theirs = _provider_usage(_Billed(usage=list(usage)), report)
    all_costs = sum((c.amount_usd for c in costs), Decimal(0)) + sum(
        unattributed.values(), Decimal(0)
    )
    theirs.cost_nusd = nusd_of_usd(all_costs) if report.has_costs else None
    return {
        "proxy": ours.as_json(),
        "provider": theirs.as_json(),
        "difference": theirs.minus(ours).as_json(),
    }
