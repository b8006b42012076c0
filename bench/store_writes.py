"""`python -m bench.store_writes`: CPU per usage record written through each store.

Writes records of 10,000 customers in concurrent batches of 64 (how the proxy's recorder
hands them over at saturation) and reports the CPU time of this process (all threads: the
SQLite worker included) and, for Redis, of the redis-server, per record.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import tempfile
import time
import uuid
from pathlib import Path

from bench import stack
from proxy.accounting.records import UsageRecord
from proxy.store.redis import RedisStore
from proxy.store.sqlite import SQLiteStore

__all__ = ["main"]

_BATCH = 64
_WARM_UP = 2_000


def _records(count: int) -> list[UsageRecord]:
    now = time.time_ns() // 1_000_000
    return [
        UsageRecord(
            request_id=f"w-{uuid.uuid4().hex}",
            ts_ms=now,
            customer=f"c{i % 10_000}",
            route="gpt-4o-mini",
            provider="openai",
            model="gpt-4o-mini",
            endpoint="chat.completions",
            status=200,
            input_tokens=200,
            output_tokens=50,
            cost_nusd=60_000,
            key_id="bench",
        )
        for i in range(count)
    ]


async def _write(store: SQLiteStore | RedisStore, records: list[UsageRecord]) -> float:
    """Process CPU seconds per record, after a warm-up."""
    await store.open()
    began = time.process_time()
    try:
        for start in range(0, len(records), _BATCH):
            if start == _WARM_UP:
                began = time.process_time()
            batch = records[start : start + _BATCH]
            await asyncio.gather(*(store.record_usage(r) for r in batch))
        return (time.process_time() - began) / (len(records) - _WARM_UP)
    finally:
        await store.close()


def _redis_cpu_s(port: int) -> float:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"INFO cpu\r\n")
        reply = b""
        while b"used_cpu_user:" not in reply or not reply.endswith(b"\r\n"):
            reply += sock.recv(65536)
    fields = dict(
        line.split(":", 1) for line in reply.decode().splitlines() if line.startswith("used_cpu_")
    )
    return float(fields["used_cpu_user"]) + float(fields["used_cpu_sys"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.store_writes", description=__doc__)
    parser.add_argument("--records", type=int, default=20_000)
    args = parser.parse_args(argv)
    if args.records < 2 * _WARM_UP:
        parser.error(f"--records must be at least {2 * _WARM_UP}")
    workdir = Path(tempfile.mkdtemp(prefix="costproxy-writes-"))
    sqlite_s = asyncio.run(_write(SQLiteStore(workdir / "w.db"), _records(args.records)))
    print(f"sqlite: {sqlite_s * 1e6:.1f} µs of CPU per record (the proxy process)")
    redis = stack.start_redis(None, workdir)
    try:
        store = RedisStore(f"redis://127.0.0.1:{redis.port}/0", key_prefix="w:")
        before = _redis_cpu_s(redis.port)
        proxy_s = asyncio.run(_write(store, _records(args.records)))
        server_s = (_redis_cpu_s(redis.port) - before) / args.records
    finally:
        redis.stop()
    print(
        f"redis: {proxy_s * 1e6:.1f} µs of CPU per record in the proxy process, "
        f"{server_s * 1e6:.1f} µs in redis-server (warm-up included)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
