"""The current config snapshot, swapped atomically, and the lifetime of provider pools.

A request pins the snapshot current when it arrived and uses it to the end, so a reload
never changes a request midway. A provider (its connection pool) lives while any live
snapshot uses it: the current one, or a replaced one that still has requests in flight.
Unchanged providers pass from snapshot to snapshot and keep their pool; the others are
closed once the last request that could use them has finished.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

from proxy.providers import Provider

__all__ = ["Runtime"]

log = logging.getLogger("costproxy.runtime")

S = TypeVar("S")


class Runtime(Generic[S]):
    def __init__(self, snapshot: S, *, providers_of: Callable[[S], Iterable[Provider]]) -> None:
        self._providers_of = providers_of
        self.current = snapshot
        self._in_flight: dict[int, int] = {id(snapshot): 0}  # live snapshots → pinned requests
        self._live: dict[int, S] = {id(snapshot): snapshot}
        self._uses: dict[int, int] = {}  # id(provider) → live snapshots using it
        self._closing: set[asyncio.Task[None]] = set()
        self._hold(snapshot)

    @contextmanager
    def pinned(self) -> Iterator[S]:
        """The current snapshot, kept alive until the block ends."""
        snapshot = self.current
        key = id(snapshot)
        self._in_flight[key] += 1
        try:
            yield snapshot
        finally:
            self._in_flight[key] -= 1
            if self._in_flight[key] == 0 and snapshot is not self.current:
                self._retire(snapshot)

    def in_flight(self) -> int:
        return sum(self._in_flight.values())

    @property
    def live_snapshots(self) -> int:
        return len(self._live)

    async def start(self) -> None:
        for provider in self._providers_of(self.current):
            if not provider.started:
                await provider.start()

    async def swap(self, snapshot: S) -> None:
        """Make `snapshot` current; providers new to it are started first."""
        for provider in self._providers_of(snapshot):
            if not provider.started:
                await provider.start()
        previous = self.current
        self._hold(snapshot)
        self._live[id(snapshot)] = snapshot
        self._in_flight[id(snapshot)] = 0
        self.current = snapshot
        if self._in_flight[id(previous)] == 0:
            self._retire(previous)

    async def close(self) -> None:
        """At shutdown, after the server has waited for running requests: close every pool."""
        if self._closing:
            await asyncio.gather(*list(self._closing), return_exceptions=True)
        seen: set[int] = set()
        for snapshot in list(self._live.values()):
            for provider in self._providers_of(snapshot):
                if id(provider) not in seen:
                    seen.add(id(provider))
                    await provider.close()

    def _hold(self, snapshot: S) -> None:
        for provider in self._providers_of(snapshot):
            self._uses[id(provider)] = self._uses.get(id(provider), 0) + 1

    def _retire(self, snapshot: S) -> None:
        """A replaced snapshot without requests: release its providers."""
        key = id(snapshot)
        if self._live.pop(key, None) is None:
            return
        del self._in_flight[key]
        for provider in self._providers_of(snapshot):
            uses = self._uses[id(provider)] - 1
            if uses:
                self._uses[id(provider)] = uses
                continue
            del self._uses[id(provider)]
            log.info(
                "closing the connection pool of provider %r (no longer configured)", provider.name
            )
            task = asyncio.get_running_loop().create_task(provider.close())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
