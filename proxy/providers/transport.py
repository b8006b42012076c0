"""How bytes reach a provider: the one narrow interface between the request path and HTTP.

The request path sends one POST per attempt and reads the answer whole or chunk by chunk;
it never sees the HTTP library. `AiohttpTransport` is the real one (one pooled session
per provider); `MockTransport` answers from a function, so pipeline tests run in process
(as httpx's MockTransport does for httpx). The HTTP library's errors become
`TransportError`s here and nowhere else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy

from proxy.config import ProviderConfig

__all__ = [
    "AiohttpTransport",
    "MockResponse",
    "MockTransport",
    "Transport",
    "TransportError",
    "TransportFactory",
    "TransportTimeout",
    "UpstreamRequest",
    "UpstreamResponse",
]


class TransportError(Exception):
    """The provider could not be reached, or broke off its answer. `cause` names what the
    HTTP library met (e.g. ClientConnectorError), for messages and logs."""

    def __init__(self, cause: str) -> None:
        super().__init__(cause)
        self.cause = cause


class TransportTimeout(TransportError):
    """The provider did not answer (or went silent) within the configured time."""

    def __init__(self) -> None:
        super().__init__("timeout")


class UpstreamResponse(Protocol):
    """An answer whose headers are in; its body is read whole or chunk by chunk."""

    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> CIMultiDictProxy[str]: ...

    async def read(self) -> bytes:
        """The whole (rest of the) body."""

    async def read_chunk(self) -> bytes:
        """The next bytes as they arrive; b"" at the end of the body."""

    def release(self) -> None:
        """The body was read to its end: the connection may serve another request."""

    def close(self) -> None:
        """Abandon the answer (and its connection): the provider stops sending."""


class Transport(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> UpstreamResponse:
        """Send the request; returns once the answer's status and headers are in."""


TransportFactory = Callable[[ProviderConfig], Transport]


class _AiohttpResponse:
    __slots__ = ("_response",)

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    @property
    def status(self) -> int:
        return self._response.status

    @property
    def headers(self) -> CIMultiDictProxy[str]:
        return self._response.headers

    async def read(self) -> bytes:
        try:
            return await self._response.read()
        except TimeoutError:
            raise TransportTimeout from None
        except aiohttp.ClientError as exc:
            raise TransportError(type(exc).__name__) from None

    async def read_chunk(self) -> bytes:
        try:
            return await self._response.content.readany()
        except TimeoutError:
            raise TransportTimeout from None
        except aiohttp.ClientError as exc:
            raise TransportError(type(exc).__name__) from None

    def release(self) -> None:
        self._response.release()

    def close(self) -> None:
        self._response.close()


class AiohttpTransport:
    """One pooled aiohttp session, built from the provider's connection settings."""

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        self._session: aiohttp.ClientSession | None = None

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

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> UpstreamResponse:
        if self._session is None:
            raise RuntimeError("transport used before start()")
        try:
            response = await self._session.post(url, data=body, headers=headers)
        except TimeoutError:
            raise TransportTimeout from None
        except aiohttp.ClientError as exc:
            raise TransportError(type(exc).__name__) from None
        return _AiohttpResponse(response)


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    """What a `MockTransport` handler is given."""

    url: str
    body: bytes
    headers: CIMultiDictProxy[str]


@dataclass(slots=True)
class MockResponse:
    """A canned answer: `body`, or `chunks` sent `chunk_delay_s` apart; after
    `fail_after` chunks the connection breaks (read_chunk raises TransportError).
    `released`/`closed` say how the proxy let go of it."""

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    chunks: Iterable[bytes] | None = None
    chunk_delay_s: float = 0.0
    fail_after: int | None = None
    released: bool = False
    closed: bool = False


class _MockAnswer:
    def __init__(self, canned: MockResponse) -> None:
        self.canned = canned
        parts = list(canned.chunks) if canned.chunks is not None else [canned.body]
        self._parts = [p for p in parts if p]
        self._sent = 0
        self._headers = CIMultiDictProxy(CIMultiDict(canned.headers))

    @property
    def status(self) -> int:
        return self.canned.status

    @property
    def headers(self) -> CIMultiDictProxy[str]:
        return self._headers

    async def read(self) -> bytes:
        parts = []
        while chunk := await self.read_chunk():
            parts.append(chunk)
        return b"".join(parts)

    async def read_chunk(self) -> bytes:
        if self.canned.closed:
            raise TransportError("ClientConnectionError")
        if self.canned.fail_after is not None and self._sent >= self.canned.fail_after:
            raise TransportError("ClientPayloadError")
        if self._sent >= len(self._parts):
            return b""
        if self._sent and self.canned.chunk_delay_s:
            await asyncio.sleep(self.canned.chunk_delay_s)
        self._sent += 1
        return self._parts[self._sent - 1]

    def release(self) -> None:
        self.canned.released = True

    def close(self) -> None:
        self.canned.closed = True


class MockTransport:
    """Answers every request with `handler(request)`; records the requests it was sent."""

    def __init__(
        self, handler: Callable[[UpstreamRequest], MockResponse | Awaitable[MockResponse]]
    ) -> None:
        self.handler = handler
        self.requests: list[UpstreamRequest] = []
        self.started = False

    async def start(self) -> None:
        self.started = True

    async def close(self) -> None:
        self.started = False

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> UpstreamResponse:
        request = UpstreamRequest(url, body, CIMultiDictProxy(CIMultiDict(headers)))
        self.requests.append(request)
        canned = self.handler(request)
        if not isinstance(canned, MockResponse):
            canned = await canned
        return _MockAnswer(canned)
