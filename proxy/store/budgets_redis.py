"""Budget counters on Redis: one Lua script per reserve and one per settle (one round trip
each), so many proxy instances sharing the Redis admit exactly what fits.

Keys (all in the hash-tag slot {b}, so one script can touch every budget of a request):

    <prefix>{b}:c:<scope>|<period>            hash: pid, spent, held, burn ring
    <prefix>{b}:holds                         zset request id -> hold expiry (ms)
    <prefix>{b}:hold                          hash request id -> "amount\\nkey\\nkey..."
    <prefix>{b}:reclaimed                     zset request id -> when its hold expired
    <prefix>{b}:a:<scope>|<period>:<pid>:<alert>   string: the alert's claim
    <prefix>{b}:overrides / :overrides:v      hash scope -> rules JSON / version counter

One slot means all budget traffic lands on one node of a Redis Cluster: the price of
admitting a request atomically against customer, key, end user, tag and global budgets.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.resources import files
from typing import Any

from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from proxy.budgets.rules import (
    BudgetRule,
    CounterState,
    Period,
    ReserveAnswer,
    Seed,
    SettleAnswer,
    bounded_amount,
    period_id,
)
from proxy.store.redis_client import RedisClient
from proxy.store.redis_layout import KeyLayout, escape

__all__ = ["RedisBudgets", "budget_key"]

_LIB = "budget_lib_v2.lua"
_RESERVE = "reserve_v2.lua"
_SETTLE = "settle_v2.lua"
_SEED = "seed_v2.lua"
_RECLAIM_PER_CALL = 32


def _lua(name: str) -> str:
    return files("proxy.store").joinpath("lua", name).read_text(encoding="utf-8")


def budget_key(prefix: str, scope: str, period: str) -> str:
    return f"{prefix}{{b}}:c:{escape(scope)}|{period}"


def _ms(now_ms: int | None) -> str:
    return "" if now_ms is None else str(now_ms)


class RedisBudgets:
    """Mixed into RedisStore: uses its client (`_client`) and key prefix."""

    _client: RedisClient | None
    layout: KeyLayout
    _reserve_script: AsyncScript | None = None
    _settle_script: AsyncScript | None = None
    _seed_script: AsyncScript | None = None

    @property
    def _b(self) -> str:
        return f"{self.layout.prefix}{{b}}:"

    async def _open_budgets(self, client: RedisClient) -> None:
        lib = _lua(_LIB)
        self._reserve_script = client.register_script(lib + _lua(_RESERVE))
        self._settle_script = client.register_script(lib + _lua(_SETTLE))
        self._seed_script = client.register_script(lib + _lua(_SEED))
        for script in (self._reserve_script, self._settle_script, self._seed_script):
            await client.script_load(script.script)

    def _budget_client(self) -> RedisClient:
        if self._client is None:
            raise RuntimeError("RedisStore is not open")
        return self._client

    async def _run_script(
        self, script: AsyncScript | None, keys: list[str], args: list[object]
    ) -> Any:
        client = self._budget_client()
        assert script is not None
        try:
            return await client.evalsha(script.sha, len(keys), *keys, *args)
        except NoScriptError:
            # Redis restarted or flushed its scripts; EVALSHA did not run, so this is safe.
            await client.script_load(script.script)
            return await client.evalsha(script.sha, len(keys), *keys, *args)

    def _fixed_keys(self) -> list[str]:
        b = self._b
        return [f"{b}holds", f"{b}hold", f"{b}reclaimed"]

    async def reserve_budget(
        self,
        request_id: str,
        amount_nusd: int,
        counters: Sequence[tuple[str, BudgetRule]],
        ttl_ms: int,
        now_ms: int | None = None,
    ) -> ReserveAnswer:
        prefix = self.layout.prefix
        keys = self._fixed_keys() + [budget_key(prefix, s, r.period) for s, r in counters]
        amount = bounded_amount(amount_nusd)  # the script bounds it too: one rule, twice
        args: list = [request_id, amount, ttl_ms, _ms(now_ms), _RECLAIM_PER_CALL]
        for _, rule in counters:
            args += [rule.period, rule.limit_nusd, "1" if rule.hard else "0"]
        violated, now, _reclaimed, *flat = await self._run_script(self._reserve_script, keys, args)
        states = tuple(
            CounterState(flat[i], int(flat[i + 1]), int(flat[i + 2]))
            for i in range(0, len(flat), 3)
        )
        return ReserveAnswer(None if violated == 0 else violated - 1, states, int(now))

    async def settle_budget(
        self,
        request_id: str,
        cost_nusd: int,
        counters: Sequence[tuple[str, Period]],
        now_ms: int | None = None,
    ) -> SettleAnswer | None:
        prefix = self.layout.prefix
        keys = self._fixed_keys() + [budget_key(prefix, s, p) for s, p in counters]
        args = [request_id, bounded_amount(cost_nusd), _ms(now_ms), *(p for _, p in counters)]
        applied, now, *flat = await self._run_script(self._settle_script, keys, args)
        if applied == 0:
            return None
        states = tuple(
            CounterState(flat[i], int(flat[i + 1]), int(flat[i + 2]), int(flat[i + 3]))
            for i in range(0, len(flat), 4)
        )
        return SettleAnswer(states, int(now))

    async def seed_budget_spent(self, seeds: Sequence[Seed], now_ms: int | None = None) -> int:
        prefix = self.layout.prefix
        keys = self._fixed_keys() + [budget_key(prefix, s.scope, s.period) for s in seeds]
        args: list[object] = [_ms(now_ms)]
        for seed in seeds:
            args += [seed.period, seed.pid, seed.floor_nusd]
        return int(await self._run_script(self._seed_script, keys, args))

    async def budget_states(
        self, counters: Sequence[tuple[str, Period]], now_ms: int | None = None
    ) -> list[CounterState]:
        client = self._budget_client()
        prefix = self.layout.prefix
        async with client.pipeline(transaction=False) as pipe:
            if now_ms is None:
                pipe.time()
            for scope, period in counters:
                pipe.hmget(budget_key(prefix, scope, period), "pid", "spent", "held")
            replies = await pipe.execute()
        if now_ms is None:
            seconds, micros = replies.pop(0)
            now_ms = seconds * 1000 + micros // 1000
        states = []
        for (_, period), (pid, spent, held) in zip(counters, replies, strict=True):
            current = period_id(period, now_ms)
            states.append(
                CounterState(current, int(spent or 0) if pid == current else 0, int(held or 0))
            )
        return states

    async def claim_budget_alert(
        self, scope: str, period: Period, pid: str, alert: str, ttl_s: int | None
    ) -> bool:
        key = f"{self._b}a:{escape(scope)}|{period}:{pid}:{escape(alert)}"
        return bool(await self._budget_client().set(key, "1", nx=True, ex=ttl_s))

    async def budget_overrides(self) -> tuple[int, dict[str, str]]:
        async with self._budget_client().pipeline(transaction=False) as pipe:
            pipe.get(f"{self._b}overrides:v")
            pipe.hgetall(f"{self._b}overrides")
            version, rules = await pipe.execute()
        return int(version or 0), rules

    async def budget_overrides_version(self) -> int:
        return int(await self._budget_client().get(f"{self._b}overrides:v") or 0)

    async def put_budget_override(self, scope: str, rules_json: str) -> None:
        async with self._budget_client().pipeline(transaction=True) as pipe:
            pipe.hset(f"{self._b}overrides", scope, rules_json)
            pipe.incr(f"{self._b}overrides:v")
            await pipe.execute()

    async def delete_budget_override(self, scope: str) -> bool:
        async with self._budget_client().pipeline(transaction=True) as pipe:
            pipe.hdel(f"{self._b}overrides", scope)
            pipe.incr(f"{self._b}overrides:v")
            deleted, _ = await pipe.execute()
        return deleted == 1
