"""The request path of the OpenAI-compatible endpoints, top to bottom."""

from __future__ import annotations

import os
import time

from aiohttp import web

from proxy.auth import attribute
from proxy.errors import NotFoundError, ProxyError
from proxy.pipeline.exchange import Exchange, settle
from proxy.pipeline.relay import relay_json, relay_stream
from proxy.pipeline.request import read_payload, upstream_body, upstream_headers
from proxy.pipeline.telemetry import report_rejected, report_settled
from proxy.state import STATE

__all__ = ["endpoint_handler"]


async def handle(request: web.Request, endpoint: str) -> web.StreamResponse:
    state = request.app[STATE]
    started = time.perf_counter()
    ts_ms = time.time_ns() // 1_000_000

    # 1. Who is calling (401), what they sent (400/413), where it goes (404), for whom.
    try:
        principal = state.keys.authenticate(request.headers)
        raw, payload = await read_payload(request, endpoint, state.config.server.max_body_bytes)
        route = state.routes.get(payload["model"])
        if route is None:
            raise NotFoundError(
                f"The model '{payload['model']}' does not exist or you do not have access to it.",
                code="model_not_found",
                param="model",
            )
        attribution = attribute(principal, request.headers, payload.get("user"))
    except ProxyError as exc:
        report_rejected(state, endpoint, started, ts_ms, exc)
        raise

    # 2. Forward to the chosen target, relaying its answer as it comes.
    target = route.choose()
    ex = Exchange(
        request_id="req_" + os.urandom(12).hex(),
        ts_ms=ts_ms,
        started=started,
        endpoint=endpoint,
        payload=payload,
        principal=principal,
        attribution=attribution,
        route=route,
        target=target,
    )
    body, injected_usage = upstream_body(raw, payload, endpoint, target.model)
    headers = upstream_headers(request.headers, target.provider.headers())
    error_code: str | None = None
    try:
        if payload.get("stream") is True:
            return await relay_stream(request, ex, body, headers, injected_usage)
        return await relay_json(ex, body, headers)
    except ProxyError as exc:
        ex.status = exc.status
        error_code = exc.code
        raise
    finally:
        # 3. Settle: every routed request is recorded exactly once, however it ended.
        record = settle(ex)
        state.recorder.submit(record)
        report_settled(state, ex, record, error_code)


def endpoint_handler(endpoint: str):
    async def handler(request: web.Request) -> web.StreamResponse:
        metrics = request.app[STATE].metrics
        metrics.request_started()
        try:
            return await handle(request, endpoint)
        finally:
            metrics.request_finished()

    handler.__name__ = f"handle_{endpoint.replace('.', '_')}"
    return handler
