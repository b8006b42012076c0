"""The request path of the client endpoints (OpenAI's and Anthropic's), top to bottom.
What differs between the two APIs is asked of the endpoint's `Api` (proxy.apis)."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping

from aiohttp import web

from proxy.access.admission import IN_FLIGHT, LIMITS, admit, authenticate, enter_in_flight
from proxy.access.auth import attribute, check_end_user_source
from proxy.access.throttle import address_of
from proxy.apis import Endpoint
from proxy.budgets.guard import BUDGETS
from proxy.errors import NotFoundError, ProxyError
from proxy.pipeline.exchange import Exchange, settle
from proxy.pipeline.forward import forward, order_for_request
from proxy.pipeline.relay import client_left
from proxy.pipeline.request import read_payload
from proxy.pipeline.telemetry import (
    report_limited,
    report_refused,
    report_rejected,
    report_settled,
)
from proxy.routing.routes import Route
from proxy.state import STATE

__all__ = ["endpoint_handler"]

_API_NAMES = {"openai": "the OpenAI-compatible API", "anthropic": "Anthropic's Messages API"}


def _route(routes: Mapping[str, Route], model: str, endpoint: Endpoint) -> Route:
    """The route the body's model names, if it serves this endpoint's API (404 if not)."""
    route = routes.get(model)
    if route is None:
        raise NotFoundError(
            f"The model '{model}' does not exist or you do not have access to it.",
            code="model_not_found",
            param="model",
        )
    if route.api != endpoint.api.name:
        raise NotFoundError(
            f"The model '{model}' is served on {_API_NAMES.get(route.api, route.api)}, "
            f"not on {endpoint.path}.",
            code="model_not_found",
            param="model",
        )
    return route


async def handle(request: web.Request, endpoint: Endpoint) -> web.StreamResponse:
    state = request.app[STATE]
    started = time.perf_counter()
    ts_ms = time.time_ns() // 1_000_000
    api = endpoint.api
    in_flight = request.app[IN_FLIGHT]

    # The config as it is now serves this request to its end, whatever reloads happen.
    with state.runtime.pinned() as snapshot:
        # 1. Who is calling (401), what they sent (400/413), where it goes (404), for whom;
        #    whether it may start now (429: too many in flight, over a rate limit).
        authenticated = False
        try:
            principal = await authenticate(request, snapshot.keys)
            authenticated = True
            server = snapshot.config.server
            raw, payload = await read_payload(
                request, server.max_body_bytes, accept_compressed=server.accept_compressed_bodies
            )
            api.check_payload(endpoint.name, payload)
            route = _route(snapshot.routes, payload["model"], endpoint)
            attribution = attribute(principal, request.headers, api.end_user(payload))
            customer = snapshot.config.customers.get(attribution.customer)
            if customer is not None:
                check_end_user_source(principal, attribution, customer.end_user_ids)
            slots = enter_in_flight(request, principal, attribution)  # left in `finally`
            try:
                reservation = await admit(
                    request,
                    principal,
                    attribution,
                    len(raw),
                    payload,
                    route,
                    with_tokens=endpoint.billed,
                )
                state.recorder.admit()  # 503 while the store is down, under fail_closed
            except BaseException:
                in_flight.leave(slots)
                raise
        except ProxyError as exc:
            # Refused before it authenticated: its address is all the log can name.
            client = None if authenticated else address_of(request)
            report_rejected(state, endpoint.name, started, ts_ms, exc, client=client)
            raise

        try:
            # 2. Forward to the route's targets in the strategy's order, relaying the answer.
            order = await order_for_request(
                route, endpoint.name, payload, state.health, state.rng, ts_ms
            )
            ex = Exchange(
                request_id="req_" + os.urandom(12).hex(),
                ts_ms=ts_ms,
                started=started,
                endpoint=endpoint.name,
                api=api,
                payload=payload,
                principal=principal,
                attribution=attribution,
                route=route,
                target=order[0],
                billed=endpoint.billed,
                query=request.query_string if api.forwards_query else "",
                markup=snapshot.billing.for_customer(attribution.customer),
            )
            budgets = request.app[BUDGETS]
            try:
                # 429: nothing goes upstream. A free endpoint is not held against budgets.
                hold = await budgets.reserve(request, ex, len(raw)) if endpoint.billed else None
            except ProxyError as exc:
                exc.headers.setdefault("x-request-id", ex.request_id)
                report_refused(state, ex, exc)
                raise
            try:
                return await forward(request, ex, order, raw, state.health, state.rng)
            except ProxyError as exc:
                # A client that left before its answer gets none: recorded as gone, not as
                # the error it would have been sent.
                ex.status = 499 if client_left(request) else exc.status
                exc.headers.setdefault("x-request-id", ex.request_id)  # its record's id
                report_limited(state, exc)
                raise
            finally:
                # 3. Settle: every routed request is recorded exactly once, however it
                # ended (a free endpoint's only in the metrics and the request log: it has
                # no usage).
                record = settle(ex)
                if endpoint.billed:
                    state.recorder.submit(record)
                budgets.settle(hold, record.cost_nusd)
                if reservation is not None:
                    request.app[LIMITS].settle(reservation, record)
                report_settled(state, ex, record)
        finally:
            in_flight.leave(slots)


def endpoint_handler(endpoint: Endpoint):
    async def handler(request: web.Request) -> web.StreamResponse:
        metrics = request.app[STATE].metrics
        metrics.request_started()
        try:
            return await handle(request, endpoint)
        finally:
            metrics.request_finished()

    handler.__name__ = f"handle_{endpoint.name.replace('.', '_')}"
    return handler
