"""The console's figures on Redis (mixed into RedisStore): whole-deployment daily rows,
per-minute totals, per-customer block totals with sorted sets to rank them, recent records,
shared links.

Whole-deployment keys carry the hash tag {g} (one slot in a cluster):

    <prefix>{g}:seen:<day>           hash request_id -> 1 (cluster only: record_console's claims)
    <prefix>{g}:d:<day>              hash "route␟provider␟model␟metric" -> int
    <prefix>{g}:dw:<day>             hash "alternative␟route␟provider␟model␟metric" -> int
    <prefix>{g}:min:<epoch minute>   hash cost_nusd, requests, unpriced_requests -> int (two days)
    <prefix>{g}:recent               stream of {"record": <UsageRecord JSON>}, capped
    <prefix>{g}:cd:<day>             hash "customer␟metric" -> int: each customer's day totals
    <prefix>{g}:r:<level>:<block>:<cost|requests|tokens>   sorted set customer -> score
                                     (the blocks of store.blocks: they order customers)
    <prefix>console:shares           hash sha256 -> ShareLink JSON
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from functools import lru_cache
from importlib.resources import files

import orjson
from redis.commands.core import AsyncScript

from proxy.access.shares import ShareLink
from proxy.accounting.records import METRIC_FIELDS, AggregateRow, Totals, UsageRecord, WhatIfRow
from proxy.accounting.rollups import CustomerRanking, CustomerTotals, RankBy, RecentPage
from proxy.store.blocks import Block, blocks_of_day, cover, epoch_day
from proxy.store.buckets import days_between, row_sort_key, utc_day, what_if_sort_key
from proxy.store.redis_client import RedisClient
from proxy.store.redis_layout import (
    FIELD_SEP,
    KeyLayout,
    base_field,
    escape,
    rows_from_hash,
    totals_from_hash,
    unescape,
    what_if_rows_from_hash,
)

__all__ = ["CONSOLE_SCRIPT", "ConsoleLayout", "RedisConsoleMixin", "lua_source"]

CONSOLE_SCRIPT = "record_console_v1.lua"
_CONSOLE_LIB = "console_lib_v1.lua"
_RANKED = ("cost", "requests", "tokens")
_MS_PER_MINUTE = 60_000
_MINUTE_TTL_S = 2 * 86_400
_MAX_MINUTES = 24 * 60
# The all-customers recent list reaches back this many records (each ~0.5 KB of memory);
# one customer's list reads that customer's own log, as far back as it goes.
RECENT_MAX = 10_000
_RECENT_SCAN = 20_000  # records a recent-records page reads at most (rare filters)
_RECENT_BATCH = 500


def lua_source(name: str) -> str:
    """A record script with console_lib before it (both need its function)."""
    folder = files("proxy.store").joinpath("lua")
    lib = folder.joinpath(_CONSOLE_LIB).read_text(encoding="utf-8")
    return lib + folder.joinpath(name).read_text(encoding="utf-8")


class ConsoleLayout:
    def __init__(self, prefix: str) -> None:
        self.g = f"{prefix}{{g}}:"
        self.shares = f"{prefix}console:shares"

    def day(self, day: str) -> str:
        return f"{self.g}d:{day}"

    def what_if_day(self, day: str) -> str:
        return f"{self.g}dw:{day}"

    def minute(self, minute: int) -> str:
        return f"{self.g}min:{minute}"

    @property
    def recent(self) -> str:
        return f"{self.g}recent"

    def customer_day(self, day: str) -> str:
        return f"{self.g}cd:{day}"

    def ranked(self, block: Block, metric: str) -> str:
        return f"{self.g}r:{block[0]}:{block[1]}:{metric}"

    def claims(self, day: str) -> str:
        return f"{self.g}seen:{day}"

    def record_keys(self, day: str, minute: int) -> tuple[str, ...]:
        """The console KEYS of a record, in console_lib's order (the same for every record
        of a minute, so they are built once)."""
        return _record_keys(self.g, day, minute)


@lru_cache(maxsize=64)
def _record_keys(g: str, day: str, minute: int) -> tuple[str, ...]:
    keys = [f"{g}d:{day}", f"{g}dw:{day}", f"{g}min:{minute}", f"{g}recent", f"{g}cd:{day}"]
    for level, index in blocks_of_day(epoch_day(day)):
        keys += [f"{g}r:{level}:{index}:{metric}" for metric in _RANKED]
    return tuple(keys)


class RedisConsoleMixin:
    # Provided by RedisStore.
    _data_ttl: int
    _request_ttl: int
    console: ConsoleLayout
    layout: KeyLayout
    _console_script: AsyncScript | None

    def _opened(self) -> tuple[RedisClient, AsyncScript]:  # pragma: no cover - RedisStore's
        raise NotImplementedError

    def _load_console_script(self, client: RedisClient) -> str:
        lua = lua_source(CONSOLE_SCRIPT)
        self._console_script = client.register_script(lua)
        return lua

    def _console_keys(self, record: UsageRecord) -> tuple[str, ...]:
        return self.console.record_keys(utc_day(record.ts_ms), record.ts_ms // _MS_PER_MINUTE)

    def _console_values(self, record: UsageRecord) -> tuple[object, ...]:
        """console_lib's five ARGV values."""
        return (
            RECENT_MAX,
            _MINUTE_TTL_S,
            escape(record.customer),
            record.cost_nusd or 0,
            record.input_tokens + record.output_tokens,
        )

    def _console_call(
        self, record: UsageRecord, usage_args: Sequence[object]
    ) -> tuple[tuple[str, ...], tuple]:
        """KEYS and ARGV of record_console (a cluster's second script call); `usage_args`
        are record_usage's, whose record JSON it reuses."""
        alternatives = [
            item for name, nusd in sorted(record.what_if.items()) for item in (escape(name), nusd)
        ]
        metrics = [
            item
            for name, value in zip(METRIC_FIELDS, Totals.of(record).as_tuple(), strict=True)
            if value
            for item in (name, value)
        ]
        keys = (self.console.claims(utc_day(record.ts_ms)), *self._console_keys(record))
        args = (
            record.request_id,
            usage_args[1],
            self._data_ttl,
            self._request_ttl,
            base_field(record.route, record.provider, record.model),
            len(alternatives) // 2,
            *alternatives,
            *self._console_values(record),
            *metrics,
        )
        return keys, args

    # --- reads

    async def global_rows(self, *, from_day: date, to_day: date) -> list[AggregateRow]:
        client, _ = self._opened()
        days = list(days_between(from_day, to_day))
        async with client.pipeline(transaction=False) as pipe:
            for day in days:
                pipe.hgetall(self.console.day(day))
            hashes = await pipe.execute()
        rows = [
            row
            for day, fields in zip(days, hashes, strict=True)
            for row in rows_from_hash("", day, "base", fields)
        ]
        rows.sort(key=row_sort_key)
        return rows

    async def global_what_if_rows(self, *, from_day: date, to_day: date) -> list[WhatIfRow]:
        client, _ = self._opened()
        days = list(days_between(from_day, to_day))
        async with client.pipeline(transaction=False) as pipe:
            for day in days:
                pipe.hgetall(self.console.what_if_day(day))
            hashes = await pipe.execute()
        rows = [
            row
            for day, fields in zip(days, hashes, strict=True)
            for row in what_if_rows_from_hash("", day, fields)
        ]
        rows.sort(key=what_if_sort_key)
        return rows

    async def minute_totals(self, *, from_ms: int, to_ms: int) -> Totals:
        client, _ = self._opened()
        first, end = from_ms // _MS_PER_MINUTE, to_ms // _MS_PER_MINUTE
        minutes = range(max(first, end - _MAX_MINUTES), end)
        async with client.pipeline(transaction=False) as pipe:
            for minute in minutes:
                pipe.hgetall(self.console.minute(minute))
            hashes = await pipe.execute()
        totals = Totals()
        for fields in hashes:
            totals.add(totals_from_hash(fields))
        return totals

    async def rank_customers(
        self,
        *,
        from_day: date,
        to_day: date,
        by: RankBy = "cost",
        descending: bool = True,
        search: str | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> CustomerRanking:
        client, _ = self._opened()
        blocks = cover(from_day, to_day)
        metric = by if by != "customer" else "requests"
        sources = [self.console.ranked(block, metric) for block in blocks]
        # Summed inside Redis (ZUNIONSTORE), so only one score per customer crosses the
        # network; the scores are doubles and serve only to order the customers.
        async with client.pipeline(transaction=False) as pipe:
            if len(sources) == 1:
                pipe.zrange(sources[0], 0, -1, withscores=True)
            else:
                union = f"{self.console.g}tmp:{uuid.uuid4().hex}"
                pipe.zunionstore(union, sources)
                pipe.zrange(union, 0, -1, withscores=True)
                pipe.delete(union)
            replies = await pipe.execute()
        scored = replies[0] if len(sources) == 1 else replies[1]
        entries = [(unescape(member), score) for member, score in scored]
        if search:
            needle = search.lower()
            entries = [e for e in entries if needle in e[0].lower()]
        if by == "customer":
            entries.sort(key=lambda e: e[0], reverse=descending)
        else:
            sign = -1 if descending else 1
            entries.sort(key=lambda e: (sign * e[1], e[0]))
        page = [name for name, _ in entries[offset : offset + limit]]
        totals = await self._day_totals(client, from_day, to_day, page)
        return CustomerRanking(
            rows=[CustomerTotals(name, totals[name]) for name in page], count=len(entries)
        )

    async def _day_totals(
        self, client: RedisClient, from_day: date, to_day: date, customers: list[str]
    ) -> dict[str, Totals]:
        """Exact totals of `customers` over the days, from the integer day hashes (a page
        of customers: one HMGET per day)."""
        totals = {name: Totals() for name in customers}
        if not customers:
            return totals
        fields = [
            f"{escape(name)}{FIELD_SEP}{metric}" for name in customers for metric in METRIC_FIELDS
        ]
        async with client.pipeline(transaction=False) as pipe:
            for day in days_between(from_day, to_day):
                pipe.hmget(self.console.customer_day(day), fields)
            replies = await pipe.execute()
        width = len(METRIC_FIELDS)
        for values in replies:
            for i, name in enumerate(customers):
                part = values[i * width : (i + 1) * width]
                totals[name].add(Totals(*(int(v) if v is not None else 0 for v in part)))
        return totals

    async def recent_usage(
        self,
        *,
        customer: str | None = None,
        model: str | None = None,
        status: int | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> RecentPage:
        client, _ = self._opened()
        stream = self.layout.log(customer) if customer is not None else self.console.recent
        top = f"({cursor}" if cursor else "+"
        found: list[tuple[str, UsageRecord]] = []
        last_id: str | None = None
        scanned = 0
        while scanned < _RECENT_SCAN:
            entries = await client.xrevrange(stream, max=top, min="-", count=_RECENT_BATCH)
            for entry_id, entry in entries:
                last_id = entry_id
                record = UsageRecord.from_dict(orjson.loads(entry["record"]))
                if (model is None or record.model == model) and (
                    status is None or record.status == status
                ):
                    found.append((entry_id, record))
                    if len(found) > limit:
                        return RecentPage([r for _, r in found[:limit]], found[limit - 1][0])
            scanned += len(entries)
            if len(entries) < _RECENT_BATCH:
                return RecentPage([r for _, r in found], None)
            top = f"({last_id}"
        return RecentPage([r for _, r in found], last_id)

    # --- shared links

    async def put_share(self, share: ShareLink) -> None:
        client, _ = self._opened()
        await client.hset(self.console.shares, share.sha256, orjson.dumps(share.to_dict()))

    async def find_share(self, sha256: str) -> ShareLink | None:
        client, _ = self._opened()
        data = await client.hget(self.console.shares, sha256)
        return None if data is None else ShareLink.from_dict(orjson.loads(data))

    async def list_shares(self, customer: str | None) -> list[ShareLink]:
        client, _ = self._opened()
        shares = [
            ShareLink.from_dict(orjson.loads(data))
            for data in (await client.hgetall(self.console.shares)).values()
        ]
        if customer is not None:
            shares = [s for s in shares if s.customer == customer]
        return sorted(shares, key=lambda s: (s.created_ms, s.id))

    async def revoke_share(self, share_id: str, now_ms: int) -> bool:
        client, _ = self._opened()
        for share in await self.list_shares(None):
            if share.id == share_id:
                if share.revoked_ms is None:
                    revoked = ShareLink.from_dict({**share.to_dict(), "revoked_ms": now_ms})
                    await client.hset(
                        self.console.shares, share.sha256, orjson.dumps(revoked.to_dict())
                    )
                return True
        return False
