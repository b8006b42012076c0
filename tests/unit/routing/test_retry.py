"""Retry decisions: which outcomes are retried, backoff with jitter, Retry-After. Pure."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from proxy.routing.retry import (
    Failure,
    NextAttempt,
    RetryPolicy,
    backoff_s,
    is_retryable_status,
    next_attempt,
    retry_after_s,
)

NOW = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(200, False), (400, False), (401, False), (404, False), (408, False), (429, True),
     (500, True), (502, True), (503, True), (504, True), (529, True)],
)  # fmt: skip
def test_retryable_statuses(status: int, retryable: bool) -> None:
    assert is_retryable_status(status) is retryable


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"retry-after": "3"}, 3.0),
        ({"retry-after": " 0 "}, 0.0),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),  # the precise one wins
        ({"retry-after-ms": "nan", "retry-after": "9"}, 9.0),
        ({"retry-after-ms": "-5", "retry-after": "9"}, 9.0),
        ({"retry-after": "Sat, 28 Nov 2026 12:00:07 GMT"}, 7.0),
        ({"retry-after": "Sat, 28 Nov 2026 11:00:00 GMT"}, 0.0),  # in the past: now
        ({"retry-after": "soon"}, None),
        ({"retry-after": "-1"}, None),
    ],
)
def test_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert retry_after_s(headers, NOW) == expected


@pytest.mark.parametrize(
    ("tries", "u", "expected"),
    [(0, 0.9, 0.0), (1, 1.0, 0.25), (1, 0.5, 0.125), (2, 1.0, 0.5), (3, 1.0, 1.0),
     (10, 1.0, 8.0), (10, 0.0, 0.0), (1000, 1.0, 8.0)],
)  # fmt: skip
def test_backoff_is_full_jitter_over_a_capped_exponential(
    tries: int, u: float, expected: float
) -> None:
    assert backoff_s(tries, 0.25, 8.0, u) == expected


POLICY = RetryPolicy(max_attempts=3, backoff_base_s=1.0, backoff_max_s=8.0, deadline=None)


@pytest.mark.parametrize(
    ("targets", "failures", "policy", "now", "skip", "expected"),
    [
        # Fallback over two targets: first, second, then the first again after its backoff
        # (u=1: the full 1 s), counted from its failure at t=0.
        (2, [], POLICY, 0.0, (), NextAttempt(0, 0.0)),
        (2, [Failure(0, 0.0)], POLICY, 0.1, (), NextAttempt(1, 0.0)),
        (2, [Failure(0, 0.0), Failure(1, 0.3)], POLICY, 0.4, (), NextAttempt(0, 0.6)),
        (2, [Failure(0, 0.0), Failure(1, 0.3)], POLICY, 2.0, (), NextAttempt(0, 0.0)),
        # The attempt budget is spent.
        (2, [Failure(0, 0.0), Failure(1, 0.1), Failure(0, 1.2)], POLICY, 1.3, (), None),
        # One target: it is retried after backoff, then after a doubled one.
        (1, [Failure(0, 0.0)], POLICY, 0.0, (), NextAttempt(0, 1.0)),
        (1, [Failure(0, 0.0), Failure(0, 1.0)], POLICY, 1.0, (), NextAttempt(0, 2.0)),
        # Retry-After longer than the backoff is honoured; longer than backoff_max_s, the
        # target is passed over (the client gets the 429 with the header).
        (1, [Failure(0, 0.0, 5.0)], POLICY, 0.0, (), NextAttempt(0, 5.0)),
        (1, [Failure(0, 0.0, 9.0)], POLICY, 0.0, (), None),
        (2, [Failure(0, 0.0, 9.0), Failure(1, 0.5)], POLICY, 1.0, (), NextAttempt(1, 0.5)),
        # Retry-After concerns the target that sent it: another target goes at once.
        (2, [Failure(0, 0.0, 5.0)], POLICY, 0.0, (), NextAttempt(1, 0.0)),
        # A skipped target (breaker open) is not tried.
        (2, [], POLICY, 0.0, (0,), NextAttempt(1, 0.0)),
        (2, [Failure(1, 0.0)], POLICY, 0.0, (0,), NextAttempt(1, 1.0)),
        (2, [], POLICY, 0.0, (0, 1), None),
        # The deadline: no wait may reach past it.
        (1, [Failure(0, 0.0)], RetryPolicy(3, 1.0, 8.0, deadline=0.9), 0.0, (), None),
        (
            1,
            [Failure(0, 0.0)],
            RetryPolicy(3, 1.0, 8.0, deadline=1.1),
            0.0,
            (),
            NextAttempt(0, 1.0),
        ),
        (2, [], RetryPolicy(3, 1.0, 8.0, deadline=5.0), 5.0, (), None),
        # No retries configured.
        (2, [Failure(0, 0.0)], RetryPolicy(1, 1.0, 8.0, None), 0.0, (), None),
    ],
)
def test_next_attempt(
    targets: int,
    failures: list[Failure],
    policy: RetryPolicy,
    now: float,
    skip: tuple[int, ...],
    expected: NextAttempt | None,
) -> None:
    assert next_attempt(targets, failures, policy, now, 1.0, frozenset(skip)) == expected
