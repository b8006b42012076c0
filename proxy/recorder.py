"""Writing usage records to the store off the client's critical path, tracked until done."""

from __future__ import annotations

import asyncio
import logging

from proxy.records import UsageRecord
from proxy.store.base import Store

__all__ = ["UsageRecorder"]

log = logging.getLogger("costproxy.recorder")


class UsageRecorder:
    """`submit()` starts the store write and returns at once. The spend API calls
    `flush()` first, so one instance reads its own writes; shutdown calls `drain()`, so
    nothing accepted is lost."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._pending: set[asyncio.Task[None]] = set()
        self.failures = 0

    def submit(self, record: UsageRecord) -> None:
        task = asyncio.get_running_loop().create_task(self._write(record))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _write(self, record: UsageRecord) -> None:
        try:
            await self._store.record_usage(record)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any store fault: logged, counted, never raised to a client
            self.failures += 1
            log.error(
                "usage record %s for customer %r not stored: %s: %s",
                record.request_id,
                record.customer,
                type(exc).__name__,
                exc,
            )

    async def flush(self) -> None:
        """Wait for the writes started before this call (not for later ones, which under
        steady traffic would never end)."""
        if self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def drain(self) -> None:
        """Wait until no write is pending at all (at shutdown, once traffic has stopped)."""
        while self._pending:
            await self.flush()

    @property
    def pending(self) -> int:
        return len(self._pending)
