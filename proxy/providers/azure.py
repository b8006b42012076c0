"""Azure OpenAI: one deployment per model in the URL, `api-version`, and an `api-key` header.

A target's `model` stays the model name (it is what is billed, under the provider's price
namespace); `deployments` maps it to the deployment name where the two differ.
"""

from __future__ import annotations

from urllib.parse import quote

from proxy.providers.base import ENDPOINT_PATHS, Provider

__all__ = ["AzureProvider"]

# The Responses API is not per deployment: the deployment goes in the body's `model`.
_UNDEPLOYED = frozenset({"responses"})


class AzureProvider(Provider):
    kind = "azure"
    request_headers = ("Accept", "x-ms-client-request-id")
    response_headers = ("apim-request-id", "x-ms-client-request-id")

    def auth_headers(self) -> dict[str, str]:
        if self.config.api_key is None or not self.config.api_key.get_secret_value():
            return {}  # e.g. auth by a gateway in front, configured through `headers`
        return {"api-key": self.config.api_key.get_secret_value()}

    def url(self, endpoint: str, model: str) -> str:
        base = self.config.base_url
        if not base.endswith("/openai"):
            base += "/openai"
        if endpoint in _UNDEPLOYED:
            path = ENDPOINT_PATHS[endpoint]
        else:
            path = (
                f"/deployments/{quote(self.wire_model(model), safe='')}{ENDPOINT_PATHS[endpoint]}"
            )
        return f"{base}{path}?api-version={quote(self.config.api_version or '', safe='')}"

    def wire_model(self, model: str) -> str:
        return self.config.deployments.get(model, model)
