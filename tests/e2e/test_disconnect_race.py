"""Clients that reset their connection at any moment: every such request is recorded as
499 with what was delivered counted, and logged once at INFO without a traceback (before:
200 streams reset 0.3 s after sending gave 118 ERROR tracebacks of
`ClientConnectionResetError` and 118 records of status 200, so any client could flood
the error log, and up to 32 KB of delivered events went uncounted).

The clients are raw sockets closed with SO_LINGER 0: the kernel answers the proxy's next
write with a reset, as a client that crashed or lost its network does."""

from __future__ import annotations

import asyncio
import socket
import struct
import uuid
from collections.abc import Iterator

import aiohttp
import orjson
import pytest

from tests.support.procs import ServerProcess, start_proxy
from tests.support.stack import ADMIN_TOKEN, BACKEND_KEY, ENV, base_config

CLIENTS = 200
RESET_AFTER_S = 0.3
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture(scope="module", params=["drain", "close"])
def proxy(
    request: pytest.FixtureRequest,
    upstream: ServerProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ServerProcess, str]]:
    """A proxy whose streams, when their client leaves, drain (or close): and which."""
    directory = tmp_path_factory.mktemp(f"resets-{request.param}")
    store = {"backend": "sqlite", "sqlite_path": str(directory / "costproxy.db")}
    config = base_config(upstream.url, store)
    config["streams"] = {"on_client_disconnect": request.param, "drain_timeout_s": 10}
    server = start_proxy(config, directory, ENV)
    yield server, request.param
    server.stop()


def http_request(customer: str, body: dict, **headers: str) -> bytes:
    data = orjson.dumps(body)
    lines = [
        "POST /v1/chat/completions HTTP/1.1",
        "Host: 127.0.0.1",
        f"Authorization: Bearer {BACKEND_KEY}",
        f"X-Customer-Id: {customer}",
        "Content-Type: application/json",
        f"Content-Length: {len(data)}",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


async def reset_after(port: int, payload: bytes, delay_s: float) -> bytes:
    """Send `payload`, read what arrives for `delay_s`, then reset the connection."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    await loop.sock_connect(sock, ("127.0.0.1", port))
    await loop.sock_sendall(sock, payload)
    received = bytearray()
    deadline = loop.time() + delay_s
    try:
        while (left := deadline - loop.time()) > 0:
            try:
                chunk = await asyncio.wait_for(loop.sock_recv(sock, 65536), left)
            except TimeoutError:
                break
            if not chunk:
                break
            received += chunk
    finally:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    return bytes(received)


async def records_of(http: aiohttp.ClientSession, url: str, customer: str) -> list[dict]:
    """The customer's usage records, once all CLIENTS are in."""
    for _ in range(300):
        async with http.get(
            url + "/admin/v1/usage", params={"customer": customer}, headers=ADMIN
        ) as resp:
            lines = [orjson.loads(line) for line in (await resp.read()).splitlines() if line]
        if len(lines) >= CLIENTS:
            return lines
        await asyncio.sleep(0.1)
    raise AssertionError(f"{len(lines)} of {CLIENTS} records after 30 s")


def delivered_events(received: bytes) -> int:
    _, _, body = received.partition(b"\r\n\r\n")
    return body.count(b"\ndata: {") + body.startswith(b"data: {")


@pytest.mark.parametrize(
    ("kind", "body", "headers"),
    [
        # A stream: 40 pieces, 20 ms apart; the reset comes mid-stream.
        ("stream", {"stream": True}, {"x-mock-chunks": "40", "x-mock-chunk-delay-ms": "20"}),
        # A whole answer that is slower than the client's patience.
        ("whole", {}, {"x-mock-latency-ms": "500"}),
        # A stream whose first byte comes after the reset.
        ("late stream", {"stream": True}, {"x-mock-latency-ms": "500"}),
    ],
)
async def test_resets_are_499_counted_and_quiet(
    proxy: tuple[ServerProcess, str],
    http: aiohttp.ClientSession,
    kind: str,
    body: dict,
    headers: dict,
) -> None:
    server, on_disconnect = proxy
    customer = f"resets-{uuid.uuid4().hex[:8]}"
    request_body = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Tell me a story"}],
        **body,
    }
    payload = http_request(customer, request_body, **headers)
    received = await asyncio.gather(
        *(reset_after(server.port, payload, RESET_AFTER_S) for _ in range(CLIENTS))
    )

    records = await records_of(http, server.url, customer)
    assert len(records) == CLIENTS
    assert {r["status"] for r in records} == {499}, sorted(r["status"] for r in records)
    if kind == "stream":
        # The records count at least the pieces the clients received (a token each)...
        assert sum(r["output_tokens"] for r in records) >= sum(map(delivered_events, received))
        # ...and, draining, each the provider's own count of all it generated.
        if on_disconnect == "drain":
            assert {r["output_tokens"] for r in records} == {40}
    await asyncio.sleep(0.3)  # the request log is written every 0.1 s
    logs = server.logs()
    assert "Traceback" not in logs
    assert " ERROR " not in logs and "ERROR:" not in logs
    gone = [
        line
        for line in logs.splitlines()
        if "client went away" in line and any(r["request_id"] in line for r in records[:20])
    ]
    assert len(gone) == 20, gone[:3]  # logged once each
    assert all(" INFO " in line or "INFO:" in line for line in gone)
