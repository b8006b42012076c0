"""Forwarding with retries: order the route's targets, try them until one answers, relay it.

Attempts end at the first byte sent to the client. Before it, a connection error, a
timeout, a 429 or a 5xx moves on to the next target (or the same one after a backoff);
after it, the answer is the client's, failures included. Each attempt updates its
target's breaker and latency figures.
"""

from __future__ import annotations

import asyncio
import random
import time
from contextlib import AbstractAsyncContextManager, nullcontext
from datetime import UTC, datetime

from aiohttp import web

from proxy.access.inflight import ConcurrencyLimitError
from proxy.accounting import tokens
from proxy.budgets.rules import stated_max_output
from proxy.errors import UpstreamError
from proxy.pipeline.exchange import Exchange
from proxy.pipeline.relay import Answer, deliver, fetch, relay_stream, whole_response
from proxy.pipeline.request import has_duplicate_model, upstream_body, upstream_headers
from proxy.providers.share import PoolFull
from proxy.routing.retry import (
    Failure,
    RetryPolicy,
    is_retryable_status,
    next_attempt,
    retry_after_s,
)
from proxy.routing.routes import Route, RoutingInputs, Target, order_targets
from proxy.routing.target_health import HealthBook, TargetHealth

__all__ = ["forward", "order_for_request"]


def _estimated_tokens(route: Route, endpoint: str, payload: dict) -> tuple[int, int]:
    """(input, output) tokens `cheapest` compares prices for. Output: the request's own
    limit, else the route's; else as many as the input (no better guess without one)."""
    prompt = tokens.count_prompt(endpoint, payload, route.targets[0].model)
    if endpoint == "embeddings":
        return prompt, 0
    stated = stated_max_output(payload)
    if stated is not None:
        return prompt, stated
    return prompt, route.max_output_tokens or prompt


async def order_for_request(
    route: Route,
    endpoint: str,
    payload: dict,
    health: HealthBook,
    rng: random.Random,
    when_ms: int,
) -> tuple[Target, ...]:
    """The route's targets in the order this request tries them (strategy inputs gathered
    here; the choice itself is routing.order_targets, a pure function)."""
    inputs = RoutingInputs()
    if route.strategy == "weighted":
        inputs = RoutingInputs(u=rng.random())
    elif route.strategy == "cheapest" and len(route.targets) > 1:
        await tokens.ready(route.targets[0].model)  # loaded off the event loop, once
        input_tokens, output_tokens = _estimated_tokens(route, endpoint, payload)
        inputs = RoutingInputs(
            input_tokens=input_tokens, output_tokens=output_tokens, when_ms=when_ms
        )
    elif route.strategy == "lowest_latency":
        inputs = RoutingInputs(
            latency_ms=health.latency_ms(route.targets), seq=health.next_seq(route.name)
        )
    return order_targets(route, inputs)


def _deadline(at: float | None) -> AbstractAsyncContextManager[object]:
    return nullcontext() if at is None else asyncio.timeout_at(at)


class _OutOfTime(UpstreamError):
    """The route's time budget ran out: no attempt may follow, whatever the loop's clock
    says (uvloop's clock is read once per loop iteration, so a timer may fire a little
    before `loop.time()` reaches its deadline)."""


def _out_of_time(route: Route) -> UpstreamError:
    return _OutOfTime(
        f"Route {route.name!r} found no answer within {route.timeout_s}s.",
        status=504,
        code="upstream_timeout",
    )


def _over_share(ex: Exchange, target: Target) -> ConcurrencyLimitError:
    share = target.provider.share
    return ConcurrencyLimitError(
        f"Customer {ex.attribution.customer!r} has {share.per_customer} requests in flight "
        f"to provider {target.provider.name!r}, its share of the provider's "
        f"{share.capacity} connections. Retry when one of them has finished.",
        kind="provider_share",
    )


async def _take_slot(ex: Exchange, target: Target, deadline: float | None) -> bool | UpstreamError:
    """A connection slot of the target's provider for the request's customer: True; False
    when the customer holds its share; an error (503, the proxy's own, never a failure of
    the provider) when the pool stayed full for the provider's connect timeout."""
    provider = target.provider
    wait_s = provider.config.connect_timeout_s
    if deadline is not None:
        wait_s = max(0.0, min(wait_s, deadline - asyncio.get_running_loop().time()))
    waiting = time.perf_counter()
    try:
        return await provider.share.acquire(ex.attribution.customer, wait_s)
    except PoolFull:
        return UpstreamError(
            f"The proxy's {provider.share.capacity} connections to provider "
            f"{provider.name!r} are all in use.",
            status=503,
            code="provider_pool_full",
            headers={"Retry-After": "1"},
        )
    finally:
        ex.upstream_wait_s += time.perf_counter() - waiting  # waiting, not proxy work


def _failed(ex: Exchange, health: TargetHealth, now: float, reason: str) -> None:
    ex.failures.append(reason)  # for metrics and the request log, by reason
    health.failures += 1
    health.last_error = reason
    health.breaker.failure(now)


async def _attempt(
    request: web.Request, ex: Exchange, raw: bytes, deadline: float | None, duplicate_model: bool
) -> tuple[Answer | UpstreamError, bool]:
    """One attempt on `ex.target`: its answer or the error it failed with, and whether
    the proxy asked for stream usage itself."""
    target = ex.target
    body, injected_usage = upstream_body(
        raw,
        ex.payload,
        ex.endpoint,
        target.provider.wire_model(target.model),
        duplicate_model=duplicate_model,
    )
    provider = target.provider
    headers = upstream_headers(
        request.headers, provider.headers(), target.forward_headers, provider.default_headers()
    )
    ex.price_context = ex.api.price_context(headers)
    try:
        async with _deadline(deadline):
            return await fetch(ex, body, headers, ex.payload.get("stream") is True), injected_usage
    except TimeoutError:  # the route's time budget ran out during the attempt
        return _out_of_time(ex.route), injected_usage
    except UpstreamError as exc:
        return exc, injected_usage


def _failure_reason(outcome: Answer | UpstreamError) -> str | None:
    """Why an attempt counts as failed (and may be retried), or None: relay it."""
    if isinstance(outcome, UpstreamError):
        return outcome.code
    if outcome.data is not None and is_retryable_status(outcome.status):
        return f"http {outcome.status}"
    return None  # any other answer shows the target is up, a 4xx included


async def forward(
    request: web.Request,
    ex: Exchange,
    order: tuple[Target, ...],
    raw: bytes,
    health: HealthBook,
    rng: random.Random,
) -> web.StreamResponse:
    """Try `order` until an answer can be relayed; raises UpstreamError (502/504) when
    the last attempt failed without an HTTP answer."""
    loop = asyncio.get_running_loop()
    route = ex.route
    policy = RetryPolicy(
        max_attempts=1 + route.retries,
        backoff_base_s=route.backoff_base_s,
        backoff_max_s=route.backoff_max_s,
        deadline=None if route.timeout_s is None else loop.time() + route.timeout_s,
    )
    # When no target's breaker lets requests through, they are all tried anyway: a
    # breaker moves load to healthy targets, it never fails a request on its own.
    panic = not any(health.of(t).breaker.allows(loop.time()) for t in order)
    failures: list[Failure] = []
    refused: set[int] = set()  # lost the half-open probe slot to another request
    over_share: set[int] = set()  # the customer holds its share of the target's pool
    duplicate_model = has_duplicate_model(raw)
    last: Answer | UpstreamError | None = None
    customer = ex.attribution.customer
    while True:
        now = loop.time()
        skip = frozenset(
            i
            for i, t in enumerate(order)
            if i in over_share
            or (not panic and (i in refused or not health.of(t).breaker.allows(now)))
        )
        step = next_attempt(len(order), failures, policy, now, rng.random(), skip)
        if step is None:
            if last is None and not panic and len(over_share) < len(order):
                panic = True  # every target refused: try them anyway
                continue
            break
        if step.wait_s:
            backing_off = time.perf_counter()  # waiting, not proxy work: not overhead
            await asyncio.sleep(step.wait_s)
            ex.upstream_wait_s += time.perf_counter() - backing_off
        target = order[step.index]
        slot = await _take_slot(ex, target, policy.deadline)
        if slot is False:
            over_share.add(step.index)
            continue
        if isinstance(slot, UpstreamError):  # our pool, full: not the provider's failure
            last = slot
            failures.append(Failure(step.index, loop.time(), None))
            continue
        try:  # the slot is given back however the attempt ends, the stream included
            target_health = health.of(target)
            if not panic and not target_health.breaker.acquire(loop.time()):
                refused.add(step.index)
                continue
            ex.target, ex.attempts = target, len(failures) + 1
            target_health.requests += 1
            started = loop.time()
            try:
                outcome, injected_usage = await _attempt(
                    request, ex, raw, policy.deadline, duplicate_model
                )
            except BaseException:  # the client went away: the attempt has no outcome
                if not panic:
                    target_health.breaker.release()
                raise
            reason = _failure_reason(outcome)
            if reason is not None:
                last = outcome
                _failed(ex, target_health, loop.time(), reason)
                if isinstance(outcome, _OutOfTime):
                    break
                wait = None
                if isinstance(outcome, Answer):
                    wait = retry_after_s(outcome.upstream.headers, datetime.now(UTC))
                failures.append(Failure(step.index, loop.time(), wait))
                continue
            assert isinstance(outcome, Answer)
            target_health.breaker.success()
            target_health.observe_latency((loop.time() - started) * 1000)
            if outcome.first_chunk is None:
                return await deliver(request, ex, await whole_response(ex, outcome))
            response = await relay_stream(request, ex, outcome, injected_usage)
            if ex.status == 502:
                _failed(ex, target_health, loop.time(), "stream broken")
            return response
        finally:
            target.provider.share.release(customer)
    if last is None and over_share:  # every target this request could use is held
        raise _over_share(ex, order[min(over_share)])
    if isinstance(last, Answer):
        # The last upstream error, as the upstream sent it.
        return await deliver(request, ex, await whole_response(ex, last))
    if last is None:  # the time budget ran out before any attempt could start
        last = _out_of_time(route)
    last.headers |= {"x-request-id": ex.request_id, "x-costproxy-attempts": str(ex.attempts)}
    raise last
