"""`GET /metrics`: on the main port, or on a port of its own when `metrics.port` is set.

When `metrics.token` is set the scrape needs it as a bearer token: labels may name
customers. With neither a token nor a port of its own, /metrics shares the port every
client reaches, so it answers only clients on loopback (a Prometheus on the same host, or
behind a trusted proxy that says where the scrape comes from).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from proxy.access.addresses import is_loopback
from proxy.access.auth import bearer_matches
from proxy.access.throttle import address_of, count_failure, refuse_blocked
from proxy.errors import AuthenticationError, PermissionDeniedError
from proxy.listeners import bind
from proxy.middleware import error_middleware
from proxy.observability.metrics import CONTENT_TYPE
from proxy.state import STATE

__all__ = ["add_metrics_endpoint"]


async def serve_metrics(request: web.Request) -> web.Response:
    state = request.app[STATE]
    token = state.config.metrics.token
    if token is not None:
        refuse_blocked(request, "metrics")
        if not bearer_matches(request.headers, token.get_secret_value()):
            error = AuthenticationError(
                "Invalid or missing metrics token.", code="invalid_metrics_token"
            )
            count_failure(request, "metrics", error)
            raise error
    # Set whole: aiohttp's content_type= does not take the format's version parameter.
    return web.Response(body=state.metrics.exposition(), headers={"Content-Type": CONTENT_TYPE})


async def serve_metrics_on_the_main_port(request: web.Request) -> web.Response:
    if request.app[STATE].config.metrics.token is None and not is_loopback(address_of(request)):
        raise PermissionDeniedError(
            "/metrics answers only on loopback: its figures describe every customer. Set "
            "metrics.token (Prometheus sends it) or metrics.port (a port only Prometheus "
            "reaches) to scrape it from elsewhere.",
            code="metrics_loopback_only",
        )
    return await serve_metrics(request)


async def _metrics_listener(app: web.Application) -> AsyncIterator[None]:
    """A second, metrics-only server for the app's lifetime."""
    state = app[STATE]
    metrics_app = web.Application(middlewares=[error_middleware])
    metrics_app[STATE] = state
    metrics_app.router.add_get("/metrics", serve_metrics)
    runner = web.AppRunner(metrics_app, access_log=None)
    await runner.setup()
    try:
        port = state.config.metrics.port
        if port is None:  # only registered when set (add_metrics_endpoint)
            raise RuntimeError("metrics.port is not set")
        await web.SockSite(runner, bind(state.config.server.host, port)).start()
        yield
    finally:
        await runner.cleanup()


def add_metrics_endpoint(app: web.Application) -> None:
    if app[STATE].config.metrics.port is None:
        app.router.add_get("/metrics", serve_metrics_on_the_main_port)
    else:
        app.cleanup_ctx.append(_metrics_listener)
