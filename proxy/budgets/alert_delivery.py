"""Budget alerts as they happen: claim each due alert in the store (so it fires once per
budget period across instances), then log it and send it to the webhooks. Runs in the
settle task, never on a request's path."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence

import orjson

from proxy.budgets.alert_rules import Alert, due_alerts, refusal_exhausts
from proxy.budgets.rules import BudgetRule, CounterState, period_max_s
from proxy.budgets.webhooks import WebhookSender
from proxy.store.base import Store

__all__ = ["AlertDispatcher"]

log = logging.getLogger("costproxy.alerts")
_MAX_REMEMBERED = 100_000
_CLAIM_MARGIN_S = 86_400


class AlertDispatcher:
    def __init__(self, store: Store, webhooks: WebhookSender, *, forecast: bool = True) -> None:
        self.store = store
        self.webhooks = webhooks
        self.forecast = forecast
        self.fired: Counter[str] = Counter()  # by alert kind: "threshold" / "forecast"
        # Alerts this instance knows are claimed (by it or another): no store round trip.
        self._known: set[tuple[str, str, str, str]] = set()

    async def check(
        self,
        customer: str | None,
        scopes: Sequence[str],
        rules: Sequence[BudgetRule],
        states: Sequence[CounterState],
        now_ms: int,
    ) -> None:
        """After a settle: every alert the spend makes due."""
        for scope, rule, state in zip(scopes, rules, states, strict=True):
            for name in due_alerts(rule, state, now_ms, forecast=self.forecast):
                await self._claim(Alert(scope, customer, rule, state, name, now_ms))

    async def refused(
        self,
        customer: str | None,
        scope: str,
        rule: BudgetRule,
        state: CounterState,
        amount_nusd: int,
        now_ms: int,
    ) -> None:
        """A hard budget refused a request: its 100% alert is due (when it has one) if the
        request could not fit even once every request in flight settled."""
        if refusal_exhausts(rule, state, amount_nusd):
            name = "threshold:100"
            await self._claim(Alert(scope, customer, rule, state, name, now_ms, "refused"))

    async def _claim(self, alert: Alert) -> None:
        scope, rule, state = alert.scope, alert.rule, alert.state
        known = (scope, rule.period, state.pid, alert.name)
        if known in self._known:
            return
        max_s = period_max_s(rule.period)
        ttl = None if max_s is None else max_s + _CLAIM_MARGIN_S
        claimed = await self.store.claim_budget_alert(
            scope, rule.period, state.pid, alert.name, ttl
        )
        if len(self._known) >= _MAX_REMEMBERED:
            self._known.clear()  # only costs claims that the store refuses again
        self._known.add(known)
        if claimed:
            self._fire(alert)

    def _fire(self, alert: Alert) -> None:
        payload = alert.payload()
        delivery_id = f"{alert.scope}|{alert.rule.period}|{alert.state.pid}|{alert.name}"
        payload["id"] = delivery_id
        body = orjson.dumps(payload)
        self.fired[alert.name.split(":")[0]] += 1
        log.warning("budget alert %s", body.decode())
        self.webhooks.deliver(body, delivery_id)
