"""What every provider kind has in common: a transport (its connection pool) and request
building."""

from __future__ import annotations

from proxy.config import ProviderConfig
from proxy.headers import RESPONSE_HEADERS, HeaderAllowlist
from proxy.providers.share import PoolShare
from proxy.providers.transport import AiohttpTransport, Transport, TransportFactory

__all__ = ["ENDPOINT_PATHS", "Provider"]

# The proxy's endpoint names → the path under a provider's base URL.
ENDPOINT_PATHS = {
    "chat.completions": "/chat/completions",
    "completions": "/completions",
    "embeddings": "/embeddings",
    "responses": "/responses",
}


class Provider:
    """One upstream API. Subclasses say how to address it and authenticate to it."""

    kind = "base"
    api = "openai"  # the client API it serves (see config.API_OF_KIND)
    # The client headers the kind's API defines (Content-Type is the proxy's own), and
    # the provider headers, beyond every kind's RESPONSE_HEADERS, that describe an answer.
    request_headers: tuple[str, ...] = ("Accept",)
    response_headers: tuple[str, ...] = ()

    def __init__(
        self,
        name: str,
        config: ProviderConfig,
        make_transport: TransportFactory = AiohttpTransport,
    ) -> None:
        self.name = name
        self.config = config
        self.price_namespace = config.price_namespace or name
        self._make_transport = make_transport
        self._transport: Transport | None = None
        # The config generation this provider (and so its connection pool) was built in.
        self.since_generation = 1
        self._headers = {**config.headers, **self.auth_headers()}
        self.forwarded = HeaderAllowlist.of(self.request_headers, config.forward_headers)
        # Its connections, shared fairly between customers (see providers.share).
        self.share = PoolShare(config.max_connections, config.max_customer_share)
        self.returned = HeaderAllowlist.of(
            RESPONSE_HEADERS, self.response_headers, config.return_headers
        )

    def auth_headers(self) -> dict[str, str]:
        return {}

    def default_headers(self) -> dict[str, str]:
        """Headers sent upstream when neither the client nor the config sets them."""
        return {}

    def url(self, endpoint: str, model: str) -> str:
        """Where to send a request for `endpoint` to the target's `model`."""
        return self.config.base_url + ENDPOINT_PATHS[endpoint]

    def wire_model(self, model: str) -> str:
        """The `model` value to put in the upstream request body."""
        return model

    def headers(self) -> dict[str, str]:
        """Headers to add to every upstream request (a fresh dict the caller may extend)."""
        return dict(self._headers)

    @property
    def started(self) -> bool:
        return self._transport is not None

    @property
    def transport(self) -> Transport:
        if self._transport is None:
            raise RuntimeError(f"provider {self.name!r} used before start()")
        return self._transport

    async def start(self) -> None:
        transport = self._make_transport(self.config)
        await transport.start()
        self._transport = transport

    async def close(self) -> None:
        if self._transport is not None:
            await self._transport.close()
            self._transport = None

    def __repr__(self) -> str:  # never show the key
        return f"<{type(self).__name__} {self.name} {self.config.base_url}>"
