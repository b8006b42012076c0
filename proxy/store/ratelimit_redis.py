"""Rate limits shared by every proxy instance: the leaky buckets of `access.ratelimit` in Redis.

One script call per scope (a key's buckets, a customer's buckets), each in its own hash tag
so the layout stays Cluster-safe; when a later scope refuses, the earlier one is refunded.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.resources import files
from itertools import groupby

from redis.exceptions import NoScriptError

from proxy.access.ratelimit import Bucket, Decision, Reading
from proxy.store.redis_client import RedisClient
from proxy.store.redis_layout import escape

__all__ = ["RedisLimiter"]

_SCRIPT = "ratelimit_v1.lua"


class RedisLimiter:
    def __init__(self, client: RedisClient, prefix: str) -> None:
        self._client = client
        self._prefix = prefix
        self._lua = files("proxy.store").joinpath("lua", _SCRIPT).read_text(encoding="utf-8")
        self._script = client.register_script(self._lua)

    def _key(self, bucket: Bucket) -> str:
        return f"{self._prefix}rl:{{{escape(bucket.scope)}}}:{bucket.kind}"

    async def _call(
        self, mode: str, buckets: Sequence[Bucket], costs: Sequence[int]
    ) -> tuple[bool, list[int]]:
        keys = [self._key(b) for b in buckets]
        args = [mode, *(x for b, c in zip(buckets, costs, strict=True) for x in (b.limit, c))]
        try:
            reply = await self._client.evalsha(self._script.sha, len(keys), *keys, *args)
        except NoScriptError:
            await self._client.script_load(self._lua)
            reply = await self._client.evalsha(self._script.sha, len(keys), *keys, *args)
        return reply[0] == 1, [int(level) for level in reply[1:]]

    async def take(self, buckets: Sequence[Bucket], costs: Sequence[int]) -> Decision:
        readings: list[Reading] = []
        taken: list[tuple[list[Bucket], list[int]]] = []
        pairs = list(zip(buckets, costs, strict=True))
        for _, group in groupby(pairs, key=lambda pair: pair[0].scope):
            scoped = list(group)
            scope_buckets = [b for b, _ in scoped]
            scope_costs = [c for _, c in scoped]
            ok, levels = await self._call("take", scope_buckets, scope_costs)
            readings += [
                Reading(b, used, c)
                for b, used, c in zip(scope_buckets, levels, scope_costs, strict=True)
            ]
            if not ok:
                for done_buckets, done_costs in taken:  # all or nothing across scopes too
                    await self.adjust(done_buckets, [-c for c in done_costs])
                return Decision(False, tuple(readings))
            taken.append((scope_buckets, scope_costs))
        return Decision(True, tuple(readings))

    async def adjust(self, buckets: Sequence[Bucket], deltas: Sequence[int]) -> None:
        pairs = list(zip(buckets, deltas, strict=True))
        for _, group in groupby(pairs, key=lambda pair: pair[0].scope):
            scoped = list(group)
            await self._call("adjust", [b for b, _ in scoped], [d for _, d in scoped])
