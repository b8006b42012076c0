"""The shared production store: many proxy instances write one Redis (Cluster-ready layout).

One usage record is one record_usage Lua script call (everything in the customer's slot,
and the console's whole-deployment figures, atomically) plus two idempotent cross-slot
writes (the customer set and the request-id lookup key). On a Redis Cluster the console's
figures, in their own slot, take a second script call (record_console, idempotent too).
Records written concurrently share one non-transactional pipeline: one round trip per batch
(group commit). See `redis_layout` and `console_redis` for the keys.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import Connection
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, RedisError

from proxy.accounting.records import (
    METRIC_FIELDS,
    AggregateRow,
    Breakdown,
    Totals,
    UsageRecord,
    WhatIfRow,
)
from proxy.store.buckets import (
    days_between,
    end_user_dim,
    row_sort_key,
    tag_dims,
    utc_day,
    what_if_sort_key,
)
from proxy.store.budgets_redis import RedisBudgets
from proxy.store.console_redis import ConsoleLayout, RedisConsoleMixin, lua_source
from proxy.store.jobs_redis import RedisJobsMixin
from proxy.store.keys_redis import RedisKeysMixin
from proxy.store.redis_client import RedisClient
from proxy.store.redis_layout import (
    KeyLayout,
    base_field,
    escape,
    rows_from_hash,
    totals_from_hash,
    what_if_rows_from_hash,
)

__all__ = ["RedisStore"]

try:
    from hiredis import pack_command as _hiredis_pack
except ImportError:  # optional: redis-py's own (pure-Python) packer is used instead
    _hiredis_pack = None  # type: ignore[assignment]  # the function or None, checked before use

_RECORD_SCRIPT = "record_usage_v3.lua"
# HGETALLs per pipeline in aggregate_rows: big enough for a year of one customer in one
# round trip, small enough not to stall Redis on one huge reply.
_READ_BATCH = 512
_SECONDS_PER_DAY = 86_400


class _HiredisPackingConnection(Connection):
    """Packs commands with hiredis (C), as redis-py's sync client does when hiredis is
    installed; its asyncio client always packs in Python, ~0.5 µs per argument, which
    was a third of the store's cost per record."""

    def pack_command(self, *args: Any) -> list[bytes]:
        if isinstance(args[0], str) and " " in args[0]:  # "SCRIPT LOAD": two words
            args = (*args[0].split(), *args[1:])
        return [_hiredis_pack(args)]


class RedisStore(RedisBudgets, RedisKeysMixin, RedisJobsMixin, RedisConsoleMixin):
    """A `Store` on Redis. All numbers are integer HINCRBYs; nothing is ever a float.

    Day, month and log keys expire `retention_days` after their last write; the per-customer
    usage log (a stream) keeps about `usage_log_maxlen` entries. The request-id keys used
    for idempotency and get_usage expire after `request_index_days` (default: retention_days).
    Measured on Redis 7: ~520 bytes per log entry and ~250 bytes of request index per request,
    so a busy deployment wants a shorter index and a smaller log.
    A `client` passed in must use decode_responses=True and stays owned by the caller.
    """

    unavailable_errors: tuple[type[BaseException], ...] = (RedisError, OSError)

    def __init__(
        self,
        url: str,
        *,
        key_prefix: str = "costproxy:",
        usage_log_maxlen: int = 1_000_000,
        retention_days: int = 400,
        request_index_days: int | None = None,
        max_connections: int = 64,
        client: RedisClient | None = None,
        cluster_nodes: Sequence[str] = (),
    ) -> None:
        self.url = url
        self.cluster_nodes = tuple(cluster_nodes)
        self.layout = KeyLayout(key_prefix)
        self.console = ConsoleLayout(key_prefix)
        self._console_script: AsyncScript | None = None
        self.usage_log_maxlen = usage_log_maxlen
        self.max_connections = max_connections
        self._data_ttl = retention_days * _SECONDS_PER_DAY
        self._request_ttl = (request_index_days or retention_days) * _SECONDS_PER_DAY
        self._given_client = client
        self._cluster_writes = asyncio.Semaphore(max_connections)
        self._client: RedisClient | None = None
        self._script: AsyncScript | None = None
        self._queue: list[tuple[UsageRecord, asyncio.Future[bool]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def open(self) -> None:
        if self._client is not None:
            return
        if self._given_client is not None:
            self._client = self._given_client
        elif self.cluster_nodes:
            # Every per-customer key shares one hash tag, so the script and the reads of
            # one customer go to one node; the two cross-slot writes of a record are
            # routed on their own by the cluster pipeline.
            self._client = RedisCluster(
                startup_nodes=[_cluster_node(node) for node in self.cluster_nodes],
                decode_responses=True,
                # The cluster client has no blocking pool: at its per-node limit it fails
                # commands (MaxConnectionsError). Writes queue on `_cluster_writes` instead.
                max_connections=2**16,
                retry=Retry(ExponentialWithJitterBackoff(cap=0.5, base=0.01), retries=3),
            )
        else:
            # Blocking: a burst of requests beyond the pool waits for a connection, where
            # the default pool would fail them with "Too many connections".
            # Plain TCP only: rediss:// and unix:// need their own connection classes.
            plain = self.url.startswith("redis://") and _hiredis_pack is not None
            extra = {"connection_class": _HiredisPackingConnection} if plain else {}
            pool = aioredis.BlockingConnectionPool.from_url(
                self.url,
                decode_responses=True,
                **extra,
                max_connections=self.max_connections,
                # A pool built by hand gets no retries by default. Retrying is safe: every
                # write here is idempotent (the script by request_id).
                retry=Retry(ExponentialWithJitterBackoff(cap=0.5, base=0.01), retries=3),
            )
            self._client = aioredis.Redis.from_pool(pool)
        lua = lua_source(_RECORD_SCRIPT)
        self._script = self._client.register_script(lua)
        console_lua = self._load_console_script(self._client)
        try:
            # Loading now fails fast when Redis is unreachable, and spares the first
            # request a NOSCRIPT round trip.
            await self._client.script_load(lua)
            await self._client.script_load(console_lua)
            await self._open_budgets(self._client)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        if self._writer is not None:
            await asyncio.shield(self._writer)  # records already accepted are written first
        client, self._client = self._client, None
        self._script = self._console_script = None
        if client is not None and client is not self._given_client:
            await client.aclose()

    async def ping(self) -> None:
        client, _ = self._opened()
        await client.ping()

    async def record_usage(self, record: UsageRecord) -> bool:
        self._opened()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        self._queue.append((record, future))
        # Group commit: one writer sends every record queued by then in one pipeline, so
        # concurrent requests share the round trip and redis-py's per-pipeline cost. While
        # it waits on Redis, the next batch gathers: no timer, no added delay when idle.
        if self._writer is None:
            self._writer = loop.create_task(self._write_queued())
        return await future

    async def _write_queued(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                try:
                    results = await self._write_batch([record for record, _ in batch])
                except Exception as exc:  # the whole round trip failed: every record did
                    results = [exc] * len(batch)
                except BaseException:
                    for _, future in batch:
                        future.cancel()
                    raise
                for (_, future), result in zip(batch, results, strict=True):
                    if future.done():  # its caller was cancelled; the write happened anyway
                        continue
                    if isinstance(result, BaseException):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            self._writer = None

    def _script_call(self, record: UsageRecord) -> tuple[tuple[str, ...], tuple]:
        """KEYS and ARGV of the record_usage script for one record (on a cluster, without
        the console's: `_console_call` has them)."""
        keys = self.layout.record_keys(record.customer, utc_day(record.ts_ms))
        console = not self.cluster_nodes
        tags = [escape(tag) for tag in tag_dims(record)] if record.tags else [""]
        alternatives = [
            item for name, nusd in sorted(record.what_if.items()) for item in (escape(name), nusd)
        ]
        # Zero increments are left out: a missing field reads as 0 and costs no memory.
        metrics = [
            item
            for name, value in zip(METRIC_FIELDS, Totals.of(record).as_tuple(), strict=True)
            if value
            for item in (name, value)
        ]
        args = (
            record.request_id,
            # orjson serialises the dataclass itself: the same JSON as to_dict(), without
            # building the dict.
            orjson.dumps(record),
            self.usage_log_maxlen,
            self._data_ttl,
            self._request_ttl,
            base_field(record.route, record.provider, record.model),
            escape(end_user_dim(record)),
            len(tags),
            *tags,
            len(alternatives) // 2,
            *alternatives,
            *(self._console_values(record) if console else ()),
            *metrics,
        )
        if console:
            keys = (*keys, *self._console_keys(record))
        return keys, args

    async def _write_batch(self, records: list[UsageRecord]) -> list[bool | Exception]:
        """Apply records in one round trip; per record, True/False or the error it met."""
        client, script = self._opened()
        layout = self.layout
        calls = [self._script_call(record) for record in records]
        if self.cluster_nodes:
            outcomes = await asyncio.gather(
                *(
                    self._write_on_cluster(r, k, a)
                    for r, (k, a) in zip(records, calls, strict=True)
                ),
                return_exceptions=True,
            )
            # A cancellation (a BaseException) is not an outcome of one record: raise it.
            for outcome in outcomes:
                if isinstance(outcome, BaseException) and not isinstance(outcome, Exception):
                    raise outcome
            return [
                o for o in outcomes if isinstance(o, Exception) or not isinstance(o, BaseException)
            ]
        # Not script(client=pipe): redis-py then sends SCRIPT EXISTS before every pipeline,
        # a second round trip. EVALSHA directly and reload only on NOSCRIPT instead.
        async with client.pipeline(transaction=False) as pipe:
            for keys, args in calls:
                pipe.evalsha(script.sha, len(keys), *keys, *args)
            # Outside the customers' slots; idempotent, so a replay may repeat them.
            pipe.sadd(layout.customers, *dict.fromkeys(r.customer for r in records))
            for record, (keys, _) in zip(records, calls, strict=True):
                # keys[0] ends in the day: the request-id hash of that day.
                day = keys[0].rsplit(":", 1)[1]
                pointer = f"{record.customer}\n{day}"
                pipe.set(layout.request(record.request_id), pointer, ex=self._request_ttl)
            replies = await pipe.execute(raise_on_error=False)
        n = len(records)
        applied, added, pointers = replies[:n], replies[n], replies[n + 1 :]
        if isinstance(added, Exception):
            raise added
        results: list[bool | Exception] = []
        for (keys, args), result, pointer in zip(calls, applied, pointers, strict=True):
            if isinstance(result, NoScriptError):
                # Redis restarted or flushed its script cache; the script did not run.
                await client.script_load(script.script)
                try:
                    result = await client.evalsha(script.sha, len(keys), *keys, *args)
                except Exception as exc:
                    result = exc
            if isinstance(pointer, Exception):
                result = pointer
            results.append(result if isinstance(result, Exception) else result == 1)
        return results

    async def _write_on_cluster(
        self, record: UsageRecord, keys: Sequence[str], args: Sequence[object]
    ) -> bool:
        # A cluster pipeline may not carry EVALSHA: each script goes on its own, at the
        # same time as a pipeline of the two writes outside the customer's slot.
        client, script = self._opened()
        console_keys, console_args = self._console_call(record, args)
        layout = self.layout
        pointer = f"{record.customer}\n{keys[0].rsplit(':', 1)[1]}"
        async with self._cluster_writes, client.pipeline() as pipe:
            pipe.sadd(layout.customers, record.customer)
            pipe.set(layout.request(record.request_id), pointer, ex=self._request_ttl)
            results = await asyncio.gather(
                _evalsha(client, script, keys, args),
                _evalsha(client, self._console(), console_keys, console_args),
                pipe.execute(),
                return_exceptions=True,
            )
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return bool(results[0] == 1)

    async def aggregate_rows(
        self, *, customer: str | None, from_day: date, to_day: date, breakdown: Breakdown
    ) -> list[AggregateRow]:
        rows: list[AggregateRow] = []
        for c, day, fields in await self._daily_hashes(
            customer, from_day, to_day, lambda c, day: self.layout.day(c, breakdown, day)
        ):
            rows.extend(rows_from_hash(c, day, breakdown, fields))
        rows.sort(key=row_sort_key)
        return rows

    async def what_if_rows(
        self, *, customer: str | None, from_day: date, to_day: date
    ) -> list[WhatIfRow]:
        rows: list[WhatIfRow] = []
        for c, day, fields in await self._daily_hashes(
            customer, from_day, to_day, self.layout.what_if_day
        ):
            rows.extend(what_if_rows_from_hash(c, day, fields))
        rows.sort(key=what_if_sort_key)
        return rows

    async def _daily_hashes(
        self,
        customer: str | None,
        from_day: date,
        to_day: date,
        key_of: Callable[[str, str], str],
    ) -> list[tuple[str, str, dict[str, str]]]:
        """(customer, day, HGETALL of key_of(customer, day)) for every customer and day."""
        client, _ = self._opened()
        if customer is None:
            customers = sorted(await client.smembers(self.layout.customers))
        else:
            customers = [customer]
        days = list(days_between(from_day, to_day))
        wanted = [(c, day) for c in customers for day in days]
        found: list[tuple[str, str, dict[str, str]]] = []
        for start in range(0, len(wanted), _READ_BATCH):
            batch = wanted[start : start + _READ_BATCH]
            async with client.pipeline(transaction=False) as pipe:
                for c, day in batch:
                    pipe.hgetall(key_of(c, day))
                hashes = await pipe.execute()
            found.extend((c, day, fields) for (c, day), fields in zip(batch, hashes, strict=True))
        return found

    async def get_usage(self, request_id: str) -> UsageRecord | None:
        client, _ = self._opened()
        pointer = await client.get(self.layout.request(request_id))
        if pointer is None:
            return None
        # rpartition: a customer name may itself contain "\n"; the day never does.
        customer, _, day = pointer.rpartition("\n")
        entry_id = await client.hget(self.layout.request_ids(customer, day), request_id)
        if entry_id is None:
            return None
        entries = await client.xrange(self.layout.log(customer), entry_id, entry_id)
        if not entries:
            return None  # trimmed from the log by MAXLEN
        _, entry = entries[0]
        return UsageRecord.from_dict(orjson.loads(entry["record"]))

    async def monthly_totals(self, customer: str, month: str) -> Totals:
        """Totals of `customer` in the UTC month `month` ("YYYY-MM"); zeros when none."""
        client, _ = self._opened()
        return totals_from_hash(await client.hgetall(self.layout.month(customer, month)))

    def _opened(self) -> tuple[RedisClient, AsyncScript]:
        if self._client is None or self._script is None:
            raise RuntimeError("RedisStore is not open")
        return self._client, self._script

    def _console(self) -> AsyncScript:
        if self._console_script is None:
            raise RuntimeError("RedisStore is not open")
        return self._console_script


def _cluster_node(node: str) -> ClusterNode:
    host, _, port = node.rpartition(":")
    return ClusterNode(host, int(port))


async def _evalsha(
    client: RedisClient, script: AsyncScript, keys: Sequence[str], args: Sequence[object]
) -> object:
    """Run the script by its SHA, loading it first where the server does not know it."""
    try:
        return await client.evalsha(script.sha, len(keys), *keys, *args)
    except NoScriptError:
        await client.script_load(script.script)
        return await client.evalsha(script.sha, len(keys), *keys, *args)
