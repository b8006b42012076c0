"""What every provider kind has in common: a pooled client session and request building."""

from __future__ import annotations

import aiohttp

from proxy.config import ProviderConfig

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

    def __init__(self, name: str, config: ProviderConfig) -> None:
        self.name = name
        self.config = config
        self.price_namespace = config.price_namespace or name
        self._session: aiohttp.ClientSession | None = None
        # The config generation this provider (and so its connection pool) was built in.
        self.since_generation = 1
        self._headers = {**config.headers, **self.auth_headers()}

    def auth_headers(self) -> dict[str, str]:
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
        return self._session is not None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError(f"provider {self.name!r} used before start()")
        return self._session

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=self.config.max_connections,
            limit_per_host=self.config.max_connections,
            keepalive_timeout=60,
            ttl_dns_cache=300,
        )
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=self.config.connect_timeout_s,
            sock_read=self.config.read_timeout_s,
        )
        # auto_decompress: the client gets plain bytes whatever encoding the upstream
        # chose; the proxy drops Content-Encoding accordingly.
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=timeout,
            auto_decompress=True,
            skip_auto_headers=("User-Agent",),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def __repr__(self) -> str:  # never show the key
        return f"<{type(self).__name__} {self.name} {self.config.base_url}>"
