"""Anthropic's Messages API: `POST /v1/messages` (plain and streamed) and
`POST /v1/messages/count_tokens`, relayed to `anthropic` providers.

Usage is read as Anthropic counts it (accounting.anthropic_usage); a stream carries it in
`message_start` and `message_delta` and nothing is injected into it. The proxy's own
errors take Anthropic's shape, `{"type": "error", "error": {"type", "message"}}`, with the
error type Anthropic uses for the status.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from multidict import MultiMapping

from proxy.accounting.anthropic_stream import MessageStreamWatcher
from proxy.accounting.anthropic_usage import message_text, normalise_message_usage
from proxy.accounting.pricing import NO_SIZE_TIERS, STANDARD, PriceContext
from proxy.accounting.usage import Reading, find_usage, parsed_reading
from proxy.apis.base import Api, StreamWatcher
from proxy.errors import BadRequestError

__all__ = ["ANTHROPIC", "AnthropicApi", "error_type"]

# Anthropic's error types by HTTP status (docs: API errors); other 4xx are
# invalid_request_error, other 5xx api_error.
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}
# The beta that opts a request into the 1M-token context, and with it the long-context
# prices above 200k input tokens (docs: pricing, "Long context pricing").
_LONG_CONTEXT_BETA = "context-1m"
# No model generates more; past it a value is a mistake, or an attempt to overflow the
# budget reservation, which multiplies it by a price.
_MAX_TOKENS = 2**31 - 1


def error_type(status: int) -> str:
    return _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


def _bad(message: str, param: str) -> BadRequestError:
    return BadRequestError(f"{param}: {message}", code="invalid_request", param=param)


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


class AnthropicApi(Api):
    name = "anthropic"
    forwards_query = True  # the SDKs' beta clients add `?beta=true`

    def check_payload(self, endpoint: str, payload: dict[str, Any]) -> None:
        """What the proxy relies on to route, bill and attribute; the rest (roles, block
        types, `max_tokens` being required) is Anthropic's to judge."""
        model = payload.get("model")
        if model is None:
            raise _bad("Field required", "model")
        if not isinstance(model, str) or not model:
            raise _bad("Input should be a non-empty string", "model")
        if "messages" not in payload:
            raise _bad("Field required", "messages")
        if not isinstance(payload["messages"], list):
            raise _bad("Input should be a valid list", "messages")
        stream = payload.get("stream")
        if stream is not None and not isinstance(stream, bool):
            raise _bad("Input should be a valid boolean", "stream")
        max_tokens = payload.get("max_tokens")
        if max_tokens is not None and not _count(max_tokens):
            raise _bad("Input should be a non-negative integer", "max_tokens")
        if max_tokens is not None and max_tokens > _MAX_TOKENS:
            raise _bad(f"Input should be less than or equal to {_MAX_TOKENS}", "max_tokens")
        metadata = payload.get("metadata")
        if metadata is not None:
            if not isinstance(metadata, dict):
                raise _bad("Input should be a valid dictionary", "metadata")
            user_id = metadata.get("user_id")
            if user_id is not None and not isinstance(user_id, str):
                raise _bad("Input should be a valid string", "metadata.user_id")

    def end_user(self, payload: Mapping[str, Any]) -> object:
        metadata = payload.get("metadata")
        return metadata.get("user_id") if isinstance(metadata, dict) else None

    def read_body(self, body: bytes, endpoint: str) -> Reading:
        return find_usage(body, endpoint, normalise_message_usage)

    def read_parsed(self, parsed: Any, endpoint: str) -> Reading:
        return parsed_reading(parsed, endpoint, normalise_message_usage)

    def completion_text(self, endpoint: str, parsed: Any) -> str:
        return message_text(parsed)

    def stream_watcher(
        self, endpoint: str, *, suppress_usage_chunk: bool, text_sink: Callable[[str], None]
    ) -> StreamWatcher:
        return MessageStreamWatcher(text_sink=text_sink)

    def error_body(
        self, status: int, message: str, type_: str, code: str, param: str | None
    ) -> dict[str, Any]:
        return {"type": "error", "error": {"type": error_type(status), "message": message}}

    def price_context(self, upstream_headers: MultiMapping[str]) -> PriceContext:
        for value in upstream_headers.getall("anthropic-beta", ()):  # a list, or repeated
            if any(b.strip().startswith(_LONG_CONTEXT_BETA) for b in value.split(",")):
                return STANDARD
        return NO_SIZE_TIERS


ANTHROPIC = AnthropicApi()
