"""The circuit breaker's state machine, driven by a table of events. Pure."""

from __future__ import annotations

import pytest

from proxy.routing.breaker import Breaker

# (event, time) → (state after, allows after)
SCRIPT = [
    ("failure", 0.0, "closed", True),
    ("failure", 1.0, "closed", True),
    ("success", 2.0, "closed", True),  # a success resets the count
    ("failure", 3.0, "closed", True),
    ("failure", 4.0, "closed", True),
    ("failure", 5.0, "open", False),  # third in a row: open, for 10 s
    ("check", 14.9, "open", False),
    ("check", 15.0, "half_open", True),  # cool-down over: one probe may go
    ("acquire", 15.0, "half_open", False),  # the probe is out: nobody else
    ("failure", 15.5, "open", False),  # the probe failed: open again, a new cool-down
    ("check", 25.4, "open", False),
    ("acquire", 25.5, "half_open", False),
    ("release", 26.0, "half_open", True),  # the probe was abandoned: the slot is free
    ("acquire", 26.0, "half_open", False),
    ("success", 26.5, "closed", True),  # the probe succeeded: closed
    ("failure", 27.0, "closed", True),
]


def test_breaker_script() -> None:
    breaker = Breaker(failure_threshold=3, cooldown_s=10.0)
    for event, now, state, allows in SCRIPT:
        if event == "failure":
            breaker.failure(now)
        elif event == "success":
            breaker.success()
        elif event == "acquire":
            assert breaker.acquire(now)
        elif event == "release":
            breaker.release()
        assert (breaker.state(now), breaker.allows(now)) == (state, allows), (event, now)
    assert breaker.opens == 2


def test_a_closed_breaker_never_refuses() -> None:
    breaker = Breaker(failure_threshold=1, cooldown_s=1.0)
    assert all(breaker.acquire(float(t)) for t in range(100))
    assert breaker.probing is False


@pytest.mark.parametrize(("now", "remaining"), [(0.0, 2.0), (1.5, 0.5), (2.0, 0.0), (9.0, 0.0)])
def test_remaining_cooldown(now: float, remaining: float) -> None:
    breaker = Breaker(failure_threshold=1, cooldown_s=2.0)
    assert breaker.remaining_s(now) == 0.0
    breaker.failure(0.0)
    assert breaker.remaining_s(now) == remaining
