"""What the request path reports about each request once it is over: metrics and the
request log. The calls below are the only places the handler reports anything."""

from __future__ import annotations

import logging
import time

from proxy.access.ratelimit import RateLimitError
from proxy.access.throttle import AuthBlockedError
from proxy.accounting.billed_model import answered_as_billed
from proxy.accounting.records import UsageRecord
from proxy.errors import ProxyError
from proxy.observability.metrics import upstream_errors
from proxy.pipeline.exchange import Exchange
from proxy.state import ProxyState

__all__ = ["report_limited", "report_refused", "report_rejected", "report_settled"]

log = logging.getLogger("costproxy.usage")


def report_settled(state: ProxyState, ex: Exchange, record: UsageRecord) -> None:
    """A routed request, settled."""
    # The proxy's own time: everything but the awaits on upstreams and backoffs.
    overhead_s = time.perf_counter() - ex.started - ex.upstream_wait_s
    reasons = upstream_errors(ex.failures, ex.upstream_status)
    state.metrics.observe(record, overhead_s, reasons)
    state.request_log.routed(record, overhead_s, reasons)
    if record.status == 499:
        # One line, no traceback: clients leave all the time, and a client could flood an
        # error log by resetting its connections.
        log.info(
            "client went away: request %s (customer %r, %s, %s) after %d bytes of its "
            "answer; billed %d input and %d output tokens (%s)",
            ex.request_id,
            record.customer,
            record.endpoint,
            record.route,
            ex.sent_bytes,
            record.input_tokens,
            record.output_tokens,
            record.usage_source,
        )
    target, answered = ex.target, ex.answered_model
    if answered and not answered_as_billed(
        target.model, target.provider.wire_model(target.model), answered
    ):
        provider = target.provider.name
        if state.metrics.model_mismatch(provider, target.model, answered):
            log.warning(
                "provider %r answered as model %r a request billed as %r (request %s; "
                "further mismatches of this kind are only counted)",
                provider,
                answered,
                target.model,
                ex.request_id,
            )


def report_rejected(
    state: ProxyState,
    endpoint: str,
    started: float,
    ts_ms: int,
    error: ProxyError,
    *,
    client: str | None = None,
) -> None:
    """A request refused before routing (401, 400, 404, 413), or by a rate limit (429).
    `client`: the address of a request refused before it authenticated."""
    state.metrics.rejected(error.status)
    if isinstance(error, RateLimitError) and not isinstance(error, AuthBlockedError):
        state.metrics.rate_limited(error.type)
    state.request_log.rejected(
        ts_ms, endpoint, error.status, error.code, time.perf_counter() - started, client=client
    )


def report_refused(state: ProxyState, ex: Exchange, error: ProxyError) -> None:
    """A routed request refused before it went upstream (a spent budget: 429)."""
    target = ex.target
    state.metrics.rejected(
        error.status, target.model, target.provider.name, ex.attribution.customer
    )
    state.request_log.rejected(
        ex.ts_ms,
        ex.endpoint,
        error.status,
        error.code,
        time.perf_counter() - ex.started,
        request_id=ex.request_id,
        customer=ex.attribution.customer,
        route=ex.route.name,
        model=target.model,
        provider=target.provider.name,
    )


def report_limited(state: ProxyState, error: ProxyError) -> None:
    """A routed request refused by a limit on its way upstream (a customer at its share
    of a provider's connections): its record reports the rest."""
    if isinstance(error, RateLimitError):
        state.metrics.rate_limited(error.type)
