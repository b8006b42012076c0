"""max_in_flight: counting requests in flight per scope, all or nothing."""

from __future__ import annotations

import pytest

from proxy.access.inflight import ConcurrencyLimitError, InFlight


def test_a_scope_at_its_limit_refuses_and_nothing_is_counted() -> None:
    flight = InFlight()
    limits = [("key:k", 5), ("customer:c", 2)]
    first, second = flight.enter(limits), flight.enter(limits)
    with pytest.raises(ConcurrencyLimitError) as caught:
        flight.enter(limits)
    assert caught.value.status == 429
    assert caught.value.code == "concurrency_limit_exceeded"
    assert caught.value.headers == {"Retry-After": "1"}
    assert "customer 'c'" in caught.value.message
    assert flight.count("key:k") == 2  # the refused request counted nowhere
    flight.leave(first)
    flight.enter(limits)
    flight.leave(second)
    assert flight.count("customer:c") == 1


def test_scopes_are_forgotten_when_empty() -> None:
    flight = InFlight()
    flight.leave(flight.enter([("key:k", 1)]))
    assert flight.count("key:k") == 0
    assert flight._counts == {}
