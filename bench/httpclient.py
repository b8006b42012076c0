"""A minimal HTTP/1.1 keep-alive client on asyncio protocols, fast enough to drive a proxy.

A general client (aiohttp's) spends ~150 µs of CPU per request, which on a shared core would
cap the load generator below what it measures. This one sends pre-built request bytes and
parses only what the benchmark needs: the status, Content-Length or chunked framing, and the
time the first body bytes arrived (time to first token for SSE streams).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

__all__ = ["Connection", "HTTPError", "Reply", "build_request", "connect"]


class HTTPError(Exception):
    """The server broke the connection or sent something this client cannot parse."""


@dataclass(slots=True)
class Reply:
    status: int
    body_bytes: int
    first_byte_at: float  # perf_counter() when the first body bytes arrived (headers if none)
    done_at: float
    tail: bytes  # the last bytes of the body (to check a stream ended with [DONE])


def build_request(host: str, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


_HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_CRLF, _TRAILER = range(6)


class Connection(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[Reply] | None = None
        self._buf = bytearray()
        self._closed = False
        self._reset()

    def _reset(self) -> None:
        self._state = _HEAD
        self._status = 0
        self._remaining = 0
        self._body_bytes = 0
        self._first_byte_at = 0.0
        self._tail = b""

    @property
    def usable(self) -> bool:
        return not self._closed and self._waiter is None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(HTTPError(f"connection lost: {exc!r}"))

    async def request(self, raw: bytes) -> Reply:
        if not self.usable or self.transport is None:
            raise HTTPError("connection not usable")
        self._reset()
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        try:
            return await self._waiter
        finally:
            self._waiter = None

    def close(self) -> None:
        self._closed = True
        if self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        self._buf += data
        try:
            self._parse()
        except HTTPError as exc:
            if self._waiter is not None and not self._waiter.done():
                self._waiter.set_exception(exc)
            self.close()

    def _body(self, piece: bytes) -> None:
        if piece:
            if not self._body_bytes:
                self._first_byte_at = time.perf_counter()
            self._body_bytes += len(piece)
            self._tail = (self._tail + piece)[-64:]

    def _finish(self) -> None:
        waiter = self._waiter
        reply = Reply(
            self._status,
            self._body_bytes,
            self._first_byte_at or time.perf_counter(),
            time.perf_counter(),
            self._tail,
        )
        self._reset()
        if waiter is not None and not waiter.done():
            waiter.set_result(reply)

    def _parse(self) -> None:
        buf = self._buf
        while buf:
            if self._state == _HEAD:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = bytes(buf[:end]).decode("latin-1").split("\r\n")
                del buf[: end + 4]
                try:
                    self._status = int(head[0].split(" ", 2)[1])
                except (IndexError, ValueError):
                    raise HTTPError(f"bad status line {head[0]!r}") from None
                length, chunked = None, False
                for line in head[1:]:
                    name, _, value = line.partition(":")
                    name = name.strip().lower()
                    if name == "content-length":
                        length = int(value)
                    elif name == "transfer-encoding" and "chunked" in value.lower():
                        chunked = True
                if chunked:
                    self._state = _CHUNK_SIZE
                elif length is not None:
                    self._state, self._remaining = _LENGTH, length
                    if length == 0:
                        self._finish()
                else:
                    raise HTTPError("response without Content-Length or chunked framing")
            elif self._state == _LENGTH:
                take = min(self._remaining, len(buf))
                self._body(bytes(buf[:take]))
                del buf[:take]
                self._remaining -= take
                if self._remaining == 0:
                    self._finish()
            elif self._state == _CHUNK_SIZE:
                end = buf.find(b"\r\n")
                if end < 0:
                    return
                size = int(bytes(buf[:end]).split(b";", 1)[0], 16)
                del buf[: end + 2]
                if size == 0:
                    self._state = _TRAILER
                else:
                    self._state, self._remaining = _CHUNK_DATA, size
            elif self._state == _CHUNK_DATA:
                take = min(self._remaining, len(buf))
                self._body(bytes(buf[:take]))
                del buf[:take]
                self._remaining -= take
                if self._remaining == 0:
                    self._state = _CHUNK_CRLF
            elif self._state == _CHUNK_CRLF:
                if len(buf) < 2:
                    return
                del buf[:2]
                self._state = _CHUNK_SIZE
            elif self._state == _TRAILER:
                end = buf.find(b"\r\n")
                if end < 0:
                    return
                del buf[: end + 2]
                if end == 0:
                    self._finish()
        return


async def connect(host: str, port: int) -> Connection:
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_connection(Connection, host, port)
    return protocol
