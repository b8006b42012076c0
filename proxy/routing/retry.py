"""When to try again, and where: retryable outcomes, backoff with jitter, Retry-After. Pure.

A request's attempts walk its ordered targets round-robin. A target not tried yet is tried
at once; a target tried before waits its backoff (or its Retry-After, if longer) counted
from its last failure, so time spent on other targets counts toward the wait.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime

__all__ = [
    "Failure",
    "NextAttempt",
    "RetryPolicy",
    "backoff_s",
    "is_retryable_status",
    "next_attempt",
    "retry_after_s",
]


def is_retryable_status(status: int) -> bool:
    """429 (rate limited) and 5xx may succeed elsewhere or later; other answers are final."""
    return status == 429 or 500 <= status <= 599


def retry_after_s(headers: Mapping[str, str], now: datetime) -> float | None:
    """Seconds the upstream asks us to wait: `retry-after-ms` (OpenAI, Azure) or
    `Retry-After` as seconds or an HTTP date. None when absent or unreadable."""
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            value = float(millis)
        except ValueError:
            value = -1.0
        if value >= 0 and value == value:  # NaN is unreadable too
            return value / 1000
    text = headers.get("retry-after")
    if text is None:
        return None
    text = text.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int  # 1 + retries
    backoff_base_s: float
    backoff_max_s: float
    deadline: float | None  # monotonic time by which the first byte must be out


@dataclass(frozen=True, slots=True)
class Failure:
    """A retryable failure of one attempt on the target at `index` of the request's order."""

    index: int
    at: float  # monotonic time it failed
    retry_after_s: float | None = None


@dataclass(frozen=True, slots=True)
class NextAttempt:
    index: int
    wait_s: float


def backoff_s(previous_tries: int, base_s: float, max_s: float, u: float) -> float:
    """Full jitter: uniform in [0, min(max, base * 2**(tries - 1))]; u is uniform in [0, 1)."""
    if previous_tries <= 0:
        return 0.0
    ceiling: float = min(max_s, base_s * 2 ** min(previous_tries - 1, 32))
    return u * ceiling


def next_attempt(
    targets: int,
    failures: Sequence[Failure],
    policy: RetryPolicy,
    now: float,
    u: float,
    skip: frozenset[int] = frozenset(),
) -> NextAttempt | None:
    """The next target to try and how long to wait first, or None: give up.

    `skip` holds targets that must not be tried (their breaker is open). A target whose
    wait would pass the deadline, or whose Retry-After exceeds `backoff_max_s`, is passed
    over for this attempt.
    """
    if len(failures) >= policy.max_attempts or targets <= 0:
        return None
    start = len(failures) % targets
    for offset in range(targets):
        index = (start + offset) % targets
        if index in skip:
            continue
        mine = [f for f in failures if f.index == index]
        if not mine:
            wait = 0.0
        else:
            last = mine[-1]
            delay = backoff_s(len(mine), policy.backoff_base_s, policy.backoff_max_s, u)
            if last.retry_after_s is not None:
                if last.retry_after_s > policy.backoff_max_s:
                    continue  # longer than we hold a client: its 429 goes back with the header
                delay = max(delay, last.retry_after_s)
            wait = max(0.0, last.at + delay - now)
        if policy.deadline is not None and now + wait >= policy.deadline:
            continue
        return NextAttempt(index, wait)
    return None
