"""A provider's connection pool, shared fairly: no customer holds more than its share.

A provider gets at most `max_connections` requests at once from this instance. Without
a share, one customer's slow streams could hold all of them, and every other customer's
request to that provider would wait for a free connection until it timed out (and the
wait, counted as the provider's failure, opened its breaker). Here a customer holds at
most `max_customer_share` of the pool: past it the request is refused at once (its route
may try another target); when the pool itself is full, a request waits its turn, first
come first served, for at most the provider's connect timeout. That wait is the proxy's
own: it is never the provider's failure.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field

__all__ = ["PoolFull", "PoolShare"]


class PoolFull(Exception):
    """No connection of the pool freed up within the wait."""


@dataclass(eq=False, slots=True)
class _Waiter:
    customer: str
    ready: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class PoolShare:
    def __init__(self, capacity: int, customer_share: float) -> None:
        self.capacity = capacity
        self.per_customer = max(1, int(capacity * customer_share))
        self._held: dict[str, int] = {}
        self._total = 0
        self._waiting: deque[_Waiter] = deque()

    @property
    def in_use(self) -> int:
        return self._total

    def held(self, customer: str) -> int:
        return self._held.get(customer, 0)

    async def acquire(self, customer: str, wait_s: float) -> bool:
        """Take a connection slot for `customer`: False at once when the customer holds
        its share already; PoolFull when the pool stays full for `wait_s`."""
        if self.held(customer) >= self.per_customer:
            return False
        if self._total < self.capacity and not self._waiting:
            self._take(customer)
            return True
        waiter = _Waiter(customer)
        self._waiting.append(waiter)
        try:
            async with asyncio.timeout(wait_s):
                await waiter.ready  # release() hands its slot over: already taken for us
        except TimeoutError:
            if not _handed_over(waiter):
                raise PoolFull from None
        except BaseException:
            if _handed_over(waiter):
                self.release(customer)  # handed over as we were cancelled: give it back
            raise
        finally:
            if waiter in self._waiting:
                self._waiting.remove(waiter)
        return True

    def release(self, customer: str) -> None:
        left = self._held[customer] - 1
        if left:
            self._held[customer] = left
        else:
            del self._held[customer]
        self._total -= 1
        self._hand_over()

    def _take(self, customer: str) -> None:
        self._held[customer] = self._held.get(customer, 0) + 1
        self._total += 1

    def _hand_over(self) -> None:
        """Give free slots to the first waiters whose customer is below its share."""
        for waiter in list(self._waiting):
            if self._total >= self.capacity:
                return
            if self.held(waiter.customer) >= self.per_customer or waiter.ready.done():
                continue
            self._waiting.remove(waiter)
            self._take(waiter.customer)
            waiter.ready.set_result(None)


def _handed_over(waiter: _Waiter) -> bool:
    return waiter.ready.done() and not waiter.ready.cancelled()
