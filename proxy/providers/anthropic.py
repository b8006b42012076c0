"""Anthropic's own API: the Messages endpoints under the API root, the key in `x-api-key`.

`anthropic-version` and `anthropic-beta` come from the client (the Anthropic SDKs send
them) and go upstream unchanged; a provider's `headers` may set them instead, and a
request that names no version gets the documented one.
"""

from __future__ import annotations

from proxy.providers.base import Provider

__all__ = ["ANTHROPIC_PATHS", "DEFAULT_ANTHROPIC_VERSION", "AnthropicProvider"]

ANTHROPIC_PATHS = {
    "messages": "/v1/messages",
    "messages.count_tokens": "/v1/messages/count_tokens",
}
# The one version Anthropic documents (docs: API versioning); newer SDKs send their own.
DEFAULT_ANTHROPIC_VERSION = "2023-06-01"


class AnthropicProvider(Provider):
    kind = "anthropic"
    api = "anthropic"
    # The headers Anthropic's API defines for a client to send (its version, the betas
    # the client opts into), and its own request id.
    request_headers = ("Accept", "anthropic-version", "anthropic-beta")
    response_headers = ("request-id",)

    def auth_headers(self) -> dict[str, str]:
        if self.config.api_key is None or not self.config.api_key.get_secret_value():
            return {}  # e.g. a gateway in front that authenticates, configured via `headers`
        return {"x-api-key": self.config.api_key.get_secret_value()}

    def default_headers(self) -> dict[str, str]:
        return {"anthropic-version": DEFAULT_ANTHROPIC_VERSION}

    def url(self, endpoint: str, model: str) -> str:
        return self.config.base_url + ANTHROPIC_PATHS[endpoint]
