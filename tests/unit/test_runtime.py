"""Snapshot swapping and provider pool lifetimes, with providers that only count calls."""

from __future__ import annotations

import asyncio

from proxy.config import ProviderConfig
from proxy.providers import Provider
from proxy.runtime import Runtime


class CountingProvider(Provider):
    def __init__(self, name: str) -> None:
        super().__init__(name, ProviderConfig(base_url="http://127.0.0.1:9"))
        self.starts = self.closes = 0

    @property
    def started(self) -> bool:
        return self.starts > self.closes

    async def start(self) -> None:
        self.starts += 1

    async def close(self) -> None:
        self.closes += 1


Snap = tuple[CountingProvider, ...]


def runtime(snapshot: Snap) -> Runtime[Snap]:
    return Runtime(snapshot, providers_of=lambda s: s)


async def settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


async def test_unchanged_providers_are_kept_and_removed_ones_close_after_the_last_request():
    p1, p2, p3 = CountingProvider("p1"), CountingProvider("p2"), CountingProvider("p3")
    rt = runtime((p1, p2))
    await rt.start()

    with rt.pinned() as old:
        await rt.swap((p1, p3))
        await settle()
        assert rt.current == (p1, p3) and old == (p1, p2)
        assert (p3.starts, p2.closes) == (1, 0)  # p2 still serves the pinned request
        with rt.pinned() as new:
            assert new == (p1, p3)
    await settle()

    assert (p1.starts, p1.closes) == (1, 0)
    assert p2.closes == 1
    assert rt.live_snapshots == 1 and rt.in_flight() == 0


async def test_a_provider_outlives_every_snapshot_that_uses_it():
    p1, p2 = CountingProvider("p1"), CountingProvider("p2")
    rt = runtime((p1,))
    await rt.start()
    a = rt.pinned()
    a.__enter__()
    await rt.swap((p1, p2))  # B keeps p1
    b = rt.pinned()
    b.__enter__()
    await rt.swap((p2,))  # C drops p1

    b.__exit__(None, None, None)
    await settle()
    assert p1.closes == 0  # A still has a request in flight that may use p1
    a.__exit__(None, None, None)
    await settle()
    assert (p1.closes, p2.closes) == (1, 0)


async def test_swapping_without_requests_closes_at_once_and_close_closes_the_rest():
    p1, p2 = CountingProvider("p1"), CountingProvider("p2")
    rt = runtime((p1,))
    await rt.start()
    await rt.swap((p2,))
    await settle()
    assert p1.closes == 1

    await rt.close()
    assert p2.closes == 1
