"""Alert webhooks: signed JSON POSTs with retries and backoff; nothing failed is dropped
silently (it is logged, counted and tried again later, for as long as the process lives)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import aiohttp

from proxy.config import AlertsConfig, WebhookConfig

__all__ = ["SIGNATURE_HEADER", "WebhookSender", "WebhookStats", "backoff_s", "sign"]

log = logging.getLogger("costproxy.webhooks")
SIGNATURE_HEADER = "X-CostProxy-Signature"
_MAX_BACKLOG = 10_000


def sign(secret: str, body: bytes) -> str:
    """The signature header's value: "sha256=" + hex HMAC-SHA256 of the exact body bytes."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def backoff_s(attempt: int, base_s: float, cap_s: float = 30.0) -> float:
    """Seconds to wait after failed attempt number `attempt` (0-based): base × 2^attempt."""
    return min(cap_s, base_s * 2**attempt)


@dataclass(slots=True)
class WebhookStats:
    delivered: int = 0
    failed_attempts: int = 0
    failed_deliveries: int = 0  # every attempt failed: queued for redelivery
    backlog: int = 0


@dataclass(slots=True)
class _Delivery:
    hook: WebhookConfig
    body: bytes
    delivery_id: str
    rounds: int = field(default=0)


class WebhookSender:
    """Owned by the app: `start()` at start-up, `deliver()` from anywhere on the loop,
    `close()` at shutdown (waits for deliveries in flight)."""

    def __init__(
        self,
        hooks: Sequence[WebhookConfig],
        *,
        attempts: int = 4,
        base_s: float = 0.5,
        redeliver_s: float = 60.0,
    ) -> None:
        self.hooks = list(hooks)
        self.attempts = attempts
        self.base_s = base_s
        self.redeliver_s = redeliver_s
        self.stats = WebhookStats()
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._backlog: list[_Delivery] = []
        self._redeliver: asyncio.Task[None] | None = None

    @classmethod
    def from_config(cls, alerts: AlertsConfig) -> WebhookSender:
        sender = cls(alerts.webhooks)
        sender.configure(alerts)
        return sender

    def configure(self, alerts: AlertsConfig) -> None:
        """The webhooks and retry settings of `alerts` (at start, and after a reload);
        deliveries already under way finish with the settings they started with."""
        self.hooks = list(alerts.webhooks)
        self.attempts = alerts.retry_attempts
        self.base_s = alerts.retry_base_s
        self.redeliver_s = alerts.redeliver_s

    async def start(self) -> None:
        if self._redeliver is None:
            self._redeliver = asyncio.get_running_loop().create_task(self._redeliver_forever())

    def deliver(self, body: bytes, delivery_id: str) -> None:
        for hook in self.hooks:
            self._spawn(_Delivery(hook, body, delivery_id))

    def _spawn(self, delivery: _Delivery) -> None:
        task = asyncio.get_running_loop().create_task(self._send(delivery))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, delivery: _Delivery) -> None:
        for attempt in range(self.attempts):
            if await self._attempt(delivery):
                self.stats.delivered += 1
                return
            self.stats.failed_attempts += 1
            if attempt + 1 < self.attempts:
                await asyncio.sleep(backoff_s(attempt, self.base_s))
        delivery.rounds += 1
        self.stats.failed_deliveries += 1
        log.error(
            "webhook %s: alert %s not delivered after %d attempts; will retry in %.0fs",
            delivery.hook.url,
            delivery.delivery_id,
            self.attempts,
            self.redeliver_s,
        )
        if len(self._backlog) < _MAX_BACKLOG:
            self._backlog.append(delivery)
        self.stats.backlog = len(self._backlog)

    async def _attempt(self, delivery: _Delivery) -> bool:
        if self._session is None:  # the first delivery: none may ever be configured
            self._session = aiohttp.ClientSession()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(delivery.hook.secret.get_secret_value(), delivery.body),
            "X-CostProxy-Delivery": delivery.delivery_id,
        }
        try:
            async with self._session.post(
                delivery.hook.url,
                data=delivery.body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=delivery.hook.timeout_s),
            ) as resp:
                if 200 <= resp.status < 300:
                    return True
                log.warning("webhook %s answered %d", delivery.hook.url, resp.status)
        except (TimeoutError, aiohttp.ClientError) as exc:
            log.warning("webhook %s failed: %s", delivery.hook.url, type(exc).__name__)
        return False

    async def _redeliver_forever(self) -> None:
        while True:
            await asyncio.sleep(self.redeliver_s)
            backlog, self._backlog = self._backlog, []
            self.stats.backlog = 0
            for delivery in backlog:
                self._spawn(delivery)

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self, timeout_s: float = 10.0) -> None:
        if self._redeliver is not None:
            self._redeliver.cancel()
        try:
            await asyncio.wait_for(self.drain(), timeout_s)
        except TimeoutError:
            log.error("webhooks: %d deliveries still running at shutdown", len(self._tasks))
        if self._backlog:
            log.error("webhooks: %d undelivered alerts dropped at shutdown", len(self._backlog))
        if self._session is not None:
            await self._session.close()
            self._session = None
