"""A provider's pool shared between customers: shares, waiting, handing over."""

from __future__ import annotations

import asyncio

import pytest

from proxy.providers.share import PoolFull, PoolShare


async def test_a_customer_past_its_share_is_refused_at_once() -> None:
    pool = PoolShare(capacity=10, customer_share=0.3)
    assert pool.per_customer == 3
    assert [await pool.acquire("a", 1) for _ in range(4)] == [True, True, True, False]
    assert await pool.acquire("b", 1) is True
    assert pool.in_use == 4


async def test_a_full_pool_hands_a_freed_slot_to_the_first_waiter() -> None:
    pool = PoolShare(capacity=2, customer_share=1)
    await pool.acquire("a", 1)
    await pool.acquire("a", 1)
    first = asyncio.create_task(pool.acquire("b", 5))
    second = asyncio.create_task(pool.acquire("c", 5))
    await asyncio.sleep(0)
    pool.release("a")
    assert await first is True
    assert not second.done()
    pool.release("a")
    assert await second is True
    assert (pool.held("b"), pool.held("c"), pool.in_use) == (1, 1, 2)


async def test_a_waiter_whose_customer_reached_its_share_lets_others_pass() -> None:
    pool = PoolShare(capacity=4, customer_share=0.5)
    for customer in "aabb":
        await pool.acquire(customer, 1)
    a_waits = asyncio.create_task(pool.acquire("a", 5))  # a holds 2 of its 2 already
    assert await a_waits is False


async def test_a_wait_that_times_out_raises_pool_full_and_holds_nothing() -> None:
    pool = PoolShare(capacity=1, customer_share=1)
    await pool.acquire("a", 1)
    with pytest.raises(PoolFull):
        await pool.acquire("b", 0.01)
    pool.release("a")
    assert pool.in_use == 0 and pool.held("b") == 0
    assert await pool.acquire("b", 0.01) is True


async def test_a_cancelled_waiter_gives_nothing_away() -> None:
    pool = PoolShare(capacity=1, customer_share=1)
    await pool.acquire("a", 1)
    waiting = asyncio.create_task(pool.acquire("b", 5))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    pool.release("a")
    assert pool.in_use == 0
