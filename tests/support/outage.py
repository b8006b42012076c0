"""Helpers of the store-outage tests: fast store timeouts, /healthz, waiting for a state."""

from __future__ import annotations

import asyncio
import time

import aiohttp

__all__ = ["FAST", "health", "wait_until"]

# Store timeouts short enough that an outage is noticed within a test's patience.
FAST = {"call_timeout_s": 0.3, "reconnect_min_s": 0.02, "reconnect_max_s": 0.2}


async def health(http: aiohttp.ClientSession, url: str) -> dict:
    async with http.get(url + "/healthz") as resp:
        return await resp.json()


async def wait_until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)
