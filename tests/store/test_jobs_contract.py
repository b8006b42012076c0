"""The Store contract for periodic jobs shared by instances: one lease holder at a time, and
the last result of each job. Runs against every store."""

from __future__ import annotations

import asyncio

from tests.support.stores import AnyStore, StoreFactory


async def test_one_caller_holds_a_lease_until_it_expires(store: AnyStore) -> None:
    claims = await asyncio.gather(*(store.claim_lease("reconcile/openai", 0.3) for _ in range(20)))
    assert claims.count(True) == 1
    assert await store.claim_lease("reconcile/openai", 0.3) is False
    assert await store.claim_lease("reconcile/anthropic", 0.3) is True  # another job
    await asyncio.sleep(0.35)
    assert await store.claim_lease("reconcile/openai", 10) is True
    assert await store.claim_lease("reconcile/openai", 10) is False


async def test_two_stores_on_the_same_data_share_a_lease(make_store: StoreFactory) -> None:
    first, second = await make_store(), await make_store()
    answers = await asyncio.gather(
        *(s.claim_lease("job/{odd}:name%", 5) for s in (first, second) for _ in range(5))
    )
    assert answers.count(True) == 1


async def test_the_last_result_of_a_job_is_kept(make_store: StoreFactory) -> None:
    store = await make_store()
    assert await store.job_result("reconcile/openai") is None
    await store.put_job_result("reconcile/openai", '{"matched": false}')
    await store.put_job_result("reconcile/openai", '{"matched": true, "é": "ü"}')
    await store.put_job_result("reconcile/other", "{}")
    again = await make_store()  # a restart, or another instance
    assert await again.job_result("reconcile/openai") == '{"matched": true, "é": "ü"}'
    assert await again.job_result("reconcile/other") == "{}"
