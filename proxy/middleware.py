"""The one place errors become HTTP answers, in the shape of the API the path belongs to
(OpenAI's `{"error": {...}}`, or Anthropic's under `/v1/messages`)."""

from __future__ import annotations

import logging

import orjson
from aiohttp import web

from proxy.apis import OPENAI, Api, api_for_path
from proxy.errors import ProxyError

__all__ = ["error_middleware", "error_response"]

log = logging.getLogger("costproxy")

_HTTP_TYPES = {
    401: ("invalid_request_error", "unauthorized"),
    404: ("invalid_request_error", "not_found"),
    405: ("invalid_request_error", "method_not_allowed"),
    413: ("invalid_request_error", "request_too_large"),
}


def error_response(
    status: int,
    message: str,
    type_: str,
    code: str,
    *,
    param: str | None = None,
    headers=None,
    api: Api = OPENAI,
) -> web.Response:
    body = api.error_body(status, message, type_, code, param)
    return web.Response(
        status=status, body=orjson.dumps(body), content_type="application/json", headers=headers
    )


@web.middleware
async def error_middleware(request: web.Request, handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ProxyError as exc:
        return error_response(
            exc.status,
            exc.message,
            exc.type,
            exc.code,
            param=exc.param,
            headers=exc.headers,
            api=api_for_path(request.path),
        )
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        type_, code = _HTTP_TYPES.get(exc.status, ("invalid_request_error", "http_error"))
        message = exc.reason if exc.status != 404 else f"Unknown path {request.path}"
        return error_response(exc.status, message, type_, code, api=api_for_path(request.path))
    except Exception:  # a bug: log it whole, tell the client nothing about our internals
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(
            500,
            "The proxy hit an internal error.",
            "server_error",
            "internal_error",
            api=api_for_path(request.path),
        )
