"""`create_app(config)`: wiring and lifecycle only."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path

from aiohttp import web

from proxy.access.admission import LIMITS, add_access
from proxy.admin.api import add_admin_api
from proxy.admin.routes import json_response
from proxy.apis import ENDPOINTS
from proxy.budgets.alert_delivery import AlertDispatcher
from proxy.budgets.book import BudgetBook
from proxy.budgets.guard import BUDGETS, BudgetGuard, add_remaining_header
from proxy.budgets.service import configured_budgets
from proxy.budgets.webhooks import WebhookSender
from proxy.config import Config
from proxy.console.routes import add_console
from proxy.middleware import error_middleware
from proxy.observability.endpoint import add_metrics_endpoint
from proxy.observability.request_log import flushing_request_log
from proxy.pipeline.handler import endpoint_handler
from proxy.pipeline.models import add_model_routes
from proxy.providers.transport import TransportFactory
from proxy.reconcile.schedule import RECONCILER, ReconcileScheduler, reconciling
from proxy.reload import RELOADER, Reloader
from proxy.state import STATE, build_state
from proxy.store.base import Store
from proxy.store.factory import make_store

__all__ = ["build_budget_guard", "create_app"]

log = logging.getLogger("costproxy.app")


def build_budget_guard(
    config: Config, store: Store, store_up: Callable[[], bool] = lambda: True
) -> BudgetGuard:
    return BudgetGuard(
        store,
        BudgetBook(configured_budgets(config), {}),
        config.budgeting,
        AlertDispatcher(
            store, WebhookSender.from_config(config.alerts), forecast=config.alerts.forecast
        ),
        store_up,
        history_days=config.store.retention_days,
    )


def _reload_hooks(app: web.Application, reloader: Reloader) -> None:
    """How the parts built at start-up take a reloaded config (see reload.SECTIONS)."""
    state, guard, limits = app[STATE], app[BUDGETS], app[LIMITS]

    def budgets(config: Config) -> None:
        guard.use_configured(configured_budgets(config))
        guard.settings = config.budgeting

    def alerts(config: Config) -> None:
        guard.alerts.forecast = config.alerts.forecast
        guard.alerts.webhooks.configure(config.alerts)

    def request_log(config: Config) -> None:
        state.request_log.enabled = config.request_log.enabled

    reloader.add_hook("breakers", lambda c: state.health.adopt(state.routes.values(), c.breaker))
    reloader.add_hook("budgets", budgets)
    reloader.add_hook("alerts", alerts)
    reloader.add_hook("rate_limits", lambda c: limits.use_config(c.customers))
    reloader.add_hook("request_log", request_log)
    reloader.add_hook("reconcile", lambda c: app[RECONCILER].wake())
    missing = reloader.missing_hooks()
    if missing:  # a section would silently keep its start-up value: a bug, not a config error
        raise RuntimeError(f"reload hooks not registered: {', '.join(missing)}")


def create_app(
    config: Config,
    *,
    store: Store | None = None,
    config_path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    make_transport: TransportFactory | None = None,
) -> web.Application:
    """The proxy. With `config_path`, the config can be reloaded from that file (SIGHUP,
    POST /admin/v1/reload, or `reload.watch`); `env` is what it interpolates then.
    `make_transport` builds each provider's transport (default: aiohttp, pooled; tests
    pass a `MockTransport` to run the request path in process)."""
    app = web.Application(
        middlewares=[error_middleware],
        client_max_size=config.server.max_body_bytes,
    )
    source = str(config_path) if config_path is not None else "<config>"
    state = build_state(
        config, store or make_store(config.store), source=source, make_transport=make_transport
    )
    app[STATE] = state
    if config_path is not None:
        reloader = app[RELOADER] = Reloader(state, Path(config_path), env)
        state.metrics.watch_reloads(
            lambda: (reloader.succeeded, reloader.failed, state.snapshot.generation)
        )
    recorder = state.recorder
    state.metrics.watch_store(
        lambda: (recorder.store_available, recorder.journal_pending_records, recorder.lost)
    )
    app[BUDGETS] = guard = build_budget_guard(config, state.store, lambda: recorder.store_available)
    state.metrics.watch_budgets(guard.snapshot)
    app[RECONCILER] = reconciler = ReconcileScheduler(state, env)
    state.metrics.watch_reconcile(reconciler.figures)
    app.on_response_prepare.append(add_remaining_header)

    async def health(request: web.Request) -> web.Response:
        # Always 200 while serving (liveness); the store's state is in the body.
        recorder = state.recorder
        body = {
            "status": "ok",
            "store": "up" if recorder.store_available else "down",
            "journal_pending_records": recorder.journal_pending_records,
        }
        return json_response(body)

    for endpoint in ENDPOINTS:
        app.router.add_post(endpoint.path, endpoint_handler(endpoint))
    add_model_routes(app)
    app.router.add_get("/healthz", health)
    add_admin_api(app)
    add_console(app)
    app.cleanup_ctx.append(_lifecycle)
    app.cleanup_ctx.append(_budgets_lifecycle)
    app.cleanup_ctx.append(reconciling)  # after _lifecycle: it needs the store open
    if config_path is not None:
        app.cleanup_ctx.append(_reloading)
    add_access(app)  # after _lifecycle: it needs the store open
    if config_path is not None:
        _reload_hooks(app, app[RELOADER])
    add_metrics_endpoint(app)
    app.cleanup_ctx.append(flushing_request_log)
    return app


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    state = app[STATE]
    # Opens the journal and the store (a store that is down is retried in the background).
    await state.recorder.start()
    try:
        await state.runtime.start()
        yield
        # Shutdown: the server has stopped taking requests and waited for running ones;
        # every record is now written to the store or the journal, and the journal closed.
        await state.recorder.close()
    finally:
        await state.runtime.close()
        await state.store.close()


async def _reloading(app: web.Application) -> AsyncIterator[None]:
    """SIGHUP and the file watch, while the app runs."""
    reloader = app[RELOADER]
    loop = asyncio.get_running_loop()
    sighup = getattr(signal, "SIGHUP", None)  # not on Windows
    if sighup is not None:
        loop.add_signal_handler(sighup, reloader.reload_in_background, "SIGHUP")
    watcher = loop.create_task(reloader.watch())
    try:
        yield
    finally:
        if sighup is not None:
            loop.remove_signal_handler(sighup)
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        await reloader.close()


async def _budgets_lifecycle(app: web.Application) -> AsyncIterator[None]:
    """After the store opens, before it closes: run-time budgets, settles, alerts."""
    guard = app[BUDGETS]
    try:
        await guard.refresh()
    except Exception as exc:  # the store is down at start: the refresher retries
        log.error("run-time budgets not loaded yet: %s: %s", type(exc).__name__, exc)
    # Budgets added while the proxy was stopped count the period's spend so far.
    guard.seed_soon(guard.book.effective)
    await guard.alerts.webhooks.start()
    refresher = asyncio.get_running_loop().create_task(guard.refresh_forever())
    try:
        yield
    finally:
        refresher.cancel()
        await guard.drain()  # settles (and the alert checks they run) finish first
        await guard.alerts.webhooks.close()
