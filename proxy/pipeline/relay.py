"""Sending the request upstream and relaying the answer: whole JSON, or SSE chunk by chunk.

Upstream library errors are translated to proxy errors here and nowhere else.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
import orjson
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from proxy.accounting import tokens
from proxy.accounting.pricing import format_usd
from proxy.accounting.sse import SSESplitter, event_data
from proxy.apis.base import StreamWatcher
from proxy.errors import UpstreamError
from proxy.pipeline.exchange import Exchange, settle
from proxy.providers.transport import TransportError, TransportTimeout, UpstreamResponse

__all__ = ["Answer", "client_left", "deliver", "fetch", "relay_stream", "whole_response"]


def _client_headers(upstream: CIMultiDictProxy[str], ex: Exchange) -> CIMultiDict[str]:
    """The provider's headers that describe the answer (an allowlist: see proxy.headers),
    and the proxy's own."""
    headers: CIMultiDict[str] = CIMultiDict()
    returned = ex.target.provider.returned
    for name, value in upstream.items():
        if returned.allows(name.lower()):
            headers.add(name, value)
    upstream_id = upstream.get("X-Request-Id")
    if upstream_id:
        headers["x-upstream-request-id"] = upstream_id
    headers["x-request-id"] = ex.request_id
    headers["x-costproxy-provider"] = ex.target.provider.name
    headers["x-costproxy-upstream-model"] = ex.target.model
    headers["x-costproxy-attempts"] = str(ex.attempts)
    return headers


@dataclass(slots=True)
class Answer:
    """What one attempt got before anything was sent to the client: the whole body, or
    (a streaming 200) the first bytes of the event stream with the upstream still open."""

    upstream: UpstreamResponse
    data: bytes | None = None
    first_chunk: bytes | None = None
    at: float = 0.0  # time.perf_counter() when `data` / `first_chunk` was in hand

    @property
    def status(self) -> int:
        return self.upstream.status


def _unreachable(ex: Exchange, exc: TransportError) -> UpstreamError:
    return UpstreamError(
        f"Provider {ex.target.provider.name!r} could not be reached ({exc.cause}).",
        code="upstream_unreachable",
    )


def _timed_out(ex: Exchange) -> UpstreamError:
    return UpstreamError(
        f"Provider {ex.target.provider.name!r} did not answer in time.",
        status=504,
        code="upstream_timeout",
    )


def _url(ex: Exchange) -> str:
    url = ex.target.provider.url(ex.endpoint, ex.target.model)
    if ex.query:
        url += ("&" if "?" in url else "?") + ex.query
    return url


async def _send(ex: Exchange, body: bytes, headers: CIMultiDict[str]) -> UpstreamResponse:
    provider = ex.target.provider
    try:
        return await provider.transport.post(_url(ex), body, headers)
    except TransportTimeout:
        raise _timed_out(ex) from None
    except TransportError as exc:
        raise _unreachable(ex, exc) from None


async def _read_whole(ex: Exchange, upstream: UpstreamResponse) -> bytes:
    try:
        return await upstream.read()
    except TransportTimeout:
        raise UpstreamError(
            f"Provider {ex.target.provider.name!r} timed out sending its answer.",
            status=504,
            code="upstream_timeout",
        ) from None
    except TransportError as exc:
        raise UpstreamError(
            f"Provider {ex.target.provider.name!r} broke off its answer ({exc.cause}).",
            code="upstream_broken",
        ) from None


async def _read_first(ex: Exchange, upstream: UpstreamResponse) -> bytes:
    """The first bytes of an event stream. A stream that fails or ends before sending
    anything has sent the client nothing either: an error, so the attempt may be retried."""
    try:
        chunk = await upstream.read_chunk()
    except TransportTimeout:
        raise _timed_out(ex) from None
    except TransportError as exc:
        raise _unreachable(ex, exc) from None
    if not chunk:
        raise UpstreamError(
            f"Provider {ex.target.provider.name!r} ended its stream before sending anything.",
            code="upstream_broken",
        )
    return chunk


async def fetch(ex: Exchange, body: bytes, headers: CIMultiDict[str], stream: bool) -> Answer:
    """Send one attempt and read as far as may be read without answering the client.
    Raises UpstreamError (502/504) when the upstream cannot be reached or fails."""
    waiting = time.perf_counter()
    try:
        return await _fetch(ex, body, headers, stream)
    finally:
        ex.upstream_wait_s += time.perf_counter() - waiting


async def _fetch(ex: Exchange, body: bytes, headers: CIMultiDict[str], stream: bool) -> Answer:
    upstream = await _send(ex, body, headers)
    try:
        content_type = upstream.headers.get("Content-Type", "")
        if stream and upstream.status == 200 and content_type.startswith("text/event-stream"):
            first = await _read_first(ex, upstream)
            return Answer(upstream, first_chunk=first, at=time.perf_counter())
        # An error, a whole body, or a provider that ignored `stream`: read it all.
        data = await _read_whole(ex, upstream)
        upstream.release()
        return Answer(upstream, data=data, at=time.perf_counter())
    except BaseException:
        upstream.close()  # stop the upstream generating tokens nobody will read
        raise


def _passable(content_type: str, data: bytes) -> bool:
    """Whether an upstream error body can reach the client as it was sent: anything but
    an empty body or an HTML page (a load balancer's or gateway's own error page, which
    no API client can read: the client gets the proxy's OpenAI-shaped error instead)."""
    head = data.lstrip()[:1]
    if not head:
        return False
    media_type = content_type.partition(";")[0].strip().lower()
    return media_type not in ("text/html", "application/xhtml+xml") and head != b"<"


async def whole_response(ex: Exchange, answer: Answer) -> web.Response:
    """Relay a whole upstream answer as it came (any status), billed by its usage."""
    upstream, data = answer.upstream, answer.data or b""
    ex.upstream_status = ex.status = upstream.status
    if 200 <= upstream.status < 300 and ex.billed:
        reading = ex.api.read_body(data, ex.endpoint)
        ex.usage, ex.answered_model = reading.usage, reading.model
        if ex.usage is None:
            await tokens.ready(ex.target.model)  # the estimate below counts with it
            try:
                parsed = orjson.loads(data)
            except orjson.JSONDecodeError:
                # Billed as the prompt alone (the upstream did take it), answered as an error.
                raise UpstreamError(
                    f"Provider {ex.target.provider.name!r} sent a malformed JSON answer.",
                    code="upstream_invalid_response",
                ) from None
            ex.completion_text = ex.api.completion_text(ex.endpoint, parsed)
            ex.answered_model = ex.answered_model or ex.api.read_parsed(parsed, ex.endpoint).model
    elif not 200 <= upstream.status < 300 and not _passable(
        upstream.headers.get("Content-Type", ""), data
    ):
        retry_after = upstream.headers.get("Retry-After")
        raise UpstreamError(
            f"Provider {ex.target.provider.name!r} answered HTTP {upstream.status} "
            + ("with an empty body." if not data.strip() else "with an HTML page."),
            status=upstream.status,
            code="upstream_error",
            headers={"Retry-After": retry_after} if retry_after else None,
        )
    record = settle(ex)
    headers = _client_headers(upstream.headers, ex)
    headers["x-costproxy-cost-usd"] = (
        "unknown" if record.cost_nusd is None else format_usd(record.cost_nusd)
    )
    return web.Response(status=upstream.status, body=data, headers=headers)


async def _next_chunk(ex: Exchange, upstream: UpstreamResponse) -> bytes:
    """The next bytes from the upstream; b"" at its end, or when it failed (status 502)."""
    waiting = time.perf_counter()
    try:
        return await upstream.read_chunk()
    except TransportTimeout:
        ex.status = 504  # silent for longer than read_timeout_s: ended cleanly, as below
        return b""
    except TransportError:
        ex.status = 502  # cut off mid-stream: the client's stream is ended cleanly
        return b""
    finally:
        ex.upstream_wait_s += time.perf_counter() - waiting


def client_left(request: web.Request) -> bool:
    """Whether the client's connection is gone (closed, reset, or closing)."""
    transport = request.transport
    return transport is None or transport.is_closing()


async def _close_when_client_leaves(request: web.Request, upstream: UpstreamResponse) -> None:
    # aiohttp does not cancel a handler whose client left, and the relay loop notices only
    # at its next write, which a silent upstream may delay for minutes: look 4 times a
    # second, and stop the upstream from generating tokens nobody will read.
    while not client_left(request):
        await asyncio.sleep(0.25)
    upstream.close()


def _whole_event(tail: bytes) -> bool:
    data = event_data(tail)
    if not data or data == b"[DONE]":
        return True
    try:
        orjson.loads(data)
    except orjson.JSONDecodeError:
        return False
    return True


# However a client's going away shows when the proxy writes to it: a reset, a broken
# pipe, aiohttp's "Cannot write to closing transport" (a ConnectionResetError too).
_GONE = (ConnectionError, aiohttp.ClientConnectionError)


async def _prepare(response: web.StreamResponse, request: web.Request) -> bool:
    """Send the response's headers; False when the client is already gone."""
    try:
        await response.prepare(request)
    except _GONE:
        return False
    return True


async def _write(response: web.StreamResponse, data: bytes) -> bool:
    try:
        await response.write(data)
    except _GONE:
        return False
    return True


async def _write_eof(response: web.StreamResponse) -> bool:
    try:
        await response.write_eof()
    except _GONE:
        return False
    return True


async def deliver(request: web.Request, ex: Exchange, response: web.Response) -> web.Response:
    """Write a whole answer now rather than after the handler returns, so that the record
    knows whether it reached the client: a client already gone makes it 499 (the record
    settled for the cost header is settled again)."""
    if not (await _prepare(response, request) and await _write_eof(response)):
        ex.status = 499
        ex.record = None
    else:
        ex.sent_bytes = response.content_length or 0
    return response


async def _drain(
    ex: Exchange,
    upstream: UpstreamResponse,
    splitter: SSESplitter,
    watch: Callable[[bytes], bool],
    unsent: bytes,
) -> bool:
    """Read the rest of a stream whose client hung up (from `unsent`, read but never
    sent), discarding it but watching it for usage, until it ends or the route's drain
    time is up. True: it ended."""
    for event in splitter.feed(unsent):
        watch(event)
    try:
        async with asyncio.timeout(ex.route.drain_timeout_s):
            while chunk := await _next_chunk(ex, upstream):
                for event in splitter.feed(chunk):
                    watch(event)
    except TimeoutError:
        return False
    tail = splitter.remainder()
    if tail:
        watch(tail)
    return ex.status in (200, 499)


async def relay_stream(
    request: web.Request, ex: Exchange, answer: Answer, injected_usage: bool
) -> web.StreamResponse:
    """Relay an upstream event stream from its first chunk on. Past this point nothing is
    retried: a failure ends the client's stream cleanly and what was sent is billed. A
    client that hangs up is handled by the route's `on_client_disconnect` (close: cut
    the upstream and estimate; drain: read the rest for the provider's own usage)."""
    upstream = answer.upstream
    clean_end = False
    client_watch: asyncio.Task[None] | None = None
    draining = ex.route.on_client_disconnect == "drain"
    try:
        ex.upstream_status = ex.status = 200
        ex.first_byte_at = answer.at
        ex.stream_counter = counter = tokens.TokenCounter(ex.target.model)
        watcher = ex.api.stream_watcher(
            ex.endpoint, suppress_usage_chunk=injected_usage, text_sink=counter.add
        )
        splitter = SSESplitter()
        response = web.StreamResponse(status=200, headers=_client_headers(upstream.headers, ex))
        chunk = answer.first_chunk or b""
        # A client may be gone before its first byte (it reset while the upstream thought):
        # then nothing was delivered, and the first chunk is only read.
        client_gone = not await _prepare(response, request)
        unsent = chunk if client_gone else b""
        if not draining and not client_gone:
            client_watch = asyncio.get_running_loop().create_task(
                _close_when_client_leaves(request, upstream)
            )
        while chunk and not client_gone:
            forward = [event for event in splitter.feed(chunk) if watcher.observe(event)]
            if forward:
                data = b"".join(forward)
                if not await _write(response, data):
                    client_gone = True
                    break
                ex.sent_bytes += len(data)
            chunk = await _next_chunk(ex, upstream)
        client_gone = client_gone or client_left(request)
        if client_gone and draining and ex.status == 200:
            clean_end = await _drain(ex, upstream, splitter, watcher.observe, unsent)
        elif not client_gone:
            clean_end = ex.status == 200
            tail = splitter.remainder()
            # A tail after a clean end is a last event without its blank line: relay it,
            # if it is whole. Half an event (a broken or truncated upstream) is dropped
            # so that the client sees clean SSE.
            if clean_end and tail and not _whole_event(tail):
                ex.status = 502
            elif clean_end and tail and watcher.observe(tail):
                client_gone = not await _write(response, tail)
                ex.sent_bytes += 0 if client_gone else len(tail)
            if not client_gone:
                client_gone = not await _write_eof(response)
        _settle_stream(ex, watcher, client_gone)
        if ex.usage is None:
            await tokens.ready(ex.target.model)  # settle estimates with it
        return response
    except asyncio.CancelledError:
        ex.status = 499
        raise
    finally:
        if client_watch is not None:
            client_watch.cancel()
        if clean_end:
            upstream.release()
        else:
            upstream.close()  # stop the upstream generating tokens nobody will read


def _settle_stream(ex: Exchange, watcher: StreamWatcher, client_gone: bool) -> None:
    """What the stream told about its billing, onto the exchange."""
    watcher.finish()
    ex.usage, ex.answered_model, ex.service_tier = (
        watcher.usage,
        watcher.model,
        watcher.service_tier,
    )
    ex.partial_usage = watcher.partial
    ex.stream_error = watcher.error
    if watcher.error is not None:
        # The status the stream's error stands for, even when the client left after it:
        # SDKs raise on an error event and hang up, maybe before the upstream's end.
        ex.status = watcher.error.status
    elif client_gone:
        ex.status = 499  # the client went away: bill what the provider bills for it
