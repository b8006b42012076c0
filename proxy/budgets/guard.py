"""The budget step of the request path: reserve before forwarding, settle when it ends.

`reserve()` is awaited before anything goes upstream and raises `BudgetExceededError`
(429) when any hard budget cannot take the request's worst-case cost. `settle()` is
called exactly once per held request, from the handler's `finally`; the store round trip
and the alerts it may trigger run in a task the guard owns and drains at shutdown.
With no budget that applies, neither touches the store.

While the store is away, reservations and settles are kept by an `OfflineLedger` and
checked against the store's last figures; the spend settled meanwhile is charged to the
store's counters once it answers again (`catch_up`).

Budgets that appear (at start, on a reload) count the period's spend so far: their counters
are seeded from the usage aggregates in the background (proxy.budgets.seed).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace

from aiohttp import web

from proxy.accounting import tokens
from proxy.accounting.pricing import format_usd, format_usd_short
from proxy.budgets.alert_delivery import AlertDispatcher
from proxy.budgets.book import (
    Applicable,
    BudgetBook,
    Rules,
    parse_runtime,
    parse_scope,
    scope_label,
)
from proxy.budgets.offline import Charge, OfflineLedger
from proxy.budgets.rules import (
    BudgetRule,
    CounterState,
    ReserveAnswer,
    output_tokens_bound,
    period_id,
    rejection,
    remaining_nusd,
    reservation_nusd,
)
from proxy.budgets.seed import seed_scopes
from proxy.config import BudgetingConfig
from proxy.errors import ProxyError
from proxy.pipeline.exchange import Exchange
from proxy.store.base import Store

__all__ = [
    "BUDGETS",
    "REMAINING_HEADER",
    "BudgetExceededError",
    "BudgetGuard",
    "BudgetUnavailableError",
    "Hold",
    "UnpricedUnderBudgetError",
    "add_remaining_header",
]

log = logging.getLogger("costproxy.budgets")
REMAINING_HEADER = "x-costproxy-budget-remaining-usd"
_REMAINING = web.RequestKey("costproxy_budget_remaining", int)
_SETTLE_ATTEMPTS = 3
# As in UsageRecorder: any store fault (the stores do not share an error type, and this
# module must not import redis) is logged with its traceback and counted, never hidden.
_STORE_ERRORS = (Exception,)


class BudgetExceededError(ProxyError):
    status = 429
    type = "budget_exceeded"
    code = "budget_exceeded"


class UnpricedUnderBudgetError(ProxyError):
    status = 400
    type = "invalid_request_error"
    code = "unpriced_model_under_budget"


class BudgetUnavailableError(ProxyError):
    status = 503
    type = "server_error"
    code = "budget_store_unavailable"


@dataclass(slots=True)
class Hold:
    request_id: str
    customer: str
    applicable: Applicable
    amount_nusd: int
    remaining_nusd: int | None
    settled: bool = False


@dataclass(slots=True)
class BudgetStats:
    """Plain counters and gauges, for whoever exports metrics."""

    reservations: int = 0
    recounted: int = 0  # rejections retried with a tokenizer count instead of the byte bound
    settles: int = 0
    settle_failures: int = 0
    store_errors: int = 0
    offline_reservations: int = 0  # checked locally while the store was away
    offline_charges: int = 0  # settles charged to the store after it came back
    rejections: Counter[str] = field(default_factory=Counter)  # by scope kind
    # (scope, period) -> (spent, limit) as last seen by a settle on this instance
    gauges: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)


def _refuse_unpriced(ex: Exchange, applicable: Applicable) -> None:
    """A hard budget cannot hold a request whose cost will be unknown: any target of the
    route may serve it (fallbacks), so every one must have a price."""
    unpriced = [t for t in ex.route.targets if t.price is None]
    hard = [i for i, rule in enumerate(applicable.rules) if rule.hard]
    if not unpriced or not hard:
        return
    rule, scope = applicable.rules[hard[0]], applicable.scopes[hard[0]]
    models = ", ".join(f"'{t.provider.price_namespace}/{t.model}'" for t in unpriced)
    raise UnpricedUnderBudgetError(
        f"The model '{ex.route.name}' routes to {models}, without a price, so its cost "
        f"cannot be held against the hard {rule.period} budget of {scope_label(scope)} "
        f"(${format_usd_short(rule.limit_nusd)}). Price it under prices:, or set "
        "budgeting.unpriced: allow.",
        param="model",
    )


class BudgetGuard:
    def __init__(
        self,
        store: Store,
        book: BudgetBook,
        settings: BudgetingConfig,
        alerts: AlertDispatcher,
        store_up: Callable[[], bool] = lambda: True,
        *,
        history_days: int = 400,
    ) -> None:
        self.store = store
        self.book = book
        self.settings = settings
        self.alerts = alerts
        self.stats = BudgetStats()
        self.offline = OfflineLedger()
        # The usage recorder's view of the store: while it says "down", requests do not
        # wait on a store call to learn it again.
        self._store_up = store_up
        self._tasks: set[asyncio.Task[None]] = set()
        self._catching_up = asyncio.Lock()
        self._version = -1
        # Scopes whose counters still need the period's spend so far (see seed_pending).
        self._to_seed: set[str] = set()
        self._history_days = history_days

    # The request path -------------------------------------------------------------------

    async def reserve(self, request: web.Request, ex: Exchange, body_bytes: int) -> Hold | None:
        a = ex.attribution
        applicable = self.book.applicable(a.customer, ex.principal.key_id, a.end_user, a.tags)
        if not applicable:
            return None
        if self.settings.unpriced == "refuse":
            _refuse_unpriced(ex, applicable)
        prices = [t.price.bound(ex.ts_ms) if t.price else None for t in ex.route.targets]
        output = output_tokens_bound(
            ex.endpoint,
            ex.payload,
            ex.route.max_output_tokens,
            self.settings.default_max_output_tokens,
        )
        # Every token is at least one byte of the body: a bound that costs nothing to get.
        amount = reservation_nusd(body_bytes, output, prices)
        answer = await self._reserve(ex.request_id, amount, applicable)
        if answer is not None and answer.violated is not None:
            # Nearly exhausted: count the prompt, which is ~4x tighter than bytes for text.
            for target in ex.route.targets:
                await tokens.ready(target.model)
            counted = max(
                tokens.count_prompt(ex.endpoint, ex.payload, t.model) for t in ex.route.targets
            )
            tighter = reservation_nusd(counted, output, prices)
            if tighter < amount:
                self.stats.recounted += 1
                amount = tighter
                answer = await self._reserve(ex.request_id, amount, applicable)
        if answer.violated is not None:
            i = answer.violated
            scope = applicable.scopes[i]
            self.stats.rejections[parse_scope(scope)[0]] += 1
            # A hard budget refuses before spend reaches its limit: the refusal is what
            # its 100% alert announces (claimed once per period, as the spend would be).
            rule, state = applicable.rules[i], answer.states[i]
            self._spawn(self._alert_refused(a.customer, scope, rule, state, amount, answer.now_ms))
            refused = rejection(scope_label(scope), scope, rule, state, amount, answer.now_ms)
            headers = {"Retry-After": str(refused.retry_after_s)} if refused.retry_after_s else {}
            raise BudgetExceededError(refused.message, headers=headers)
        self.stats.reservations += 1
        remaining = remaining_nusd(applicable.rules, answer.states)
        if remaining is not None:
            request[_REMAINING] = remaining
        return Hold(ex.request_id, a.customer, applicable, amount, remaining)

    async def _reserve(self, request_id: str, amount: int, applicable: Applicable) -> ReserveAnswer:
        counters = applicable.counters()
        if self._store_up():
            ttl_ms = int(self.settings.reservation_ttl_s * 1000)
            try:
                stored = await self.store.reserve_budget(request_id, amount, counters, ttl_ms)
            except _STORE_ERRORS as exc:
                self.stats.store_errors += 1
                log.error(
                    "budget reserve for %s failed, checking locally: %s: %s",
                    request_id,
                    type(exc).__name__,
                    exc,
                )
            else:
                self.offline.remember(applicable.periods(), stored.states)
                return stored
        answer = self.offline.reserve(
            request_id,
            amount,
            counters,
            int(time.time() * 1000),
            unknown_is_zero=self.settings.fail_open,
        )
        if answer is None:
            raise BudgetUnavailableError(
                "Budgets cannot be checked right now (the store is unreachable and this "
                "instance has no figures for them); the request was not forwarded.",
                headers={"Retry-After": "1"},
            )
        self.stats.offline_reservations += 1
        return answer

    def settle(self, hold: Hold | None, cost_nusd: int | None) -> None:
        """Settle a hold with the request's actual cost (None: unpriced, counts as 0)."""
        if hold is None or hold.settled:
            return
        hold.settled = True
        cost = cost_nusd or 0
        if self.offline.settle(hold.request_id, cost, hold.applicable.counters()):
            self._spawn(self.catch_up())  # a no-op until the store is back
            return
        self._spawn(self._settle(hold, cost))

    def _spawn(self, work) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _settle(self, hold: Hold, cost: int) -> None:
        counters = hold.applicable.periods()
        settled = False
        for attempt in range(_SETTLE_ATTEMPTS):
            if not self._store_up():
                break
            try:
                answer = await self.store.settle_budget(hold.request_id, cost, counters)
            except _STORE_ERRORS as exc:  # settle is idempotent: retrying is safe
                self.stats.store_errors += 1
                log.error(
                    "budget settle of %s (attempt %d) failed: %s: %s",
                    hold.request_id,
                    attempt + 1,
                    type(exc).__name__,
                    exc,
                )
                await asyncio.sleep(0.1 * 2**attempt)
            else:
                settled = True
                break
        if not settled:
            self._owe(hold, cost)
            return
        self.stats.settles += 1
        if answer is None:
            return
        self.offline.remember(counters, answer.states)
        rules = hold.applicable.rules
        for (scope, rule), state in zip(hold.applicable.counters(), answer.states, strict=True):
            self.stats.gauges[(scope, rule.period)] = (state.spent_nusd, rule.limit_nusd)
        try:
            await self.alerts.check(
                hold.customer, hold.applicable.scopes, rules, answer.states, answer.now_ms
            )
        except _STORE_ERRORS as exc:
            log.error("budget alert claim failed: %s: %s", type(exc).__name__, exc)

    async def _alert_refused(
        self,
        customer: str,
        scope: str,
        rule: BudgetRule,
        state: CounterState,
        amount: int,
        now_ms: int,
    ) -> None:
        try:
            await self.alerts.refused(customer, scope, rule, state, amount, now_ms)
        except _STORE_ERRORS as exc:
            log.error("budget alert claim failed: %s: %s", type(exc).__name__, exc)

    def _owe(self, hold: Hold, cost: int) -> None:
        """The store could not take this settle: charge it when the store is back (the
        store's hold, if it made one, is released by that charge or expires)."""
        self.stats.settle_failures += 1
        now_ms = int(time.time() * 1000)
        pids = tuple(period_id(rule.period, now_ms) for rule in hold.applicable.rules)
        self.offline.owe(hold.request_id, cost, hold.applicable.counters(), pids)

    async def catch_up(self) -> None:
        """Charge the store's counters with the spend settled while it was away, once it
        answers: each charge holds nothing (a soft re-reservation under the same request
        id, which also finds a hold the store did make) and settles the cost."""
        if not self.offline.charges or not self._store_up() or self._catching_up.locked():
            return
        async with self._catching_up:
            ttl_ms = int(self.settings.reservation_ttl_s * 1000)
            for charge in list(self.offline.charges):
                try:
                    await self._charge(charge, ttl_ms)
                except _STORE_ERRORS as exc:
                    self.stats.store_errors += 1
                    log.error(
                        "budget catch-up stopped (%d charges left): %s: %s",
                        len(self.offline.charges),
                        type(exc).__name__,
                        exc,
                    )
                    return
                self.offline.charged(charge)
                self.stats.offline_charges += 1

    async def _charge(self, charge: Charge, ttl_ms: int) -> None:
        soft = [(scope, replace(rule, hard=False)) for scope, rule in charge.counters]
        await self.store.reserve_budget(charge.request_id, 0, soft, ttl_ms)
        periods = [(scope, rule.period) for scope, rule in charge.counters]
        await self.store.settle_budget(charge.request_id, charge.cost_nusd, periods)

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self.catch_up()
        if self.offline.charges:
            log.warning(
                "shutting down with %d budget charges (%s USD) the store's budget counters "
                "do not have: the usage records have them, the budgets will not",
                len(self.offline.charges),
                format_usd(self.offline.unsent_nusd),
            )

    def use_configured(self, configured: Mapping[str, Rules]) -> None:
        """The config's budgets after a reload; run-time ones still win over them. New or
        changed ones count the period's spend so far."""
        before = self.book.configured
        self.book = BudgetBook(configured, self.book.runtime)
        self.seed_soon(s for s, rules in configured.items() if before.get(s) != rules)

    # Seeding --------------------------------------------------------------------------------

    def seed_soon(self, scopes: Iterable[str]) -> None:
        """Count the period's spend so far in these scopes' counters, in the background
        (retried by the refresher while the store is away)."""
        self._to_seed.update(scopes)
        if self._to_seed:
            self._spawn(self.seed_pending())

    async def seed_pending(self) -> None:
        if not self._to_seed or not self._store_up():
            return
        scopes, self._to_seed = self._to_seed, set()
        try:
            await seed_scopes(self.store, self.book, sorted(scopes), self._history_days)
        except _STORE_ERRORS as exc:
            self._to_seed |= scopes
            self.stats.store_errors += 1
            log.error(
                "budgets not yet seeded with the spend so far (retrying): %s: %s",
                type(exc).__name__,
                exc,
            )

    # Run-time budgets ---------------------------------------------------------------------

    async def refresh(self) -> None:
        """Reload the run-time budgets when another instance (or the CLI) changed them."""
        version = await self.store.budget_overrides_version()
        if version == self._version:
            return
        version, raw = await self.store.budget_overrides()
        runtime, problems = parse_runtime(raw)
        for scope_text, problem in problems.items():
            log.error("ignoring run-time budget of %s: %s", scope_text, problem)
        self.book = self.book.with_runtime(runtime)
        self._version = version

    async def refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.refresh_s)
            await self.catch_up()
            await self.seed_pending()
            if not self._store_up():
                continue
            try:
                await self.refresh()
            except _STORE_ERRORS as exc:
                log.error("budget refresh failed: %s: %s", type(exc).__name__, exc)

    def snapshot(self) -> dict:
        """Counters and gauges for a metrics exporter (costproxy_budget_*)."""
        webhooks = self.alerts.webhooks.stats
        return {
            "reservations_total": self.stats.reservations,
            "rejections_total": dict(self.stats.rejections),
            "recounted_total": self.stats.recounted,
            "settles_total": self.stats.settles,
            "settle_failures_total": self.stats.settle_failures,
            "store_errors_total": self.stats.store_errors,
            "offline_reservations_total": self.stats.offline_reservations,
            "offline_charges_total": self.stats.offline_charges,
            "offline_unsent_usd": format_usd(self.offline.unsent_nusd),
            "alerts_total": dict(self.alerts.fired),
            "webhook_deliveries_total": webhooks.delivered,
            "webhook_failed_deliveries_total": webhooks.failed_deliveries,
            "webhook_backlog": webhooks.backlog,
            "spent_usd": {f"{s}|{p}": format_usd(v[0]) for (s, p), v in self.stats.gauges.items()},
            "limit_usd": {f"{s}|{p}": format_usd(v[1]) for (s, p), v in self.stats.gauges.items()},
        }


BUDGETS = web.AppKey("costproxy_budgets", BudgetGuard)


async def add_remaining_header(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: the remaining budget on successful responses, before headers
    go out (for streams that is at prepare time, after the reservation)."""
    remaining = request.get(_REMAINING)
    if remaining is not None and response.status < 400:
        response.headers[REMAINING_HEADER] = format_usd(remaining)
