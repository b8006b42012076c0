"""The budget guard's figures (its `snapshot()`) as `costproxy_budget_*` metrics, read at
scrape time. Pure: a snapshot in, Prometheus text out."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from functools import partial

from proxy.budgets.book import parse_scope
from proxy.observability.metric_core import CallbackFamily

__all__ = ["render_budgets"]

# (snapshot key, metric, help) of the plain counters.
_COUNTERS = (
    ("reservations_total", "costproxy_budget_reservations_total",
     "Budget reservations made before forwarding."),
    ("recounted_total", "costproxy_budget_recounted_total",
     "Budget rejections retried with a tokenizer count instead of the byte bound."),
    ("settles_total", "costproxy_budget_settles_total", "Budget reservations settled."),
    ("settle_failures_total", "costproxy_budget_settle_failures_total",
     "Budget settles the store could not take (charged to it once it is back)."),
    ("offline_reservations_total", "costproxy_budget_offline_reservations_total",
     "Budget reservations checked locally while the store was unreachable."),
    ("offline_charges_total", "costproxy_budget_offline_charges_total",
     "Spend settled while the store was unreachable, charged to it since."),
    ("store_errors_total", "costproxy_budget_store_errors_total",
     "Store errors met while reserving or settling budgets."),
    ("webhook_deliveries_total", "costproxy_budget_webhook_deliveries_total",
     "Budget alert webhooks delivered."),
    ("webhook_failed_deliveries_total", "costproxy_budget_webhook_failed_deliveries_total",
     "Budget alert webhook deliveries that failed (retried later)."),
)  # fmt: skip


def _rows(values: Mapping[str, int]) -> list[tuple[tuple[str, ...], float]]:
    return [((name,), float(value)) for name, value in sorted(values.items())]


def _gauges(
    values: Mapping[str, str], label_customer: Callable[[str], str]
) -> list[tuple[tuple[str, ...], float]]:
    """Rows {scope, period, customer} of the spent or limit gauges, for the scopes metrics
    may name: end users never become labels, customers only within metrics.max_customers."""
    rows: list[tuple[tuple[str, ...], float]] = []
    for key, usd in sorted(values.items()):
        scope, _, period = key.rpartition("|")
        kind, names = parse_scope(scope)
        if kind == "end_user":
            continue
        if kind in ("customer", "end_users") and label_customer(names[0]) != names[0]:
            continue  # a customer metrics may not name: the budget API has the figures
        customer = names[0] if kind == "customer" else ""
        rows.append(((scope, period, customer), float(Decimal(usd))))
    return rows


def _unlabelled(value: float) -> list[tuple[tuple[str, ...], float]]:
    return [((), value)]


def render_budgets(snapshot: dict, label_customer: Callable[[str], str]) -> str:
    families = [
        CallbackFamily(name, help_text, "counter", (), partial(_unlabelled, snapshot[key]))
        for key, name, help_text in _COUNTERS
    ]
    families += [
        CallbackFamily(
            "costproxy_budget_offline_unsent_usd",
            "Spend settled while the store was unreachable that its budget counters do not "
            "have yet.",
            "gauge",
            (),
            lambda: [((), float(Decimal(snapshot["offline_unsent_usd"])))],
        ),
        CallbackFamily(
            "costproxy_budget_webhook_backlog",
            "Budget alert webhooks waiting to be delivered.",
            "gauge",
            (),
            lambda: [((), snapshot["webhook_backlog"])],
        ),
        CallbackFamily(
            "costproxy_budget_rejections_total",
            "Requests refused because a hard budget was spent, by the kind of scope.",
            "counter",
            ("scope_kind",),
            lambda: _rows(snapshot["rejections_total"]),
        ),
        CallbackFamily(
            "costproxy_budget_alerts_total",
            "Budget alerts fired by this instance, by kind (threshold, forecast).",
            "counter",
            ("kind",),
            lambda: _rows(snapshot["alerts_total"]),
        ),
        CallbackFamily(
            "costproxy_budget_spent_usd",
            "Spend in the current period of each budget, as last settled on this instance.",
            "gauge",
            ("scope", "period", "customer"),
            lambda: _gauges(snapshot["spent_usd"], label_customer),
        ),
        CallbackFamily(
            "costproxy_budget_limit_usd",
            "Limit of each budget in its period.",
            "gauge",
            ("scope", "period", "customer"),
            lambda: _gauges(snapshot["limit_usd"], label_customer),
        ),
    ]
    return "".join(family.render() for family in families)
