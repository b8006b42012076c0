"""The Store contract for issued keys, customers, rate limits and the usage export."""

from __future__ import annotations

import time

from proxy.access.keys import Customer, IssuedKey
from proxy.access.ratelimit import Bucket
from tests.support.records import make_record
from tests.support.stores import AnyStore

NOW = 1_800_000_000_000


def key(key_id: str = "key_a", customer: str | None = "acme", **kw: object) -> IssuedKey:
    return IssuedKey(key_id, "cp-abcde", customer, "prod", NOW, **kw)  # type: ignore[arg-type]


async def test_key_lifecycle(store: AnyStore) -> None:
    await store.create_key(key(models=("gpt-4o",), rpm=5), "a" * 64)
    await store.create_key(key("key_b", "globex"), "b" * 64)
    found = await store.find_key("a" * 64, NOW)
    assert found == key(models=("gpt-4o",), rpm=5)
    assert [k.id for k in await store.list_keys("acme")] == ["key_a"]
    assert [k.id for k in await store.list_keys(None)] == ["key_a", "key_b"]
    await store.touch_keys({"key_a": NOW + 5})
    assert (await store.get_key("key_a")).last_used_ms == NOW + 5  # type: ignore[union-attr]
    rotated = await store.rotate_key("key_a", "c" * 64, "cp-newer", NOW + 60_000)
    assert rotated is not None and rotated.prefix == "cp-newer"
    assert (await store.find_key("c" * 64, NOW)).id == "key_a"  # type: ignore[union-attr]
    assert await store.find_key("a" * 64, NOW) is not None  # old digest, within grace
    assert await store.revoke_key("key_a") is True
    assert await store.find_key("c" * 64, NOW) is None
    assert await store.find_key("a" * 64, NOW) is None
    assert await store.revoke_key("key_a") is False
    assert await store.rotate_key("nope", "d" * 64, "x", NOW) is None


async def test_customers_and_deleting_one_revokes_its_keys(store: AnyStore) -> None:
    first = await store.put_customer(Customer("acme", "Acme", {"plan": "gold"}, 10, None, 1, 1))
    again = await store.put_customer(Customer("acme", "ACME", {}, None, 500, 9, 9))
    assert first.created_ms == again.created_ms == 1 and again.tpm == 500
    assert await store.list_customers() == [again]
    await store.create_key(key(), "a" * 64)
    assert await store.delete_customer("acme") is True
    assert await store.get_customer("acme") is None
    assert await store.find_key("a" * 64, NOW) is None
    assert await store.delete_customer("acme") is False


async def test_rate_limiter_is_all_or_nothing(store: AnyStore) -> None:
    limiter = store.rate_limiter()
    rpm, tpm = Bucket("key:k1", "requests", 3), Bucket("customer:c1", "tokens", 100)
    assert (await limiter.take([rpm, tpm], [1, 60])).allowed
    assert not (await limiter.take([rpm, tpm], [1, 60])).allowed  # tokens refuse …
    await limiter.adjust([tpm], [-60])
    assert (await limiter.take([rpm, tpm], [1, 60])).allowed  # … and took no request
    assert (await limiter.take([rpm], [1])).allowed
    assert not (await limiter.take([rpm], [1])).allowed


async def test_iter_usage_pages_through_a_range_in_time_order(store: AnyStore) -> None:
    base = time.time_ns() // 1_000_000 - 60_000
    records = [make_record(ts_ms=base + i * 1000, customer=("a", "b")[i % 2]) for i in range(25)]
    for record in records:
        await store.record_usage(record)
    got = [r async for r in store.iter_usage(
        customer=None, from_ms=base + 2000, to_ms=base + 20_000, page_size=4
    )]  # fmt: skip
    assert sorted(r.request_id for r in got) == sorted(r.request_id for r in records[2:20])
    only_a = [r async for r in store.iter_usage(customer="a", from_ms=base, to_ms=base + 10**9)]
    assert [r.request_id for r in only_a] == [r.request_id for r in records[::2]]


async def test_iter_usage_finds_records_written_long_after_they_happened(
    store: AnyStore,
) -> None:
    # A record replayed from the journal after a long store outage, or backfilled: its
    # ts_ms is days before the time it reaches the store.
    old = time.time_ns() // 1_000_000 - 3 * 86_400_000
    late = make_record(ts_ms=old, customer="late")
    await store.record_usage(late)
    await store.record_usage(make_record(ts_ms=old + 86_400_000, customer="late"))
    window = [r async for r in store.iter_usage(customer="late", from_ms=old, to_ms=old + 1)]
    assert [r.request_id for r in window] == [late.request_id]
    everyone = [r async for r in store.iter_usage(customer=None, from_ms=old - 1, to_ms=old + 1)]
    assert late.request_id in [r.request_id for r in everyone]
