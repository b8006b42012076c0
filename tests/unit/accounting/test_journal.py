"""The local journal, and the recorder's use of it, in process against fake stores."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from proxy.accounting.journal import Journal, JournalFullError
from proxy.accounting.recorder import RecorderPolicy, UsageRecorder
from proxy.accounting.records import UsageRecord
from proxy.errors import StoreUnavailableError
from proxy.store.guard import GuardedStore
from tests.support.records import make_record


class FakeStore:
    """A store in a dict, idempotent by request id, that can be taken down or slowed."""

    unavailable_errors = (ConnectionError,)

    def __init__(self) -> None:
        self.records: dict[str, UsageRecord] = {}
        self.applied = 0
        self.down = False
        self.delay = 0.0
        self.fail_after: int | None = None  # go down after this many more writes

    async def open(self) -> None:
        self._check()

    async def close(self) -> None:
        pass

    async def ping(self) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)
        self._check()

    async def record_usage(self, record: UsageRecord) -> bool:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail_after is not None:
            if self.fail_after == 0:
                self.down = True
            self.fail_after -= 1
        self._check()
        self.applied += 1
        return self.records.setdefault(record.request_id, record) is record

    def _check(self) -> None:
        if self.down:
            raise ConnectionError("store down")


async def open_journal(directory: Path, max_bytes: int = 1 << 20) -> Journal:
    journal = Journal(directory, max_bytes=max_bytes)
    await journal.open()
    return journal


async def test_appended_records_survive_reopening_and_replay_once(tmp_path: Path) -> None:
    journal = await open_journal(tmp_path)
    records = [make_record(cost_nusd=i) for i in range(100)]
    await asyncio.gather(*(journal.append(r) for r in records))
    assert journal.pending == 100
    await journal.close()

    journal = await open_journal(tmp_path)
    assert journal.pending == 100
    store = FakeStore()
    assert await journal.replay(store.record_usage) == 100
    assert journal.pending == 0
    assert set(store.records) == {r.request_id for r in records}
    assert store.records[records[7].request_id] == records[7]
    assert not list(tmp_path.glob("*.jsonl"))
    await journal.close()


async def test_an_interrupted_replay_keeps_the_file_and_the_retry_counts_nothing_twice(
    tmp_path: Path,
) -> None:
    journal = await open_journal(tmp_path)
    records = [make_record(cost_nusd=i) for i in range(200)]
    for record in records:
        await journal.append(record)
    store = FakeStore()
    store.fail_after = 130
    with pytest.raises(ConnectionError):
        await journal.replay(store.record_usage)
    assert journal.pending == 200  # the file is replayed whole next time
    store.down, store.fail_after = False, None

    await journal.close()  # ... even by the next process
    journal = await open_journal(tmp_path)
    assert await journal.replay(store.record_usage) == 200
    assert len(store.records) == 200 and journal.pending == 0
    await journal.close()


async def test_records_appended_during_a_replay_are_kept(tmp_path: Path) -> None:
    journal = await open_journal(tmp_path)
    for i in range(10):
        await journal.append(make_record(cost_nusd=i))
    store = FakeStore()
    late = make_record(cost_nusd=99)

    async def apply(record: UsageRecord) -> bool:
        if record.cost_nusd == 0:
            await journal.append(late)
        return await store.record_usage(record)

    assert await journal.replay(apply) == 10
    assert journal.pending == 1
    assert await journal.replay(store.record_usage) == 1
    assert late.request_id in store.records
    await journal.close()


async def test_a_torn_last_line_is_skipped(tmp_path: Path) -> None:
    journal = await open_journal(tmp_path)
    kept = make_record()
    await journal.append(kept)
    await journal.close()
    with (tmp_path / "active.jsonl").open("ab") as file:
        file.write(b'{"request_id": "req-torn", "ts_')  # a crash mid-write

    journal = await open_journal(tmp_path)
    assert journal.pending == 1
    store = FakeStore()
    assert await journal.replay(store.record_usage) == 1
    assert list(store.records) == [kept.request_id]
    await journal.close()


async def test_the_size_limit_is_a_clear_error(tmp_path: Path) -> None:
    journal = await open_journal(tmp_path, max_bytes=2000)
    with pytest.raises(JournalFullError, match=r"store\.journal_max_bytes"):
        for _ in range(100):
            await journal.append(make_record())
    assert 0 < journal.pending < 100
    await journal.close()


async def test_two_processes_cannot_share_a_journal(tmp_path: Path) -> None:
    journal = await open_journal(tmp_path)
    other = Journal(tmp_path, max_bytes=1000)
    with pytest.raises(RuntimeError, match="in use by another process"):
        await other.open()
    await journal.close()


POLICY = RecorderPolicy(reconnect_min_s=0.01, reconnect_max_s=0.05, health_interval_s=0.05)


async def start_recorder(
    tmp_path: Path, store: FakeStore, policy: RecorderPolicy = POLICY
) -> UsageRecorder:
    recorder = UsageRecorder(
        GuardedStore(store, timeout=0.2), Journal(tmp_path, max_bytes=1 << 20), policy
    )
    await recorder.start()
    return recorder


async def until(predicate, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "not reached in time"
        await asyncio.sleep(0.01)


async def test_a_slow_store_is_treated_as_down_within_the_deadline(tmp_path: Path) -> None:
    store = FakeStore()
    recorder = await start_recorder(tmp_path, store)
    store.delay = 30.0  # hangs, as a stopped Redis does
    started = time.monotonic()
    recorder.submit(make_record())
    await recorder.drain()
    assert time.monotonic() - started < 1.0
    assert not recorder.store_available
    assert recorder.journal_pending_records == 1

    store.delay = 0.0
    await until(lambda: recorder.journal_pending_records == 0)
    assert recorder.store_available and len(store.records) == 1
    await recorder.close()


async def test_every_record_ends_in_the_store_exactly_once_across_an_outage(
    tmp_path: Path,
) -> None:
    store = FakeStore()
    recorder = await start_recorder(tmp_path, store)
    records = [make_record(cost_nusd=i) for i in range(300)]
    for i, record in enumerate(records):
        if i == 100:
            store.down = True
        if i == 200:
            store.down = False
        recorder.submit(record)
        await asyncio.sleep(0)
    await recorder.drain()
    await until(lambda: recorder.journal_pending_records == 0 and recorder.store_available)
    assert set(store.records) == {r.request_id for r in records}
    assert recorder.lost == 0
    await recorder.close()


async def test_a_store_down_at_start_up_is_retried_and_the_journal_replayed(
    tmp_path: Path,
) -> None:
    journal = await open_journal(tmp_path)
    left = make_record()
    await journal.append(left)
    await journal.close()
    store = FakeStore()
    store.down = True
    recorder = await start_recorder(tmp_path, store)
    assert not recorder.store_available
    store.down = False
    await until(lambda: recorder.store_available and recorder.journal_pending_records == 0)
    assert list(store.records) == [left.request_id]
    await recorder.close()


async def test_fail_closed_refuses_only_while_the_store_is_down(tmp_path: Path) -> None:
    store = FakeStore()
    policy = RecorderPolicy(
        fail_closed=True, reconnect_min_s=0.01, reconnect_max_s=0.05, health_interval_s=0.05
    )
    recorder = await start_recorder(tmp_path, store, policy)
    recorder.admit()
    store.down = True
    await until(lambda: not recorder.store_available)  # the periodic ping noticed
    with pytest.raises(StoreUnavailableError) as caught:
        recorder.admit()
    assert caught.value.status == 503
    store.down = False
    await until(lambda: recorder.store_available)
    recorder.admit()
    await recorder.close()


async def test_a_full_journal_is_logged_and_counted_as_lost(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = FakeStore()
    store.down = True
    recorder = UsageRecorder(
        GuardedStore(store, timeout=0.2), Journal(tmp_path, max_bytes=10), POLICY
    )
    await recorder.start()
    record = make_record(customer="acme")
    recorder.submit(record)
    await recorder.drain()
    assert recorder.lost == 1
    assert f"usage record {record.request_id} of customer 'acme' LOST" in caplog.text
    await recorder.close()


async def test_an_unclassified_store_failure_still_journals_the_record(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = FakeStore()
    recorder = await start_recorder(tmp_path, store)
    store.unavailable_errors = ()  # ConnectionError is now an error the store does not know
    store.down = True
    record = make_record()
    recorder.submit(record)
    await recorder.drain()
    assert recorder.journal_pending_records == 1 and recorder.lost == 0
    assert "unexpected store failure" in caplog.text
    store.down = False
    await until(lambda: recorder.journal_pending_records == 0, timeout=5)
    assert list(store.records) == [record.request_id]
    await recorder.close()
