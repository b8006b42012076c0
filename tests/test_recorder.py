"""The recorder: writes leave the request path, are waited for when it matters, and a
failing store never raises into a request."""

from __future__ import annotations

import asyncio
import logging

import pytest

from proxy.recorder import UsageRecorder
from proxy.records import UsageRecord


class SlowStore:
    """A Store stand-in whose writes finish only when the test lets them."""

    def __init__(self, fail: bool = False) -> None:
        self.gate = asyncio.Event()
        self.written: list[str] = []
        self.fail = fail

    async def record_usage(self, record: UsageRecord) -> bool:
        await self.gate.wait()
        if self.fail:
            raise ConnectionError("store down")
        self.written.append(record.request_id)
        return True


def record(n: int) -> UsageRecord:
    return UsageRecord(f"req_{n}", 0, "acme", "r", "p", "m", "chat.completions", 200)


async def test_submit_returns_before_the_write_and_flush_waits_for_it():
    store = SlowStore()
    recorder = UsageRecorder(store)
    for n in range(3):
        recorder.submit(record(n))
    assert recorder.pending == 3 and store.written == []
    flushing = asyncio.ensure_future(recorder.flush())
    await asyncio.sleep(0)
    assert not flushing.done()
    store.gate.set()
    await flushing
    assert store.written == ["req_0", "req_1", "req_2"]
    assert recorder.pending == 0


async def test_flush_does_not_wait_for_writes_submitted_after_it():
    store = SlowStore()
    recorder = UsageRecorder(store)
    recorder.submit(record(1))
    flushing = asyncio.ensure_future(recorder.flush())
    await asyncio.sleep(0)
    store.gate.set()
    recorder.submit(record(2))  # arrives while the flush waits
    await flushing
    assert "req_1" in store.written
    await recorder.drain()
    assert store.written == ["req_1", "req_2"]


async def test_a_failing_store_is_logged_and_counted_not_raised(caplog: pytest.LogCaptureFixture):
    store = SlowStore(fail=True)
    store.gate.set()
    recorder = UsageRecorder(store)
    with caplog.at_level(logging.ERROR, logger="costproxy.recorder"):
        recorder.submit(record(7))
        await recorder.drain()
    assert recorder.failures == 1
    assert "req_7" in caplog.text and "ConnectionError" in caplog.text
