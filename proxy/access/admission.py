"""Access on the request path: authenticating issued keys, allowed models, rate limits.

Wires an `Authenticator` and `RateLimits` onto the app and runs their background work: the
change watcher (drops caches when any instance changes a key or customer), the batched
last-used writes and a periodic reload of customer limits (in case a change was missed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from proxy.access.auth import Attribution, KeyIndex, Principal
from proxy.access.authenticator import Authenticator
from proxy.access.inflight import InFlight
from proxy.access.limits import RateLimits, Reservation
from proxy.access.throttle import count_failure, refuse_blocked
from proxy.errors import AuthenticationError, NotFoundError
from proxy.routing.routes import Route
from proxy.state import STATE
from proxy.store.base import Store

__all__ = [
    "AUTH",
    "IN_FLIGHT",
    "LIMITS",
    "add_access",
    "admit",
    "authenticate",
    "changed",
    "enter_in_flight",
]

log = logging.getLogger("costproxy.access")

AUTH = web.AppKey("costproxy_auth", Authenticator)
LIMITS = web.AppKey("costproxy_limits", RateLimits)
IN_FLIGHT = web.AppKey("costproxy_in_flight", InFlight)
_RESERVATION = web.RequestKey("costproxy_reservation", Reservation)

LAST_USED_FLUSH_S = 5.0
CUSTOMER_RELOAD_S = 5.0
_WATCH_RETRY_S = 0.5


def add_access(app: web.Application) -> None:
    state = app[STATE]
    app[AUTH] = Authenticator(state.keys, state.store)
    app[LIMITS] = RateLimits(state.config.customers)
    app[IN_FLIGHT] = InFlight()
    app.on_response_prepare.append(_ratelimit_headers)
    app.cleanup_ctx.append(_lifecycle)


async def authenticate(request: web.Request, keys: KeyIndex) -> Principal:
    """The caller's key (401 otherwise), unless its address failed too often (429)."""
    refuse_blocked(request, "client")
    try:
        return await request.app[AUTH].authenticate(request.headers, keys)
    except AuthenticationError as exc:
        count_failure(request, "client", exc)
        raise


async def admit(
    request: web.Request,
    principal: Principal,
    attribution: Attribution,
    body_bytes: int,
    payload: dict,
    route: Route,
    *,
    with_tokens: bool = True,
) -> Reservation | None:
    """404 for a model the key may not use; 429 over a rate limit; else the reservation
    (`with_tokens=False`: the request uses no tokens, only request limits apply)."""
    if principal.models is not None and route.name not in principal.models:
        raise NotFoundError(
            f"The model '{route.name}' does not exist or you do not have access to it.",
            code="model_not_found",
            param="model",
        )
    limits = request.app[LIMITS]
    reservation = await limits.reserve(
        principal,
        attribution.customer,
        body_bytes,
        payload,
        route.max_output_tokens or 0,
        with_tokens=with_tokens,
    )
    if reservation is not None:
        request[_RESERVATION] = reservation
    return reservation


def enter_in_flight(
    request: web.Request, principal: Principal, attribution: Attribution
) -> tuple[str, ...]:
    """429 past the key's or the customer's max_in_flight; else the scopes to leave."""
    limits = request.app[LIMITS].in_flight_limits(principal, attribution.customer)
    return request.app[IN_FLIGHT].enter(limits) if limits else ()


async def _ratelimit_headers(request: web.Request, response: web.StreamResponse) -> None:
    reservation = request.get(_RESERVATION)
    if reservation is not None:
        response.headers.update(reservation.decision.headers())


async def changed(app: web.Application) -> None:
    """After this instance changed a key or customer: drop its caches, tell the others."""
    state = app[STATE]
    app[AUTH].invalidate()
    app[LIMITS].load_customers(await state.store.list_customers())
    await state.store.publish_change()


async def _watch(app: web.Application, store: Store) -> None:
    while True:
        try:
            async for _ in store.watch_changes():
                app[AUTH].invalidate()
                app[LIMITS].load_customers(await store.list_customers())
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the store went away: caches still expire within their TTL
            log.warning("change watcher: %s: %s; retrying", type(exc).__name__, exc)
        await asyncio.sleep(_WATCH_RETRY_S)


async def _flush_last_used(app: web.Application, store: Store) -> None:
    last_used = app[AUTH].take_last_used()
    if last_used:
        try:
            await store.touch_keys(last_used)
        except Exception as exc:  # last-used is informational: never fail a request for it
            log.warning("last-used times not stored: %s: %s", type(exc).__name__, exc)


async def _every(interval_s: float, app: web.Application, store: Store) -> None:
    while True:
        await asyncio.sleep(interval_s)
        await _flush_last_used(app, store)
        try:
            app[LIMITS].load_customers(await store.list_customers())
        except Exception as exc:
            log.warning("customer limits not reloaded: %s: %s", type(exc).__name__, exc)


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    store = app[STATE].store  # opened by the app's first cleanup context
    limits = app[LIMITS]
    limits.start(store.rate_limiter())
    limits.load_customers(await store.list_customers())
    tasks = [
        asyncio.create_task(_watch(app, store)),
        asyncio.create_task(_every(min(LAST_USED_FLUSH_S, CUSTOMER_RELOAD_S), app, store)),
    ]
    yield
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await limits.drain()
    await _flush_last_used(app, store)
