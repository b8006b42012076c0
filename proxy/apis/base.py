"""What differs between the client APIs the proxy serves: one `Api` (dialect) per API,
chosen by the endpoint a request arrives on, so that the request path stays one path.

An `Api` says how a request body is checked, whose end user it names, how an answer's
usage is read (whole, or from stream events), how the proxy's own errors are shaped, and
what besides the token counts its price depends on. Everything else (authentication,
routing, retries, budgets, rate limits, relaying bytes) is the same for every API.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from multidict import MultiMapping

from proxy.accounting.pricing import PriceContext
from proxy.accounting.records import Usage
from proxy.accounting.stream_errors import StreamError
from proxy.accounting.usage import Reading

__all__ = ["Api", "Endpoint", "StreamWatcher"]


class StreamWatcher(Protocol):
    """Reads a relayed event stream (see accounting.stream_usage for the contract):
    `observe` says whether to forward an event; after `finish`, what the stream said."""

    usage: Usage | None  # the provider's final usage
    partial: Usage | None  # without final usage: counts the stream did give (input side)
    error: StreamError | None

    @property
    def model(self) -> str | None: ...

    @property
    def service_tier(self) -> str | None: ...

    def observe(self, event: bytes) -> bool: ...

    def finish(self) -> None: ...


class Api(ABC):
    """A client API: the base of the dialects (see proxy.apis.openai and .anthropic)."""

    name = "api"  # a route's `api` (its targets' kind) must match the endpoint's
    forwards_query = False  # whether the client's query string goes upstream

    @abstractmethod
    def check_payload(self, endpoint: str, payload: dict[str, Any]) -> None:
        """400 (BadRequestError) for a body the proxy cannot route or bill."""

    @abstractmethod
    def end_user(self, payload: Mapping[str, Any]) -> object:
        """The end user the body names (checked by access.auth.attribute), or None."""

    @abstractmethod
    def read_body(self, body: bytes, endpoint: str) -> Reading:
        """Usage and model of a whole answer, parsing as little of it as possible."""

    @abstractmethod
    def read_parsed(self, parsed: Any, endpoint: str) -> Reading:
        """Usage and model of a whole answer already parsed."""

    @abstractmethod
    def completion_text(self, endpoint: str, parsed: Any) -> str:
        """The generated text of a whole answer (to estimate from, without usage)."""

    @abstractmethod
    def stream_watcher(
        self, endpoint: str, *, suppress_usage_chunk: bool, text_sink: Callable[[str], None]
    ) -> StreamWatcher:
        """A watcher for one relayed stream (`suppress_usage_chunk`: the proxy asked for
        the stream's usage itself and hides the chunk that carries it)."""

    @abstractmethod
    def error_body(
        self, status: int, message: str, type_: str, code: str, param: str | None
    ) -> dict[str, Any]:
        """The proxy's own error, in this API's shape."""

    @abstractmethod
    def price_context(self, upstream_headers: MultiMapping[str]) -> PriceContext:
        """What the price depends on besides the answer, from the request sent upstream."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One client endpoint: its path, its API, and whether its requests are billed
    (Anthropic's count_tokens is free: forwarded and rate limited by requests, but never
    budgeted nor recorded as usage)."""

    name: str  # "chat.completions", "messages", ...: records, metrics and logs name it so
    path: str
    api: Api
    billed: bool = True
