"""Provider kinds. Adding a kind means adding one module and one line in `_KINDS`."""

from __future__ import annotations

from proxy.config import ProviderConfig
from proxy.providers.anthropic import AnthropicProvider
from proxy.providers.azure import AzureProvider
from proxy.providers.base import ENDPOINT_PATHS, Provider
from proxy.providers.openai import OpenAIProvider
from proxy.providers.transport import AiohttpTransport, TransportFactory

__all__ = [
    "ENDPOINT_PATHS",
    "AnthropicProvider",
    "AzureProvider",
    "OpenAIProvider",
    "Provider",
    "build_provider",
]

_KINDS: dict[str, type[Provider]] = {
    "openai": OpenAIProvider,
    "azure": AzureProvider,
    "anthropic": AnthropicProvider,
}


def build_provider(
    name: str, config: ProviderConfig, make_transport: TransportFactory = AiohttpTransport
) -> Provider:
    return _KINDS[config.kind](name, config, make_transport)
