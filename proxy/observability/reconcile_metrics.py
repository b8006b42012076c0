"""The scheduled reconciliations' outcomes as `costproxy_reconcile_*` metrics, read at
scrape time. Pure: figures in, Prometheus text out.

Every instance exports the last outcome kept in the store (the instance that ran it is
not special), so `max by (provider)` or `min by (provider)` over instances is right.
"""

from __future__ import annotations

from collections.abc import Sequence

from proxy.observability.metric_core import CallbackFamily

__all__ = ["ReconcileFigures", "render_reconcile"]

# (provider, cost difference in USD, matched, last success in Unix seconds, whether the
# last attempt failed); None where no run has succeeded yet, or the cost was not compared.
ReconcileFigures = tuple[str, float | None, bool | None, float | None, bool]


def render_reconcile(figures: Sequence[ReconcileFigures]) -> str:
    families = (
        CallbackFamily(
            "costproxy_reconcile_difference_usd",
            "Cost in the provider's own report minus the proxy's, over the days of the last "
            "reconciliation of each provider (GET /admin/v1/reconcile/{provider}: by day "
            "and model).",
            "gauge",
            ("provider",),
            lambda: [((p,), cost) for p, cost, _, _, _ in figures if cost is not None],
        ),
        CallbackFamily(
            "costproxy_reconcile_matched",
            "1 when the last reconciliation of the provider found every figure within its "
            "tolerance of the provider's report, 0 when it found differences.",
            "gauge",
            ("provider",),
            lambda: [((p,), float(ok)) for p, _, ok, _, _ in figures if ok is not None],
        ),
        CallbackFamily(
            "costproxy_reconcile_last_success_timestamp_seconds",
            "When the last reconciliation of the provider that could fetch and compare its "
            "report ended (Unix time).",
            "gauge",
            ("provider",),
            lambda: [((p,), at) for p, _, _, at, _ in figures if at is not None],
        ),
        CallbackFamily(
            "costproxy_reconcile_last_attempt_failed",
            "1 when the last attempt to reconcile the provider could not fetch or compare its "
            "report (GET /admin/v1/reconcile/{provider} has the error), else 0.",
            "gauge",
            ("provider",),
            lambda: [((p,), float(failed)) for p, _, _, _, failed in figures],
        ),
    )
    return "".join(family.render() for family in families)
