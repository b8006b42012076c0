"""One error hierarchy for the proxy; each maps to an OpenAI-style JSON error response.

Anything raised on the request path that is not a `ProxyError` is a bug: the error
middleware turns it into a generic 500 without leaking the traceback to the client.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "ConfigError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "ProxyError",
    "StoreUnavailableError",
    "UnsupportedMediaTypeError",
    "UpstreamError",
]


class ProxyError(Exception):
    status = 500
    type = "server_error"
    code = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.param = param
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


class BadRequestError(ProxyError):
    status = 400
    type = "invalid_request_error"
    code = "invalid_request"


class AuthenticationError(ProxyError):
    status = 401
    type = "invalid_request_error"
    code = "invalid_api_key"


class PermissionDeniedError(ProxyError):
    status = 403
    type = "invalid_request_error"
    code = "permission_denied"


class NotFoundError(ProxyError):
    status = 404
    type = "invalid_request_error"
    code = "not_found"


class PayloadTooLargeError(ProxyError):
    status = 413
    type = "invalid_request_error"
    code = "request_too_large"


class UnsupportedMediaTypeError(ProxyError):
    status = 415
    type = "invalid_request_error"
    code = "unsupported_content_encoding"


class UpstreamError(ProxyError):
    """The upstream could not be reached or did not answer in time (502 / 504)."""

    status = 502
    type = "upstream_error"
    code = "upstream_unreachable"

    def __init__(
        self,
        message: str,
        *,
        status: int = 502,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, code=code, headers=headers)
        self.status = status


class StoreUnavailableError(ProxyError):
    """The usage store did not answer (down, or slower than its deadline)."""

    status = 503
    type = "server_error"
    code = "store_unavailable"


class ConfigError(Exception):
    """The config file is invalid; the message names the file and the path inside it."""
