"""RedisStore behaviour beyond the shared contract: what lands in Redis, and recovery."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from proxy.budgets.rules import MAX_AMOUNT_NUSD
from proxy.store import RedisStore
from proxy.store.budgets_redis import budget_key
from tests.support.records import make_record, total_of, ts
from tests.support.redis_server import RedisServer

RETENTION_DAYS = 30


@pytest.fixture
async def raw(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    """A plain client on the test server, to look at what the store wrote."""
    client = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
async def store(redis_server: RedisServer) -> AsyncIterator[RedisStore]:
    store = RedisStore(
        redis_server.url,
        key_prefix=f"t-{uuid.uuid4().hex[:12]}:",
        retention_days=RETENTION_DAYS,
        request_index_days=2,
    )
    await store.open()
    yield store
    await store.close()


async def test_what_one_record_writes(store: RedisStore, raw: aioredis.Redis) -> None:
    record = make_record(customer="a:b}", tags=("team=x",), end_user="eve", cost_nusd=1500)
    assert await store.record_usage(record) is True

    p, c = store.layout.prefix, "{c:a:b%7D}"
    assert set(await raw.keys(f"{p}*")) == {
        f"{p}customers",
        f"{p}req:{record.request_id}",
        *(f"{p}{c}:{kind}:2026-11-28" for kind in ("d", "dt", "de", "rid")),
        f"{p}{c}:m:2026-11",
        f"{p}{c}:log",
        # The console's whole-deployment keys (no what-if hash: the record has none).
        *(k for k in store.console.record_keys("2026-11-28", record.ts_ms // 60_000)
          if ":dw:" not in k),
    }  # fmt: skip
    base = "gpt-4o\x1fopenai\x1fgpt-4o-2024-08-06\x1f"
    # Integer strings only, and zero counters are not stored at all.
    assert await raw.hgetall(f"{p}{c}:d:2026-11-28") == {
        f"{base}cost_nusd": "1500",
        f"{base}requests": "1",
        f"{base}input_tokens": "100",
        f"{base}output_tokens": "20",
    }
    assert await raw.hget(f"{p}{c}:dt:2026-11-28", f"team=x\x1f{base}requests") == "1"
    assert await raw.hget(f"{p}{c}:de:2026-11-28", f"eve\x1f{base}requests") == "1"
    assert await raw.hget(f"{p}{c}:m:2026-11", "cost_nusd") == "1500"
    assert await raw.smembers(f"{p}customers") == {"a:b}"}
    assert await raw.get(f"{p}req:{record.request_id}") == "a:b}\n2026-11-28"


async def test_keys_expire(store: RedisStore, raw: aioredis.Redis) -> None:
    record = make_record()
    await store.record_usage(record)

    p, c = store.layout.prefix, "{c:acme}"
    for key in (f"{p}{c}:d:2026-11-28", f"{p}{c}:m:2026-11", f"{p}{c}:log"):
        assert RETENTION_DAYS * 86_400 - 60 < await raw.ttl(key) <= RETENTION_DAYS * 86_400
    for key in (f"{p}{c}:rid:2026-11-28", f"{p}req:{record.request_id}"):
        assert 2 * 86_400 - 60 < await raw.ttl(key) <= 2 * 86_400
    assert await raw.ttl(f"{p}customers") == -1


async def test_a_replay_writes_no_second_log_entry(store: RedisStore, raw: aioredis.Redis) -> None:
    record = make_record()
    await store.record_usage(record)
    await store.record_usage(record)

    assert await raw.xlen(store.layout.log("acme")) == 1


async def test_script_is_reloaded_after_the_server_forgets_it(
    store: RedisStore, raw: aioredis.Redis
) -> None:
    await raw.script_flush()
    record = make_record()

    assert await store.record_usage(record) is True
    assert await store.record_usage(record) is False
    assert await store.monthly_totals("acme", "2026-11") == total_of([record])


async def test_usage_log_is_capped_but_spend_is_not(redis_server: RedisServer) -> None:
    store = RedisStore(redis_server.url, key_prefix=f"t-{uuid.uuid4().hex}:", usage_log_maxlen=10)
    await store.open()
    records = [make_record(cost_nusd=i) for i in range(250)]
    try:
        for record in records:
            await store.record_usage(record)

        # MAXLEN ~ trims whole stream nodes (100 entries), so the cap is approximate.
        assert await store.get_usage(records[0].request_id) is None
        assert await store.get_usage(records[-1].request_id) == records[-1]
        assert await store.monthly_totals("acme", "2026-11") == total_of(records)
    finally:
        await store.close()


async def test_survives_a_redis_restart() -> None:
    with RedisServer(persistent=True) as server:
        store = RedisStore(server.url)
        await store.open()
        try:
            before = make_record(cost_nusd=7)
            await store.record_usage(before)

            server.restart()  # killed: connections drop and the script cache is empty
            after = make_record(cost_nusd=11)
            assert await store.record_usage(after) is True

            assert await store.monthly_totals("acme", "2026-11") == total_of([before, after])
            assert await store.get_usage(before.request_id) == before
        finally:
            await store.close()


async def test_a_client_passed_in_stays_open(redis_server: RedisServer) -> None:
    client = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    store = RedisStore("unused://", key_prefix=f"t-{uuid.uuid4().hex}:", client=client)
    await store.open()
    await store.record_usage(make_record())
    await store.close()

    assert await client.ping() is True
    await client.aclose()


async def test_calls_before_open_fail_loudly() -> None:
    store = RedisStore("redis://127.0.0.1:1/0")

    with pytest.raises(RuntimeError, match="not open"):
        await store.get_usage("r1")
    await store.close()


@pytest.mark.parametrize(
    "amount", ["1000000000000000", "9223372036854775808", "1e30", "-5", "nan", "x"]
)
async def test_the_budget_scripts_bound_what_they_are_given(
    store: RedisStore, raw: aioredis.Redis, amount: str
) -> None:
    """The reserve and settle scripts bound their ARGV themselves (a caller that skipped
    the Python bound, or an old one, cannot overflow a counter), and write integer
    strings only: v1 wrote a release of 10^15 as "-1e+15", which HINCRBY refused."""
    keys = [*store._fixed_keys(), budget_key(store.layout.prefix, "customer/raw", "monthly")]
    now = "1796083140000"  # 2026-11-30T23:59:00Z
    try:
        expected = min(max(int(float(amount)), 0), MAX_AMOUNT_NUSD)
    except ValueError:
        expected = 0
    expected = 0 if amount == "nan" else expected
    held = await store._run_script(
        store._reserve_script, keys, ["r1", amount, 60_000, now, 32, "monthly", 10, "0"]
    )
    assert held[0] == 0
    assert held[3:] == ["2026-11", 0, expected]
    settled = await store._run_script(store._settle_script, keys, ["r1", amount, now, "monthly"])
    assert settled[2:4] == ["2026-11", expected]
    assert settled[4] == 0  # the hold released, exactly
    counter = await raw.hgetall(keys[-1])
    assert all(v.lstrip("-").isdigit() for k, v in counter.items() if k != "pid"), counter


async def test_every_console_key_expires(store: RedisStore, raw: aioredis.Redis) -> None:
    # The day's first record sets the TTLs; later ones (and later days) must leave none out.
    days = ["2026-11-28T12:00:00", "2026-11-28T12:05:00", "2026-11-29T00:00:01"]
    for at in days:
        await store.record_usage(make_record(ts_ms=ts(at), what_if={"ai21/jamba": 5}))
    keys = await raw.keys(f"{store.console.g}*")
    assert len(keys) > 20
    for key in keys:
        ttl = await raw.ttl(key)
        if ":min:" in key:
            assert 0 < ttl <= 2 * 86_400, key
        else:
            assert RETENTION_DAYS * 86_400 - 60 < ttl <= RETENTION_DAYS * 86_400, key
