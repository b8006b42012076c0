"""The one place errors become HTTP answers, in OpenAI's error shape."""

from __future__ import annotations

import logging

import orjson
from aiohttp import web

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
    status: int, message: str, type_: str, code: str, *, param: str | None = None, headers=None
) -> web.Response:
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return web.Response(
        status=status, body=orjson.dumps(body), content_type="application/json", headers=headers
    )


@web.middleware
async def error_middleware(request: web.Request, handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ProxyError as exc:
        return error_response(
            exc.status, exc.message, exc.type, exc.code, param=exc.param, headers=exc.headers
        )
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        type_, code = _HTTP_TYPES.get(exc.status, ("invalid_request_error", "http_error"))
        message = exc.reason if exc.status != 404 else f"Unknown path {request.path}"
        return error_response(exc.status, message, type_, code)
    except Exception:  # a bug: log it whole, tell the client nothing about our internals
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(
            500, "The proxy hit an internal error.", "server_error", "internal_error"
        )
