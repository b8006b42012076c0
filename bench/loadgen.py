"""Load shapes: closed loop (saturation), open loop at a fixed rate, streams, open streams.

The open loop schedules request i at `start + i / rate` on the clock and measures latency
from that scheduled time, so a server that stalls cannot hide the requests it delayed
(coordinated omission); it also keeps the latency from the actual send ("service").
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.httpclient import Connection, HTTPError, Reply, connect

__all__ = [
    "LoadResult",
    "Pool",
    "closed_loop",
    "open_loop",
    "open_streams",
    "percentile",
    "streams",
]

RequestFactory = Callable[[int], bytes]


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of unsorted values; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


@dataclass(slots=True)
class LoadResult:
    requests: int = 0
    errors: int = 0
    elapsed_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    service_ms: list[float] = field(default_factory=list)
    ttft_ms: list[float] = field(default_factory=list)
    first_error: str | None = None

    def error(self, what: str) -> None:
        self.errors += 1
        if self.first_error is None:
            self.first_error = what

    def summary(self) -> dict:
        out: dict = {
            "requests": self.requests,
            "errors": self.errors,
            "elapsed_s": round(self.elapsed_s, 3),
            "rps": round(self.requests / self.elapsed_s, 1) if self.elapsed_s else None,
        }
        for name, values in (
            ("latency_ms", self.latencies_ms),
            ("service_ms", self.service_ms),
            ("ttft_ms", self.ttft_ms),
        ):
            if values:
                out[name] = {f"p{q}": round(percentile(values, q) or 0.0, 3) for q in (50, 90, 99)}
                out[name]["max"] = round(max(values), 3)
        if self.first_error:
            out["first_error"] = self.first_error
        return out


class Pool:
    """Keep-alive connections to one server; a new one is opened whenever none is free."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._idle: list[Connection] = []
        self._all: list[Connection] = []

    async def acquire(self) -> Connection:
        while self._idle:
            conn = self._idle.pop()
            if conn.usable:
                return conn
        conn = await connect(self.host, self.port)
        self._all.append(conn)
        return conn

    def release(self, conn: Connection) -> None:
        if conn.usable:
            self._idle.append(conn)

    async def warm(self, count: int) -> None:
        conns = await asyncio.gather(*(self.acquire() for _ in range(count)))
        for conn in conns:
            self.release(conn)

    def close(self) -> None:
        for conn in self._all:
            conn.close()
        self._all.clear()
        self._idle.clear()


async def _one(pool: Pool, raw: bytes, result: LoadResult) -> Reply | None:
    try:
        conn = await pool.acquire()
        reply = await conn.request(raw)
    except (OSError, HTTPError) as exc:
        result.error(f"{type(exc).__name__}: {exc}")
        return None
    pool.release(conn)
    if reply.status != 200:
        result.error(f"HTTP {reply.status}")
        return None
    return reply


async def closed_loop(
    pool: Pool, make: RequestFactory, *, concurrency: int, duration_s: float, max_requests: int
) -> LoadResult:
    """`concurrency` workers, each sending its next request when the last one is answered."""
    result = LoadResult()
    await pool.warm(concurrency)
    counter = iter(range(max_requests))
    start = time.perf_counter()
    deadline = start + duration_s

    async def worker() -> None:
        for i in counter:
            sent = time.perf_counter()
            if sent >= deadline:
                return
            reply = await _one(pool, make(i), result)
            result.requests += 1
            if reply is not None:
                result.latencies_ms.append((reply.done_at - sent) * 1000)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.elapsed_s = time.perf_counter() - start
    return result


async def open_loop(
    pool: Pool, make: RequestFactory, *, rate: float, duration_s: float
) -> LoadResult:
    """Request i is due at start + i/rate, whatever happened to the earlier ones."""
    result = LoadResult()
    total = max(1, int(rate * duration_s))
    await pool.warm(min(64, total))
    tasks: set[asyncio.Task[None]] = set()

    async def fire(raw: bytes, due: float) -> None:
        sent = time.perf_counter()
        reply = await _one(pool, raw, result)
        if reply is not None:
            result.latencies_ms.append((reply.done_at - due) * 1000)
            result.service_ms.append((reply.done_at - sent) * 1000)

    start = time.perf_counter() + 0.01
    for i in range(total):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(fire(make(i), due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        result.requests += 1
    await asyncio.gather(*list(tasks))
    result.elapsed_s = time.perf_counter() - start
    return result


async def streams(pool: Pool, make: RequestFactory, *, count: int, concurrency: int) -> LoadResult:
    """`count` streamed requests, `concurrency` at a time: time to first token and total."""
    result = LoadResult()
    await pool.warm(concurrency)
    counter = iter(range(count))
    start = time.perf_counter()

    async def worker() -> None:
        for i in counter:
            sent = time.perf_counter()
            reply = await _one(pool, make(i), result)
            result.requests += 1
            if reply is None:
                continue
            if not reply.tail.rstrip().endswith(b"[DONE]"):
                result.error("stream did not end with [DONE]")
                continue
            result.ttft_ms.append((reply.first_byte_at - sent) * 1000)
            result.latencies_ms.append((reply.done_at - sent) * 1000)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.elapsed_s = time.perf_counter() - start
    return result


async def open_streams(
    pool: Pool, make: RequestFactory, *, count: int, sample: Callable[[], None]
) -> tuple[LoadResult, int]:
    """`count` slow streams at once; `sample()` runs every 20 ms while they are open.

    Returns the result and the most streams seen open (answered, not finished) at once.
    """
    result = LoadResult()
    started = finished = 0
    most_open = 0

    async def one(i: int) -> None:
        nonlocal started, finished
        try:
            conn = await connect(pool.host, pool.port)
        except OSError as exc:
            result.error(f"{type(exc).__name__}: {exc}")
            return
        started += 1
        try:
            reply = await conn.request(make(i))
        except (OSError, HTTPError) as exc:
            result.error(f"{type(exc).__name__}: {exc}")
            return
        finally:
            finished += 1
            conn.close()
        if reply.status != 200:
            result.error(f"HTTP {reply.status}")

    begin = time.perf_counter()
    tasks = [asyncio.create_task(one(i)) for i in range(count)]
    while not all(task.done() for task in tasks):
        sample()
        most_open = max(most_open, started - finished)
        await asyncio.sleep(0.02)
    sample()
    result.requests = count
    result.elapsed_s = time.perf_counter() - begin
    return result, most_open
