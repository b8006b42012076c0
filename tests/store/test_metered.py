"""MeteredStore: every call of the Store interface delegated, timed, failures counted."""

from __future__ import annotations

import inspect
from datetime import date

import pytest
from prometheus_client.parser import text_string_to_metric_families

from proxy.accounting.records import UsageRecord
from proxy.config import MetricsConfig
from proxy.observability.metrics import STORE_OPERATIONS, ProxyMetrics
from proxy.store.base import Store
from proxy.store.metered import MeteredStore
from proxy.store.sqlite import SQLiteStore


class FakeStore:
    """Answers or fails on demand; remembers what it was asked."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.fail = False

    async def _answer(self, name: str, result):
        self.calls.append(name)
        if self.fail:
            raise ConnectionError("store down")
        return result

    async def open(self) -> None:
        await self._answer("open", None)

    async def close(self) -> None:
        await self._answer("close", None)

    async def record_usage(self, record: UsageRecord) -> bool:
        return await self._answer("record_usage", True)

    async def aggregate_rows(self, *, customer, from_day, to_day, breakdown):
        return await self._answer("aggregate_rows", [])

    async def get_usage(self, request_id: str):
        return await self._answer("get_usage", None)

    async def what_if_rows(self, *, customer, from_day, to_day):
        return await self._answer("what_if_rows", [])

    async def reserve_budget(self, request_id, amount_nusd, counters, ttl_ms, now_ms=None):
        return await self._answer("reserve_budget", None)

    async def settle_budget(self, request_id, cost_nusd, counters, now_ms=None):
        return await self._answer("settle_budget", None)

    async def budget_states(self, counters, now_ms=None):
        return await self._answer("budget_states", [])

    async def claim_budget_alert(self, scope, period, pid, alert, ttl_s):
        return await self._answer("claim_budget_alert", True)

    async def budget_overrides(self):
        return await self._answer("budget_overrides", (0, {}))

    async def budget_overrides_version(self):
        return await self._answer("budget_overrides_version", 0)

    async def put_budget_override(self, scope, rules_json):
        return await self._answer("put_budget_override", None)

    async def delete_budget_override(self, scope):
        return await self._answer("delete_budget_override", False)


def _public_methods(cls: type) -> set[str]:
    return {name for name, _ in inspect.getmembers(cls, inspect.isfunction) if name[0] != "_"}


def test_metered_store_offers_every_store_method(tmp_path):
    """Every method of the Store interface is reachable through the wrapper (metered, or
    passed through to the real store), or the proxy would fail on it at run time."""
    wrapped = MeteredStore(SQLiteStore(tmp_path / "x.db"), ProxyMetrics.__new__(ProxyMetrics))
    missing = {
        name for name in _public_methods(Store) if not callable(getattr(wrapped, name, None))
    }
    assert missing == set()
    assert set(STORE_OPERATIONS) <= _public_methods(MeteredStore)


RECORD = UsageRecord("req_1", 0, "acme", "m", "openai", "m", "chat.completions", 200)
CALLS = {
    "record_usage": lambda store: store.record_usage(RECORD),
    "aggregate_rows": lambda store: store.aggregate_rows(
        customer=None, from_day=date(2025, 1, 1), to_day=date(2025, 1, 2), breakdown="base"
    ),
    "get_usage": lambda store: store.get_usage("req_1"),
    "what_if_rows": lambda store: store.what_if_rows(
        customer=None, from_day=date(2025, 1, 1), to_day=date(2025, 1, 2)
    ),
    "reserve_budget": lambda store: store.reserve_budget("req_1", 5, [], 1000),
    "settle_budget": lambda store: store.settle_budget("req_1", 5, []),
    "budget_states": lambda store: store.budget_states([]),
    "claim_budget_alert": lambda store: store.claim_budget_alert(
        "customer/acme", "monthly", "2025-01", "threshold:80", None
    ),
    "budget_overrides": lambda store: store.budget_overrides(),
    "budget_overrides_version": lambda store: store.budget_overrides_version(),
    "put_budget_override": lambda store: store.put_budget_override("customer/acme", "[]"),
    "delete_budget_override": lambda store: store.delete_budget_override("customer/acme"),
}


def _sample(metrics: ProxyMetrics, name: str, operation: str) -> float | None:
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for sample in family.samples:
            if sample.name == name and sample.labels == {"operation": operation}:
                return sample.value
    return None


async def test_calls_are_delegated_and_timed():
    inner, metrics = FakeStore(), ProxyMetrics(MetricsConfig())
    store = MeteredStore(inner, metrics)
    await store.open()
    for operation in STORE_OPERATIONS:
        await CALLS[operation](store)
    await store.close()
    assert inner.calls == ["open", *STORE_OPERATIONS, "close"]
    for operation in STORE_OPERATIONS:
        assert _sample(metrics, "costproxy_store_latency_seconds_count", operation) == 1
        assert _sample(metrics, "costproxy_store_errors_total", operation) == 0


@pytest.mark.parametrize("operation", STORE_OPERATIONS)
async def test_a_failing_call_is_counted_and_raised(operation: str):
    inner, metrics = FakeStore(), ProxyMetrics(MetricsConfig())
    inner.fail = True
    with pytest.raises(ConnectionError):
        await CALLS[operation](MeteredStore(inner, metrics))
    assert _sample(metrics, "costproxy_store_errors_total", operation) == 1
    assert _sample(metrics, "costproxy_store_latency_seconds_count", operation) == 1
