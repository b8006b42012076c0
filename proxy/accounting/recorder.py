"""Writing usage records off the client's critical path: to the store, or to the local
journal while the store is away, and replaying the journal when it is back.

The recorder tracks the store's health itself (a failed or late write, a periodic ping),
so requests never wait on a store round trip to learn that it is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass

from proxy.accounting.journal import Journal, JournalFullError
from proxy.accounting.records import UsageRecord
from proxy.errors import StoreUnavailableError
from proxy.store.base import Store

__all__ = ["RecorderPolicy", "UsageRecorder"]

log = logging.getLogger("costproxy.recorder")


@dataclass(frozen=True, slots=True)
class RecorderPolicy:
    fail_closed: bool = False
    reconnect_min_s: float = 0.05
    reconnect_max_s: float = 5.0
    health_interval_s: float = 1.0


class UsageRecorder:
    """`submit()` starts writing a record and returns at once; `drain()` waits for every
    write started so far, each ending in the store or in the journal (the spend API calls
    it, so one instance reads its own writes; shutdown calls it, so nothing is lost)."""

    def __init__(self, store: Store, journal: Journal, policy: RecorderPolicy) -> None:
        self._store = store
        self._journal = journal
        self._policy = policy
        self._pending: set[asyncio.Task[None]] = set()
        self._healthy = False
        self._wake = asyncio.Event()
        self._maintainer: asyncio.Task[None] | None = None
        self.lost = 0  # records neither stored nor journaled (journal full or disk error)

    @property
    def store_available(self) -> bool:
        return self._healthy

    @property
    def journal_pending_records(self) -> int:
        """costproxy_journal_pending_records: journaled records not yet in the store."""
        return self._journal.pending

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def start(self) -> None:
        """Open the journal, then the store; a store that is down now is retried in the
        background (the proxy starts anyway, journaling or refusing per the policy)."""
        await self._journal.open()
        try:
            await self._store.open()
            self._healthy = True
        except StoreUnavailableError as exc:
            self._store_down(exc)
        self._maintainer = asyncio.get_running_loop().create_task(self._maintain())

    async def close(self) -> None:
        """Wait for every write (so each record is in the store or on disk), stop
        replaying (the journal keeps whatever is left for the next start) and close it."""
        await self.drain()
        maintainer, self._maintainer = self._maintainer, None
        if maintainer is not None:
            maintainer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await maintainer
        if self._journal.pending:
            log.warning(
                "shutting down with %d usage records in the journal: they are replayed at "
                "the next start",
                self._journal.pending,
            )
        await self._journal.close()

    def admit(self) -> None:
        """Raises StoreUnavailableError when new requests must be refused (fail_closed)."""
        if self._policy.fail_closed and not self._healthy:
            raise StoreUnavailableError(
                "Usage accounting is unavailable, so requests are refused until it is back "
                "(store.on_error: fail_closed). Retry shortly.",
                headers={"Retry-After": "1"},
            )

    def submit(self, record: UsageRecord) -> None:
        task = asyncio.get_running_loop().create_task(self._write(record))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def flush(self) -> None:
        """Wait for the writes started before this call (not for later ones, which under
        steady traffic would never end): the spend API reads this instance's own writes."""
        if self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def drain(self) -> None:
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def _write(self, record: UsageRecord) -> None:
        if self._healthy:
            try:
                await self._store.record_usage(record)
                return
            except StoreUnavailableError as exc:
                self._store_down(exc)
            except Exception:
                # Not hidden: logged with its traceback. But a failure the store does not
                # classify (seen: uvloop's RuntimeError on a socket closing under redis-py
                # while Redis dies) must not lose money, so the record is journaled.
                log.exception("usage record %s: unexpected store failure", record.request_id)
                self._store_down(StoreUnavailableError("The usage store failed unexpectedly."))
        # Even if the failed write did land in the store after all, replaying it is
        # harmless: the store applies a request id once.
        try:
            await self._journal.append(record)
        except (JournalFullError, OSError) as exc:
            self.lost += 1
            log.error(
                "usage record %s of customer %r LOST: the store is unreachable and the "
                "journal refused it: %s",
                record.request_id,
                record.customer,
                exc,
            )
            return
        self._wake.set()  # the maintainer replays it as soon as the store answers

    def _store_down(self, exc: StoreUnavailableError) -> None:
        if self._healthy or self._maintainer is None:
            cause = exc.__cause__
            log.error(
                "usage store unavailable: %s%s; %s",
                exc.message.rstrip("."),
                f" ({cause})" if cause is not None else "",
                "refusing requests (fail_closed)"
                if self._policy.fail_closed
                else "journaling usage records locally",
            )
        self._healthy = False
        self._wake.set()

    async def _maintain(self) -> None:
        """Forever: reconnect, replay, ping (see `_maintain_until_failure`); a failure the
        store does not classify is logged whole and retried after the longest backoff,
        so that it can neither stop replays for good nor spin."""
        while True:
            try:
                await self._maintain_until_failure()
            except Exception:
                log.exception("usage store maintenance failed unexpectedly; retrying")
                self._store_down(StoreUnavailableError("The usage store failed unexpectedly."))
                await asyncio.sleep(self._policy.reconnect_max_s)

    async def _maintain_until_failure(self) -> None:
        """Reconnect with backoff while the store is down, replay the journal while it
        holds records, otherwise ping the store every health interval."""
        policy = self._policy
        delay = policy.reconnect_min_s
        while True:
            self._wake.clear()
            if not self._healthy:
                try:
                    await self._store.ping()
                except StoreUnavailableError:
                    # Jittered, so that many proxies do not reconnect in lockstep.
                    await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                    delay = min(delay * 2, policy.reconnect_max_s)
                    continue
                delay = policy.reconnect_min_s
                self._healthy = True
                log.warning(
                    "usage store reachable again; %d journaled records to replay",
                    self._journal.pending,
                )
            if self._journal.pending:
                try:
                    applied = await self._journal.replay(self._store.record_usage)
                except StoreUnavailableError as exc:
                    self._store_down(exc)
                    continue
                log.info(
                    "journal replayed: %d records applied, %d pending",
                    applied,
                    self._journal.pending,
                )
                if applied:
                    continue
            try:
                await asyncio.wait_for(self._wake.wait(), policy.health_interval_s)
            except TimeoutError:
                try:
                    await self._store.ping()
                except StoreUnavailableError as exc:
                    self._store_down(exc)
