"""SIGTERM: stop accepting, finish what was accepted, record it all, exit 0."""

from __future__ import annotations

import asyncio
import signal
import socket
import time
import uuid
from pathlib import Path

import aiohttp

from tests.support.procs import ServerProcess, start_proxy
from tests.support.stack import BACKEND_KEY, ENV, Stack, base_config

CHAT = "/v1/chat/completions"
BODY = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "user", "content": "tell a story"}],
    "stream": True,
}
STREAMS = 50
CHUNKS = 20


def sqlite_config(upstream: ServerProcess, directory: Path) -> dict:
    config = base_config(
        upstream.url, {"backend": "sqlite", "sqlite_path": str(directory / "usage.db")}
    )
    config["server"] = {**config["server"], "shutdown_timeout_s": 20}
    return config


def headers(customer: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {BACKEND_KEY}", "X-Customer-Id": customer, **extra}


def refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return True
    return False


async def test_sigterm_lets_50_open_streams_finish_and_records_them_all(
    upstream: ServerProcess, tmp_path: Path, http: aiohttp.ClientSession
):
    config = sqlite_config(upstream, tmp_path)
    proxy = start_proxy(config, tmp_path, ENV)
    customer = f"shutdown-{uuid.uuid4().hex[:8]}"
    slow = headers(customer, **{"x-mock-chunks": str(CHUNKS), "x-mock-chunk-delay-ms": "50"})
    started = asyncio.Event()
    opened = 0

    async def stream() -> bytes:
        nonlocal opened
        async with http.post(proxy.url + CHAT, json=BODY, headers=slow) as resp:
            assert resp.status == 200
            first = await resp.content.readuntil(b"\n\n")
            opened += 1
            if opened == STREAMS:
                started.set()
            return first + await resp.read()

    streams = [asyncio.ensure_future(stream()) for _ in range(STREAMS)]
    await asyncio.wait_for(started.wait(), 10)
    assert proxy.process is not None
    process = proxy.process
    process.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    while not refuses_connections(proxy.port):
        assert time.monotonic() - signalled < 2, "still accepting connections after SIGTERM"
        await asyncio.sleep(0.02)

    bodies = await asyncio.wait_for(asyncio.gather(*streams), 20)
    assert all(body.endswith(b"data: [DONE]\n\n") for body in bodies)
    assert await asyncio.to_thread(process.wait, 15) == 0
    assert "shut down cleanly" in proxy.logs()

    proxy = start_proxy(config, tmp_path, ENV)  # the same SQLite file
    try:
        async with aiohttp.ClientSession() as session:
            spend = await Stack(proxy, upstream, "sqlite").spend(session, customer=customer)
        assert spend["total"]["requests"] == STREAMS
        assert spend["total"]["output_tokens"] == STREAMS * CHUNKS
    finally:
        proxy.stop()


async def test_a_second_signal_exits_at_once(
    upstream: ServerProcess, tmp_path: Path, http: aiohttp.ClientSession
):
    proxy = start_proxy(sqlite_config(upstream, tmp_path), tmp_path, ENV)
    long = headers("impatient", **{"x-mock-chunks": "200", "x-mock-chunk-delay-ms": "100"})
    resp = await http.post(proxy.url + CHAT, json=BODY, headers=long)
    await resp.content.readuntil(b"\n\n")
    assert proxy.process is not None
    process = proxy.process
    process.send_signal(signal.SIGTERM)
    await asyncio.sleep(0.2)
    assert process.poll() is None, "the first signal waits for the open stream"
    process.send_signal(signal.SIGTERM)
    started = time.monotonic()
    code = await asyncio.to_thread(process.wait, 5)
    assert time.monotonic() - started < 1
    assert code == 128 + signal.SIGTERM
    resp.close()
    proxy.process = None
