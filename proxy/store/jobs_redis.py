"""Periodic jobs shared by the instances on Redis (mixed into RedisStore): a lease, so
that one instance at a time runs a job, and the job's last result.

    <prefix>lease:<name>    string "1", PX the lease's time to live (SET NX: one holder)
    <prefix>job:<name>      string: the job's last result (JSON)
"""

from __future__ import annotations

from collections.abc import Callable

from proxy.store.redis_client import RedisClient
from proxy.store.redis_layout import KeyLayout, escape

__all__ = ["RedisJobsMixin"]


class RedisJobsMixin:
    # Provided by RedisStore.
    layout: KeyLayout
    _redis: Callable[[], RedisClient]

    async def claim_lease(self, name: str, ttl_s: float) -> bool:
        key = f"{self.layout.prefix}lease:{escape(name)}"
        return bool(await self._redis().set(key, "1", nx=True, px=max(1, round(ttl_s * 1000))))

    async def put_job_result(self, name: str, result_json: str) -> None:
        await self._redis().set(f"{self.layout.prefix}job:{escape(name)}", result_json)

    async def job_result(self, name: str) -> str | None:
        value = await self._redis().get(f"{self.layout.prefix}job:{escape(name)}")
        return None if value is None else str(value)
