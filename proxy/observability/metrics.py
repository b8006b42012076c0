"""Prometheus metrics of one proxy instance, owned by its ProxyState (no global registry),
and the rule that bounds which customers become label values.

Counters are per instance; Prometheus adds the `instance` label, so `sum()` across
instances is correct. Exact money stays in the store: these are floats for dashboards.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest

from proxy.accounting.records import UsageRecord
from proxy.config import MetricsConfig
from proxy.observability.budget_metrics import render_budgets
from proxy.observability.metric_core import (
    CallbackFamily,
    CounterChild,
    CounterFamily,
    HistogramChild,
    HistogramFamily,
)
from proxy.observability.reconcile_metrics import ReconcileFigures, render_reconcile
from proxy.routing.breaker import STATE_CODES
from proxy.routing.target_health import HealthBook, TargetHealth

__all__ = [
    "CONTENT_TYPE",
    "NONE",
    "OTHER",
    "STORE_OPERATIONS",
    "UPSTREAM_ERROR_REASONS",
    "CustomerLabels",
    "ProxyMetrics",
    "upstream_errors",
]

OTHER = "other"  # the customer label of every customer not labelled individually
NONE = "none"  # model and provider of requests rejected before routing (401, 400, 404, 413)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
UPSTREAM_ERROR_REASONS = ("timeout", "unreachable", "broken", "rate_limited", "auth",
                          "server_error", "other")  # fmt: skip
STORE_OPERATIONS = ("record_usage", "aggregate_rows", "get_usage", "what_if_rows",
                    "reserve_budget", "settle_budget", "budget_states", "claim_budget_alert",
                    "budget_overrides", "budget_overrides_version", "put_budget_override",
                    "delete_budget_override")  # fmt: skip

# What the usage recorder reports (see watch_store), in the order of its tuple.
_STORE_FIGURES = (
    ("costproxy_store_up", "gauge",
     "1 while the usage store answers, 0 while usage is journaled locally."),
    ("costproxy_journal_pending_records", "gauge",
     "Usage records in the local journal, not yet replayed into the store."),
    ("costproxy_usage_records_lost_total", "counter",
     "Usage records neither stored nor journaled (journal full or unwritable)."),
)  # fmt: skip

# Upstream calls last from tens of milliseconds (embeddings) to minutes (long generations).
_DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
_TTFT_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
# The proxy's own share is expected well under a millisecond: fine buckets down there.
_OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1)
# Distinct (provider, model, answered model) mismatches logged; past it, only counted.
_MISMATCHES_LOGGED = 1000
_STORE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)

# The failure reasons of proxy.pipeline.forward (one per failed attempt) → label values.
_FAILURE_REASONS = {
    "upstream_timeout": "timeout",
    "upstream_unreachable": "unreachable",
    "upstream_broken": "broken",
    "stream broken": "broken",  # cut off mid-stream, after the client had its first byte
    "http 429": "rate_limited",
}


def upstream_errors(failures: Sequence[str], final_status: int) -> tuple[str, ...]:
    """The reason label of each upstream failure of one request: one per failed attempt,
    plus "auth" when the answer relayed was the provider refusing our key (a config
    problem, not retried, but worth an alert). Other 4xx answers are the client's request
    being refused, not the upstream failing: they show in costproxy_requests_total."""
    reasons = tuple(
        _FAILURE_REASONS.get(f, "server_error" if f.startswith("http 5") else "other")
        for f in failures
    )
    if final_status in (401, 403):
        reasons += ("auth",)
    return reasons


class CustomerLabels:
    """The label value of each customer: itself, or "other" past the configured bound.

    `all`: the first `max_customers` customers seen by this instance keep their name;
    `listed`: only those listed; `none`: nobody. Memory is bounded the same way.
    """

    def __init__(self, policy: str, max_customers: int, listed: Iterable[str] = ()) -> None:
        self._grows = policy == "all"
        self._max = max_customers
        self._labels: dict[str, str] = {c: c for c in listed} if policy == "listed" else {}

    def label(self, customer: str) -> str:
        label = self._labels.get(customer)
        if label is not None:
            return label
        if self._grows and len(self._labels) < self._max:
            self._labels[customer] = customer
            return customer
        return OTHER

    def __len__(self) -> int:
        return len(self._labels)


@dataclass(frozen=True, slots=True)
class _Spend:
    """Children of one (model, provider, customer)."""

    input: CounterChild
    cached_input: CounterChild
    output: CounterChild
    reasoning: CounterChild
    cost: CounterChild
    billable: CounterChild


@dataclass(frozen=True, slots=True)
class _Timing:
    """Children of one (model, provider)."""

    duration: HistogramChild
    ttft: HistogramChild
    unpriced: CounterChild


class ProxyMetrics:
    """Every metric of the proxy. Label children are cached by their label tuple, so the
    request path does dict lookups and float additions only, no label formatting."""

    def __init__(
        self,
        config: MetricsConfig,
        *,
        providers: Iterable[str] = (),
        targets: Iterable[tuple[str, str]] = (),
        health: HealthBook | None = None,
    ) -> None:
        self.customers = CustomerLabels(
            config.customer_label, config.max_customers, config.customers
        )
        self._requests = CounterFamily(
            "costproxy_requests_total",
            "Requests answered, by upstream model, provider, customer and the HTTP status "
            "the client got (provider and model 'none': rejected before routing).",
            ("model", "provider", "customer", "status"),
        )
        self._tokens = CounterFamily(
            "costproxy_tokens_total",
            "Tokens billed, by kind: input (all prompt tokens), cached_input (the cached "
            "part of input), output (all completion tokens), reasoning (part of output).",
            ("model", "provider", "customer", "kind"),
        )
        self._cost = CounterFamily(
            "costproxy_cost_usd_total",
            "Spend in USD (exact figures: the spend API).",
            ("model", "provider", "customer"),
        )
        self._billable = CounterFamily(
            "costproxy_billable_usd_total",
            "What customers are charged in USD: cost with the billing markup and fees "
            "(exact figures: the spend API).",
            ("model", "provider", "customer"),
        )
        self._unpriced = CounterFamily(
            "costproxy_unpriced_requests_total",
            "Billable requests to a model without a price: their cost is unknown.",
            ("model", "provider"),
        )
        self._duration = HistogramFamily(
            "costproxy_request_duration_seconds",
            "Time from the request's arrival to its last byte, routed requests.",
            ("model", "provider"),
            _DURATION_BUCKETS,
        )
        self._ttft = HistogramFamily(
            "costproxy_time_to_first_token_seconds",
            "Time from the request's arrival to the upstream's first stream chunk.",
            ("model", "provider"),
            _TTFT_BUCKETS,
        )
        self._overhead = HistogramFamily(
            "costproxy_overhead_seconds",
            "Time a routed request spent in the proxy itself: its whole time in the "
            "handler minus the time spent waiting for the upstream.",
            (),
            _OVERHEAD_BUCKETS,
        )
        self._upstream_errors = CounterFamily(
            "costproxy_upstream_errors_total",
            "Upstream failures, by provider and reason.",
            ("provider", "reason"),
        )
        self._model_mismatch = CounterFamily(
            "costproxy_model_mismatch_total",
            "Answers naming another model than the target's (a dated snapshot of it counts "
            "as the same): the provider may have served and charged another model than the "
            "one billed. By provider and the target's model.",
            ("provider", "model"),
        )
        self._mismatches_logged: set[tuple[str, str, str]] = set()
        self._whatif = CounterFamily(
            "costproxy_whatif_cost_usd_total",
            "What the same tokens would have cost at each configured what-if alternative "
            "('provider/model'), by the model and provider actually used.",
            ("model", "provider", "alternative"),
        )
        self._inflight = 0
        inflight = CallbackFamily(
            "costproxy_inflight_requests",
            "Requests being handled right now.",
            "gauge",
            (),
            lambda: [((), self._inflight)],
        )
        self._health = health
        breakers = CallbackFamily(
            "costproxy_breaker_state",
            "Circuit breaker of each target: 0 closed, 1 half-open, 2 open.",
            "gauge",
            ("provider", "model"),
            lambda: self._breakers(lambda h, now: STATE_CODES[h.breaker.state(now)]),
        )
        breaker_opens = CallbackFamily(
            "costproxy_breaker_opens_total",
            "Times each target's breaker opened (since its figures were last reset by a "
            "reload that changed its provider).",
            "counter",
            ("provider", "model"),
            lambda: self._breakers(lambda h, now: h.breaker.opens),
        )
        self._reloads: Callable[[], tuple[int, int, int]] | None = None
        self._budgets: Callable[[], dict] | None = None
        self._reconcile: Callable[[], Sequence[ReconcileFigures]] | None = None
        reloads = CallbackFamily(
            "costproxy_config_reloads_total",
            "Config reloads, by result: ok, or rejected (the running config stayed).",
            "counter",
            ("result",),
            self._reload_counts,
        )
        generation = CallbackFamily(
            "costproxy_config_generation",
            "Generation of the config serving requests: 1 at start, +1 per reload.",
            "gauge",
            (),
            lambda: [] if self._reloads is None else [((), self._reloads()[2])],
        )
        ratelimited = CounterFamily(
            "costproxy_ratelimited_total",
            "Requests refused by a rate limit (429), by the limit's kind: requests or tokens "
            "per minute, requests in flight (max_in_flight), or a customer's share of a "
            "provider's connections (provider_share).",
            ("kind",),
        )
        self._ratelimited = {
            kind: ratelimited.labels(kind)
            for kind in ("requests", "tokens", "in_flight", "provider_share")
        }
        self._auth_failures = CounterFamily(
            "costproxy_auth_failures_total",
            "Failed authentications, by kind: missing_api_key, invalid_api_key, "
            "expired_api_key (client API), invalid_admin_token, invalid_metrics_token, "
            "invalid_share_link (console).",
            ("kind",),
        )
        self._auth_blocked = CounterFamily(
            "costproxy_auth_blocked_total",
            "Requests refused (429) because their address failed to authenticate too often, "
            "by realm: client, admin, metrics, console.",
            ("realm",),
        )
        self._store: Callable[[], tuple[bool, int, int]] | None = None
        store_up, journal_pending, lost = (
            CallbackFamily(name, help_text, kind, (), partial(self._store_figure, i))
            for i, (name, kind, help_text) in enumerate(_STORE_FIGURES)
        )
        self._store_errors = CounterFamily(
            "costproxy_store_errors_total",
            "Store calls that raised, by operation.",
            ("operation",),
        )
        self._store_latency = HistogramFamily(
            "costproxy_store_latency_seconds",
            "Duration of store calls, by operation.",
            ("operation",),
            _STORE_BUCKETS,
        )
        self._families = (
            self._requests, self._tokens, self._cost, self._billable, self._unpriced, self._whatif,
            self._model_mismatch,
            self._duration, self._ttft, self._overhead, self._upstream_errors, inflight,
            breakers, breaker_opens, self._store_errors, self._store_latency, reloads,
            generation, store_up, journal_pending, lost, ratelimited, self._auth_failures,
            self._auth_blocked,
        )  # fmt: skip
        # CPU, memory, file descriptors: read from /proc at scrape time.
        self._process = CollectorRegistry()
        ProcessCollector(registry=self._process)

        self._overhead_child = self._overhead.labels()
        self._request_children: dict[tuple[str, str, str, int], CounterChild] = {}
        self._spend_children: dict[tuple[str, str, str], _Spend] = {}
        self._whatif_children: dict[tuple[str, str, str], CounterChild] = {}
        self._timing_children: dict[tuple[str, str], _Timing] = {}
        self._store_children = {
            op: (self._store_latency.labels(op), self._store_errors.labels(op))
            for op in STORE_OPERATIONS
        }
        # Series that exist from the start, so that rate() and alerts see the first error.
        for provider in providers:
            for reason in UPSTREAM_ERROR_REASONS:
                self._upstream_errors.labels(provider, reason)
        for model, provider in targets:
            self._timing(model, provider)

    # The request path.

    def request_started(self) -> None:
        self._inflight += 1

    def request_finished(self) -> None:
        self._inflight -= 1

    def observe(self, record: UsageRecord, overhead_s: float, errors: Sequence[str]) -> None:
        """Account for one routed request once it is settled."""
        model, provider = record.model, record.provider
        customer = self.customers.label(record.customer)
        key = (model, provider, customer, record.status)
        requests = self._request_children.get(key) or self._request_child(key)
        requests.inc()
        spend_key = (model, provider, customer)
        spend = self._spend_children.get(spend_key) or self._spend(spend_key)
        # Most requests have no cached or reasoning tokens: skip the zero additions.
        if record.input_tokens:
            spend.input.inc(record.input_tokens)
        if record.cached_input_tokens:
            spend.cached_input.inc(record.cached_input_tokens)
        if record.output_tokens:
            spend.output.inc(record.output_tokens)
        if record.reasoning_tokens:
            spend.reasoning.inc(record.reasoning_tokens)
        timing = self._timing_children.get((model, provider)) or self._timing(model, provider)
        if record.cost_nusd is None:
            timing.unpriced.inc()
        elif record.cost_nusd:
            spend.cost.inc(record.cost_nusd / 1e9)
        if record.billable_nusd:
            spend.billable.inc(record.billable_nusd / 1e9)
        timing.duration.observe(record.latency_ms / 1000)
        if record.ttft_ms is not None:
            timing.ttft.observe(record.ttft_ms / 1000)
        self._overhead_child.observe(overhead_s)
        for reason in errors:
            self._upstream_errors.labels(provider, reason).inc()
        for alternative, nusd in record.what_if.items():
            whatif_key = (model, provider, alternative)
            child = self._whatif_children.get(whatif_key) or self._whatif_child(whatif_key)
            child.inc(nusd / 1e9)

    def rejected(
        self, status: int, model: str = NONE, provider: str = NONE, customer: str | None = None
    ) -> None:
        """Account for a request refused before it went upstream: before routing (model
        and provider "none"), or by a budget (model, provider and customer known)."""
        label = OTHER if customer is None else self.customers.label(customer)
        key = (model, provider, label, status)
        (self._request_children.get(key) or self._request_child(key)).inc()

    def model_mismatch(self, provider: str, model: str, answered: str) -> bool:
        """Count an answer naming another model than the target's; True the first time
        this (provider, model, answered) is seen, so that it is logged once."""
        self._model_mismatch.labels(provider, model).inc()
        key = (provider, model, answered)
        if key in self._mismatches_logged or len(self._mismatches_logged) >= _MISMATCHES_LOGGED:
            return False
        self._mismatches_logged.add(key)
        return True

    def rate_limited(self, kind: str) -> None:
        """A request refused by a rate limit of this kind ("requests" or "tokens")."""
        self._ratelimited[kind].inc()

    def auth_failed(self, kind: str) -> None:
        """A failed authentication, by its error code (a handful of fixed kinds)."""
        self._auth_failures.labels(kind).inc()

    def auth_blocked(self, realm: str) -> None:
        self._auth_blocked.labels(realm).inc()

    def store_call(self, operation: str, seconds: float, failed: bool) -> None:
        latency, errors = self._store_children[operation]
        latency.observe(seconds)
        if failed:
            errors.inc()

    # Scraping.

    def watch_reloads(self, read: Callable[[], tuple[int, int, int]]) -> None:
        """Export the config reloads: `read()` gives (succeeded, failed, generation)."""
        self._reloads = read

    def watch_store(self, read: Callable[[], tuple[bool, int, int]]) -> None:
        """Export the usage recorder's view: `read()` gives (store up, journal pending
        records, records lost)."""
        self._store = read

    def _store_figure(self, index: int) -> list[tuple[tuple[str, ...], float]]:
        return [] if self._store is None else [((), float(self._store()[index]))]

    def watch_budgets(self, read: Callable[[], dict]) -> None:
        """Export the budget guard's figures: `read()` is its `snapshot()`."""
        self._budgets = read

    def _budget_families(self) -> str:
        return (
            "" if self._budgets is None else render_budgets(self._budgets(), self.customers.label)
        )

    def watch_reconcile(self, read: Callable[[], Sequence[ReconcileFigures]]) -> None:
        """Export the scheduled reconciliations: `read()` is the scheduler's `figures()`."""
        self._reconcile = read

    def _reload_counts(self) -> list[tuple[tuple[str, ...], float]]:
        if self._reloads is None:
            return []
        succeeded, failed, _ = self._reloads()
        return [(("ok",), succeeded), (("rejected",), failed)]

    def _breakers(
        self, value: Callable[[TargetHealth, float], float]
    ) -> Iterator[tuple[tuple[str, ...], float]]:
        if self._health is None:
            return
        # The breakers run on the event loop's clock: time.monotonic() for asyncio's loop,
        # and the same clock (to the millisecond) for uvloop's.
        now = time.monotonic()
        for (provider, model), health in self._health.entries():
            yield (provider, model), value(health, now)

    def exposition(self) -> bytes:
        """Every metric in Prometheus' text format (`CONTENT_TYPE`)."""
        text = "".join(family.render() for family in self._families) + self._budget_families()
        if self._reconcile is not None:
            text += render_reconcile(self._reconcile())
        return text.encode() + generate_latest(self._process)

    # Label children, made once each.

    def _request_child(self, key: tuple[str, str, str, int]) -> CounterChild:
        model, provider, customer, status = key
        child = self._requests.labels(model, provider, customer, str(status))
        self._request_children[key] = child
        return child

    def _spend(self, key: tuple[str, str, str]) -> _Spend:
        model, provider, customer = key
        spend = _Spend(
            input=self._tokens.labels(model, provider, customer, "input"),
            cached_input=self._tokens.labels(model, provider, customer, "cached_input"),
            output=self._tokens.labels(model, provider, customer, "output"),
            reasoning=self._tokens.labels(model, provider, customer, "reasoning"),
            cost=self._cost.labels(model, provider, customer),
            billable=self._billable.labels(model, provider, customer),
        )
        self._spend_children[key] = spend
        return spend

    def _whatif_child(self, key: tuple[str, str, str]) -> CounterChild:
        child = self._whatif_children[key] = self._whatif.labels(*key)
        return child

    def _timing(self, model: str, provider: str) -> _Timing:
        timing = _Timing(
            duration=self._duration.labels(model, provider),
            ttft=self._ttft.labels(model, provider),
            unpriced=self._unpriced.labels(model, provider),
        )
        self._timing_children[(model, provider)] = timing
        return timing
