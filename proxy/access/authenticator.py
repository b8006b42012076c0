"""Who is calling: config keys first (in memory), then issued keys (store, cached briefly).

An unknown key that does not look like an issued one ("cp-...") is refused without asking
the store, so a proxy that issues no keys pays nothing for this. Issued-key lookups are
cached for `ttl_s` (found or not) and dropped at once when a change is announced; last-used
times are collected here and written to the store in batches, never once per request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping

from proxy.access.auth import KeyIndex, Principal, presented_key
from proxy.access.keys import ISSUED_KEY_PREFIX, IssuedKey, secret_sha256
from proxy.errors import AuthenticationError
from proxy.store.base import Store

__all__ = ["Authenticator", "principal_of"]

_MAX_CACHED = 10_000


def principal_of(key: IssuedKey) -> Principal:
    models = None if key.models is None else frozenset(key.models)
    return Principal(
        key.id,
        key.customer,
        key.trusted,
        models=models,
        rpm=key.rpm,
        tpm=key.tpm,
        max_in_flight=key.max_in_flight,
    )


class Authenticator:
    def __init__(
        self,
        index: KeyIndex,
        store: Store,
        *,
        ttl_s: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
        now_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        self._index = index
        self._store = store
        self._ttl_s = ttl_s
        self._monotonic = monotonic
        self._now_ms = now_ms
        self._cache: dict[str, tuple[float, IssuedKey | None]] = {}
        self._inflight: dict[str, asyncio.Future[IssuedKey | None]] = {}
        self._generation = 0  # bumped by invalidate(): lookups begun before do not cache
        self._last_used: dict[str, int] = {}
        self.store_lookups = 0

    async def authenticate(
        self, headers: Mapping[str, str], index: KeyIndex | None = None
    ) -> Principal:
        """`index`: the config keys of the snapshot serving the request (hot reload)."""
        secret = presented_key(headers)
        principal = (index or self._index).lookup(secret)
        if principal is not None:
            return principal
        if not secret.startswith(ISSUED_KEY_PREFIX):
            raise AuthenticationError("Invalid API key.")
        key = await self._issued(secret_sha256(secret))
        if key is None:
            raise AuthenticationError("Invalid API key.")
        now_ms = self._now_ms()
        if not key.live(now_ms):
            raise AuthenticationError("This API key has expired.", code="expired_api_key")
        self._last_used[key.id] = now_ms
        return principal_of(key)

    async def _issued(self, sha256: str) -> IssuedKey | None:
        hit = self._cache.get(sha256)
        if hit is not None and hit[0] > self._monotonic():
            return hit[1]
        pending = self._inflight.get(sha256)
        if pending is not None:  # many requests with one new key: one store read
            return await asyncio.shield(pending)
        future: asyncio.Future[IssuedKey | None] = asyncio.get_running_loop().create_future()
        self._inflight[sha256] = future
        generation = self._generation
        try:
            self.store_lookups += 1
            key = await self._store.find_key(sha256, self._now_ms())
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody logs it twice
            raise
        finally:
            del self._inflight[sha256]
        if generation == self._generation:
            if len(self._cache) >= _MAX_CACHED:
                self._cache.clear()
            self._cache[sha256] = (self._monotonic() + self._ttl_s, key)
        future.set_result(key)
        return key

    def invalidate(self) -> None:
        self._generation += 1
        self._cache.clear()

    def take_last_used(self) -> dict[str, int]:
        taken, self._last_used = self._last_used, {}
        return taken
