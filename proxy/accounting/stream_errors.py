"""A stream that ends in an error event: which HTTP status it stands for, and whether the
provider bills it. Pure: no I/O.

Providers keep HTTP 200 once a stream has started and report a later failure in the
stream itself:
- an SSE `event: error` whose data is `{"error": {...}}` (Groq: `status_code` inside);
- a data event with a top-level `error` object beside the chunk fields (OpenRouter:
  `code` is the HTTP status; it may carry the final usage as well);
- a Responses `error` event (`{"type": "error", "error": {"type", "code"}}`), then
  `response.failed` whose `response.error` holds the code (OpenAI).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["StreamError", "error_of_event", "status_of_error"]

# Error types and codes (OpenAI's, Anthropic's, and those of OpenAI-compatible APIs) →
# the HTTP status the same error gets when it is answered before the stream starts.
_STATUS_BY_NAME = {
    "insufficient_quota": 429,
    "rate_limit_exceeded": 429,
    "rate_limit_error": 429,
    "rate_limited": 429,
    "too_many_requests": 429,
    "invalid_request_error": 400,
    "invalid_request": 400,
    "invalid_prompt": 400,
    "context_length_exceeded": 400,
    "tool_use_failed": 400,
    "bad_request": 400,
    "authentication_error": 401,
    "invalid_api_key": 401,
    "permission_error": 403,
    "permission_denied": 403,
    "not_found_error": 404,
    "model_not_found": 404,
    "request_too_large": 413,
    "server_error": 500,
    "api_error": 500,
    "internal_error": 500,
    "internal_server_error": 500,
    "service_unavailable": 503,
    "timeout": 504,
    "overloaded_error": 529,  # Anthropic answers an overload with 529
}
_UNKNOWN_ERROR_STATUS = 500


@dataclass(frozen=True, slots=True)
class StreamError:
    """An error a stream ended with: the status to record, and whether the provider
    bills the request (quota and rate-limit refusals come before any work: they don't;
    nor does a failure the stream shows came before any work, `work_started=False`)."""

    status: int
    work_started: bool = True

    @property
    def billed(self) -> bool:
        return self.work_started and self.status != 429


def _http_status(value: Any) -> int | None:
    if type(value) is int and 400 <= value <= 599:
        return value
    if isinstance(value, str) and value.isdigit() and 400 <= int(value) <= 599:
        return int(value)
    return None


def status_of_error(error: Any) -> int:
    """The HTTP status an error object stands for: its own status field when it has one
    (`status_code`, `status`, or a numeric `code`), else by its code, then its type."""
    if not isinstance(error, dict):
        return _UNKNOWN_ERROR_STATUS
    for field in ("status_code", "status", "code"):
        status = _http_status(error.get(field))
        if status is not None:
            return status
    for field in ("code", "type"):
        name = error.get(field)
        if isinstance(name, str) and name.lower() in _STATUS_BY_NAME:
            return _STATUS_BY_NAME[name.lower()]
    return _UNKNOWN_ERROR_STATUS


def error_of_event(name: str, data: Any) -> StreamError | None:
    """The error one stream event reports, or None. `name` is the SSE `event:` field
    ("" when absent), `data` the event's parsed JSON."""
    if not isinstance(data, dict):
        return StreamError(_UNKNOWN_ERROR_STATUS) if name == "error" else None
    kind = data.get("type")
    if kind == "response.failed":
        response = data.get("response")
        error = response.get("error") if isinstance(response, dict) else None
        return StreamError(status_of_error(error))
    error = data.get("error")
    if isinstance(error, dict):
        return StreamError(status_of_error(error))
    if name == "error" or kind == "error":
        return StreamError(status_of_error(data))  # the error's fields at the top level
    return None
