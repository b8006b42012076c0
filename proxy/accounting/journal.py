"""A durable local journal of the usage records the store could not take, replayed later.

One directory of append-only JSON-lines files. `active.jsonl` takes new records, written
and fsync'd in small batches (group commit: every record queued by the time the writer
runs shares one fsync). A replay first seals the active file as `sealed-<n>.jsonl`, then
applies the records of each sealed file in order and deletes a file only once every one
of its records was applied. Stores apply a request id once, so a replay that is cut off
(store gone again, proxy killed) is simply repeated: nothing is counted twice.

The total size is bounded; past `max_bytes` an append fails with `JournalFullError`.
A lock file keeps two processes from sharing one journal.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO, TypeVar

import orjson

from proxy.accounting.records import UsageRecord
from proxy.files import open_private, private_dir

__all__ = ["Journal", "JournalFullError"]

log = logging.getLogger("costproxy.journal")

T = TypeVar("T")
_ACTIVE = "active.jsonl"
_SEALED_GLOB = "sealed-*.jsonl"
# Records applied concurrently during a replay: enough to hide the store's round trip.
_REPLAY_BATCH = 64


class JournalFullError(Exception):
    """The journal reached its size limit: the record was not saved."""


class Journal:
    """Open with `open()`; `append()` returns once the record is on disk."""

    def __init__(self, directory: str | os.PathLike[str], *, max_bytes: int) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self._executor: ThreadPoolExecutor | None = None
        self._queue: deque[tuple[bytes, asyncio.Future[None]]] = deque()
        self._write_queued = False
        self._replaying = asyncio.Lock()
        # Loop side: records not yet confirmed applied, and bytes on disk (or queued).
        self._pending = 0
        self._bytes = 0
        # Worker-thread side.
        self._lock_fd: int | None = None
        self._active: BinaryIO | None = None
        self._next_seal = 0

    @property
    def pending(self) -> int:
        """Records in the journal not yet confirmed applied to the store."""
        return self._pending

    async def open(self) -> None:
        if self._executor is not None:
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal")
        try:
            self._pending, self._bytes = await self._run(self._open_files)
        except BaseException:
            self._executor.shutdown(wait=True)
            self._executor = None
            raise
        if self._pending:
            log.warning(
                "journal %s holds %d usage records not yet in the store: replaying them "
                "once the store answers",
                self.directory,
                self._pending,
            )

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        try:
            await asyncio.get_running_loop().run_in_executor(executor, self._close_files)
        finally:
            executor.shutdown(wait=True)

    async def append(self, record: UsageRecord) -> None:
        """Write `record` durably; raises JournalFullError past the size limit, OSError
        when the disk refuses."""
        executor = self._opened()
        line = orjson.dumps(record.to_dict()) + b"\n"
        if self._bytes + len(line) > self.max_bytes:
            raise JournalFullError(
                f"journal {self.directory} is full ({self._bytes} of {self.max_bytes} bytes, "
                "store.journal_max_bytes): bring the store back or raise the limit"
            )
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._queue.append((line, future))
        self._bytes += len(line)
        self._pending += 1
        if not self._write_queued:
            self._write_queued = True
            executor.submit(self._write_queued_lines, loop)
        try:
            await future
        except BaseException:
            if not future.cancelled() and future.exception() is not None:
                self._pending -= 1  # not on disk: the caller still owns the record
                self._bytes -= len(line)
            raise

    async def replay(self, apply: Callable[[UsageRecord], Awaitable[object]]) -> int:
        """Apply every journaled record with `apply` (which must be idempotent by request
        id); returns how many were applied. An exception from `apply` stops the replay and
        propagates: what was not confirmed stays in the journal for the next replay."""
        async with self._replaying:
            applied = 0
            for path in await self._run(self._seal):
                records, size = await self._run(_read_records, path)
                done = 0
                try:
                    for start in range(0, len(records), _REPLAY_BATCH):
                        batch = records[start : start + _REPLAY_BATCH]
                        results = await asyncio.gather(
                            *(apply(record) for record in batch), return_exceptions=True
                        )
                        for result in results:
                            if isinstance(result, BaseException):
                                raise result
                        done += len(batch)
                        self._pending -= len(batch)
                finally:
                    if done < len(records):
                        self._pending += done  # the whole file will be replayed again
                await self._run(path.unlink)
                self._bytes -= size
                applied += done
            return applied

    def _opened(self) -> ThreadPoolExecutor:
        if self._executor is None:
            raise RuntimeError("Journal is not open")
        return self._executor

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._opened(), fn, *args)

    # Everything below runs on the worker thread.

    def _open_files(self) -> tuple[int, int]:
        private_dir(self.directory)  # usage records: the owner's only
        fd = os.open(self.directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RuntimeError(
                f"journal {self.directory} is in use by another process: give each proxy "
                "instance its own store.journal_path"
            ) from None
        self._lock_fd = fd
        sealed = sorted(self.directory.glob(_SEALED_GLOB))
        self._next_seal = 1 + max((_seal_number(p) for p in sealed), default=0)
        # Whatever a previous process left active is sealed now: a torn last line (a crash
        # mid-write) then stays at the end of a sealed file and is skipped on reading.
        self._seal()
        pending = total = 0
        for path in sorted(self.directory.glob(_SEALED_GLOB)):
            records, size = _read_records(path)
            pending += len(records)
            total += size
        return pending, total

    def _close_files(self) -> None:
        if self._active is not None:
            self._active.close()
            self._active = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _write_queued_lines(self, loop: asyncio.AbstractEventLoop) -> None:
        self._write_queued = False
        batch = []
        while self._queue:
            batch.append(self._queue.popleft())
        error: OSError | None = None
        try:
            if self._active is None:
                self._active = open_private(self.directory / _ACTIVE)
            self._active.write(b"".join(line for line, _ in batch))
            self._active.flush()
            os.fsync(self._active.fileno())
        except OSError as exc:
            error = exc
        loop.call_soon_threadsafe(_settle, [future for _, future in batch], error)

    def _seal(self) -> list[Path]:
        """Seal the active file (if it holds anything); the sealed files, oldest first."""
        active = self.directory / _ACTIVE
        if self._active is not None:
            self._active.close()
            self._active = None
        if active.exists() and active.stat().st_size > 0:
            active.rename(self.directory / f"sealed-{self._next_seal:012d}.jsonl")
            self._next_seal += 1
            _fsync_dir(self.directory)
        return sorted(self.directory.glob(_SEALED_GLOB))


def _seal_number(path: Path) -> int:
    try:
        return int(path.stem.removeprefix("sealed-"))
    except ValueError:
        return 0


def _read_records(path: Path) -> tuple[list[UsageRecord], int]:
    data = path.read_bytes()
    records = []
    lines = data.split(b"\n")
    for number, line in enumerate(lines, 1):
        if not line:
            continue
        try:
            records.append(UsageRecord.from_dict(orjson.loads(line)))
        except (orjson.JSONDecodeError, TypeError, ValueError):
            # A torn last line was never acknowledged to anyone; anything else is damage.
            torn = number == len(lines)
            (log.info if torn else log.error)(
                "journal %s line %d is %s: skipped", path, number, "torn" if torn else "corrupt"
            )
    return records, len(data)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _settle(futures: list[asyncio.Future[None]], error: OSError | None) -> None:
    for future in futures:
        if future.done():
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(None)
