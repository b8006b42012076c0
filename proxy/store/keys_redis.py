"""Issued keys, customers and the usage export on Redis (mixed into RedisStore).

Key and customer records are few and change rarely: they share one hash tag, `{adm}`, so
each change is one MULTI transaction even on Redis Cluster. Lookups on the request path
are cached in-process (see proxy.access.authenticator), so that slot sees about one read per key per
second. Changes are announced on the `<prefix>changes` channel.

    <prefix>{adm}:key:<id>        string: IssuedKey JSON (no secret, no last-used time)
    <prefix>{adm}:kh:<sha256>     string: key id; with a TTL while an old secret's grace runs
    <prefix>{adm}:khs:<id>        set of the key's digests (for revoke)
    <prefix>{adm}:keys            set of key ids; <prefix>{adm}:keys:c:<customer> per customer
    <prefix>{adm}:lastused        hash key id -> last-used epoch ms (written in batches)
    <prefix>{adm}:cust:<id>       string: Customer JSON; <prefix>{adm}:custs set of ids
"""

from __future__ import annotations

import heapq
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from proxy.access.keys import Customer, IssuedKey
from proxy.access.ratelimit import Limiter
from proxy.accounting.records import UsageRecord
from proxy.store.ratelimit_redis import RedisLimiter
from proxy.store.redis_client import RedisClient
from proxy.store.redis_layout import KeyLayout, escape

__all__ = ["CLOCK_SKEW_MS", "AdminLayout", "RedisKeysMixin"]

# A usage log entry's id is the time Redis wrote it: after the request's `ts_ms` (taken by
# the proxy's clock, which may run this far ahead of Redis'), when the request ended, or
# much later when the record was replayed from a journal after an outage. So a range is
# read from its start to the end of the log: exact, at the price of reading what was
# written after the range (the log is bounded by store.usage_log_max per customer).
CLOCK_SKEW_MS = 300_000


@dataclass(frozen=True, slots=True)
class AdminLayout:
    prefix: str

    def key(self, key_id: str) -> str:
        return f"{self.prefix}{{adm}}:key:{escape(key_id)}"

    def key_hash(self, sha256: str) -> str:
        return f"{self.prefix}{{adm}}:kh:{sha256}"

    def key_hashes(self, key_id: str) -> str:
        return f"{self.prefix}{{adm}}:khs:{escape(key_id)}"

    def keys(self, customer: str | None = None) -> str:
        base = f"{self.prefix}{{adm}}:keys"
        return base if customer is None else f"{base}:c:{escape(customer)}"

    @property
    def last_used(self) -> str:
        return f"{self.prefix}{{adm}}:lastused"

    def customer(self, customer_id: str) -> str:
        return f"{self.prefix}{{adm}}:cust:{escape(customer_id)}"

    @property
    def customers(self) -> str:
        return f"{self.prefix}{{adm}}:custs"

    @property
    def changes(self) -> str:
        return f"{self.prefix}changes"


def _entry_order(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


class RedisKeysMixin:
    # Provided by RedisStore.
    layout: KeyLayout
    _opened: Callable[[], tuple[RedisClient, Any]]

    @property
    def _adm(self) -> AdminLayout:
        return AdminLayout(self.layout.prefix)

    def _redis(self) -> RedisClient:
        return self._opened()[0]

    def rate_limiter(self) -> Limiter:
        return RedisLimiter(self._redis(), self.layout.prefix)

    async def publish_change(self) -> None:
        await self._redis().publish(self._adm.changes, "1")

    async def watch_changes(self) -> AsyncIterator[None]:
        """Yields once subscribed (the caller may have missed changes before), then once
        per announced change. Raises when the connection breaks."""
        pubsub = self._redis().pubsub()
        try:
            await pubsub.subscribe(self._adm.changes)
            async for message in pubsub.listen():
                if message["type"] in ("subscribe", "message"):
                    yield None
        finally:
            await pubsub.aclose()

    # --- keys

    async def create_key(self, key: IssuedKey, sha256: str) -> None:
        adm = self._adm
        async with self._redis().pipeline(transaction=True) as pipe:
            pipe.set(adm.key(key.id), _key_json(key))
            pipe.set(adm.key_hash(sha256), key.id)
            pipe.sadd(adm.key_hashes(key.id), sha256)
            pipe.sadd(adm.keys(), key.id)
            if key.customer is not None:
                pipe.sadd(adm.keys(key.customer), key.id)
            await pipe.execute()

    async def find_key(self, sha256: str, now_ms: int) -> IssuedKey | None:
        client = self._redis()
        key_id = await client.get(self._adm.key_hash(sha256))  # grace: the TTL ends it
        return None if key_id is None else await self.get_key(key_id)

    async def get_key(self, key_id: str) -> IssuedKey | None:
        async with self._redis().pipeline(transaction=False) as pipe:
            pipe.get(self._adm.key(key_id))
            pipe.hget(self._adm.last_used, key_id)
            data, last_used = await pipe.execute()
        return None if data is None else _key_of(data, last_used)

    async def list_keys(self, customer: str | None) -> list[IssuedKey]:
        client, adm = self._redis(), self._adm
        ids = sorted(await client.smembers(adm.keys(customer)))
        if not ids:
            return []
        async with client.pipeline(transaction=False) as pipe:
            for i in ids:  # GETs, not MGET: a cluster pipeline refuses multi-key commands
                pipe.get(adm.key(i))
            pipe.hmget(adm.last_used, ids)
            *datas, used = await pipe.execute()
        keys = [_key_of(d, u) for d, u in zip(datas, used, strict=True) if d is not None]
        return sorted(keys, key=lambda k: (k.created_ms, k.id))

    async def revoke_key(self, key_id: str) -> bool:
        client, adm = self._redis(), self._adm
        key = await self.get_key(key_id)
        if key is None:
            return False
        hashes = await client.smembers(adm.key_hashes(key_id))
        async with client.pipeline(transaction=True) as pipe:
            pipe.delete(adm.key(key_id), adm.key_hashes(key_id))
            for sha in hashes:
                pipe.delete(adm.key_hash(sha))
            pipe.srem(adm.keys(), key_id)
            if key.customer is not None:
                pipe.srem(adm.keys(key.customer), key_id)
            pipe.hdel(adm.last_used, key_id)
            await pipe.execute()
        return True

    async def rotate_key(
        self, key_id: str, sha256: str, prefix: str, old_valid_until_ms: int
    ) -> IssuedKey | None:
        client, adm = self._redis(), self._adm
        key = await self.get_key(key_id)
        if key is None:
            return None
        old = await client.smembers(adm.key_hashes(key_id))
        rotated = IssuedKey.from_dict({**key.to_dict(), "prefix": prefix})
        async with client.pipeline(transaction=True) as pipe:
            for sha in old:
                # LT: an older secret already on a shorter grace keeps it.
                pipe.pexpireat(adm.key_hash(sha), old_valid_until_ms, lt=True)
            pipe.set(adm.key_hash(sha256), key_id)
            pipe.sadd(adm.key_hashes(key_id), sha256)
            pipe.set(adm.key(key_id), _key_json(rotated))
            await pipe.execute()
        return rotated

    async def touch_keys(self, last_used: Mapping[str, int]) -> None:
        if last_used:
            await self._redis().hset(self._adm.last_used, mapping=dict(last_used))

    # --- customers

    async def put_customer(self, customer: Customer) -> Customer:
        client, adm = self._redis(), self._adm
        existing = await self.get_customer(customer.id)
        if existing is not None:
            data = {**customer.to_dict(), "created_ms": existing.created_ms}
            customer = Customer.from_dict(data)
        async with client.pipeline(transaction=True) as pipe:
            pipe.set(adm.customer(customer.id), orjson.dumps(customer.to_dict()))
            pipe.sadd(adm.customers, customer.id)
            await pipe.execute()
        return customer

    async def get_customer(self, customer_id: str) -> Customer | None:
        data = await self._redis().get(self._adm.customer(customer_id))
        return None if data is None else Customer.from_dict(orjson.loads(data))

    async def list_customers(self) -> list[Customer]:
        client, adm = self._redis(), self._adm
        ids = sorted(await client.smembers(adm.customers))
        if not ids:
            return []
        datas = await client.mget([adm.customer(i) for i in ids])
        return [Customer.from_dict(orjson.loads(d)) for d in datas if d is not None]

    async def delete_customer(self, customer_id: str) -> bool:
        client, adm = self._redis(), self._adm
        for key_id in await client.smembers(adm.keys(customer_id)):
            await self.revoke_key(key_id)
        async with client.pipeline(transaction=True) as pipe:
            pipe.delete(adm.customer(customer_id))
            pipe.srem(adm.customers, customer_id)
            deleted, _ = await pipe.execute()
        return deleted > 0

    # --- usage export

    async def iter_usage(
        self, *, customer: str | None, from_ms: int, to_ms: int, page_size: int = 1000
    ) -> AsyncIterator[UsageRecord]:
        """Records with from_ms <= ts_ms < to_ms, merged across customers by write time."""
        client = self._redis()
        if customer is None:
            customers = sorted(await client.smembers(self.layout.customers))
        else:
            customers = [customer]
        streams = [self._log_entries(c, from_ms, to_ms, page_size) for c in customers]
        heap: list[tuple[tuple[int, int], int, UsageRecord]] = []
        for i, stream in enumerate(streams):
            first = await anext(stream, None)
            if first is not None:
                heap.append((first[0], i, first[1]))
        heapq.heapify(heap)
        while heap:
            _, i, record = heap[0]
            yield record
            following = await anext(streams[i], None)
            if following is None:
                heapq.heappop(heap)
            else:
                heapq.heapreplace(heap, (following[0], i, following[1]))

    async def _log_entries(
        self, customer: str, from_ms: int, to_ms: int, page_size: int
    ) -> AsyncIterator[tuple[tuple[int, int], UsageRecord]]:
        client, log = self._redis(), self.layout.log(customer)
        start = f"{max(0, from_ms - CLOCK_SKEW_MS)}-0"
        while True:
            entries = await client.xrange(log, start, "+", count=page_size)
            for entry_id, fields in entries:
                record = UsageRecord.from_dict(orjson.loads(fields["record"]))
                if from_ms <= record.ts_ms < to_ms:
                    yield _entry_order(entry_id), record
            if len(entries) < page_size:
                return
            start = "(" + entries[-1][0]


def _key_json(key: IssuedKey) -> bytes:
    data = key.to_dict()
    del data["last_used_ms"]
    return orjson.dumps(data)


def _key_of(data: str, last_used: str | None) -> IssuedKey:
    values = orjson.loads(data)
    values["last_used_ms"] = None if last_used is None else int(last_used)
    return IssuedKey.from_dict(values)
