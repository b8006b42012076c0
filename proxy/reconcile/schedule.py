"""Reconciliation over time: every entry of the config's `reconcile:` runs every `every`,
with the report fetched, on one instance at a time.

Which instance runs it: any whose check finds the last run (kept in the store) older than
`every` and wins the job's lease (held for the run's `timeout_s`, so runs are at least that
far apart). Every instance reads the stored outcome on each check, so all of them serve it
(GET /admin/v1/reconcile/{provider}) and export it (costproxy_reconcile_* metrics).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import aiohttp
from aiohttp import web

from proxy.config import ConfigError, ReconcileConfig
from proxy.errors import StoreUnavailableError
from proxy.observability.reconcile_metrics import ReconcileFigures
from proxy.reconcile.fetch import ReportFetchError
from proxy.reconcile.report import ReportFormatError
from proxy.reconcile.run import (
    ReconcileSetupError,
    fetch_provider_report,
    report_config,
    run_reconcile,
    tolerance_of,
)
from proxy.reconcile.status import ReconcileStatus, job_name
from proxy.state import ProxyState

__all__ = ["RECONCILER", "ReconcileScheduler", "reconciling"]

log = logging.getLogger("costproxy.reconcile")

# What makes one attempt fail (logged, retried after `retry_s`), as opposed to a bug.
_FAILURES = (
    ReportFetchError,
    ReportFormatError,
    ConfigError,
    ReconcileSetupError,
    StoreUnavailableError,
    TimeoutError,
)


def _check_s(entries: list[ReconcileConfig]) -> float:
    """How often to look: a quarter of the shortest period, within 1 s and 60 s."""
    shortest = min((e.every_s for e in entries), default=240)
    return min(60.0, max(1.0, shortest / 4))


class ReconcileScheduler:
    def __init__(
        self,
        state: ProxyState,
        env: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._state = state
        self._env = env
        self._clock = clock
        self.statuses: dict[str, ReconcileStatus] = {}  # as last read from the store
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Check now (the `reconcile` section was reloaded), not at the next round."""
        self._wake.set()

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    async def _stored(self, provider: str) -> ReconcileStatus:
        text = await self._state.store.job_result(job_name(provider))
        return ReconcileStatus(provider) if text is None else ReconcileStatus.from_json(text)

    async def check(self, session: aiohttp.ClientSession) -> None:
        """One round: read each entry's stored outcome; run the ones that are due."""
        entries = list(self._state.config.reconcile)
        for entry in entries:
            status = await self._stored(entry.provider)
            if status.due(entry, self._now_ms()) and await self._state.store.claim_lease(
                job_name(entry.provider), entry.timeout_s
            ):
                status = await self._stored(entry.provider)  # finished elsewhere meanwhile?
                if status.due(entry, self._now_ms()):
                    status = await self._run(session, entry, status)
                    await self._state.store.put_job_result(
                        job_name(entry.provider), status.to_json()
                    )
            self.statuses[entry.provider] = status
        configured = {e.provider for e in entries}
        for provider in list(self.statuses):
            if provider not in configured:  # removed by a reload: stop exporting it
                del self.statuses[provider]

    async def _run(
        self, session: aiohttp.ClientSession, entry: ReconcileConfig, before: ReconcileStatus
    ) -> ReconcileStatus:
        state = self._state
        started = self._now_ms()
        today = datetime.fromtimestamp(started / 1000, UTC).date()
        to_day = today - timedelta(days=entry.lag_days)
        from_day = to_day - timedelta(days=entry.days - 1)
        try:
            async with asyncio.timeout(entry.timeout_s):
                config = state.config
                report_cfg = report_config(config, entry.provider)
                report = await fetch_provider_report(
                    session, report_cfg, from_day, to_day, self._env
                )
                await state.recorder.flush()  # this instance's own writes are read too
                result = await run_reconcile(
                    state.store, config, state.prices, entry.provider, report,
                    from_day, to_day, tolerance_of(entry.tolerance_pct),
                )  # fmt: skip
        except _FAILURES as exc:
            error = str(exc) or type(exc).__name__
            log.error("reconciliation of %s failed: %s", entry.provider, error)
            return replace(before, attempted_ms=started, last_error=error)
        log.info(
            "reconciliation of %s, %s .. %s: %s",
            entry.provider, from_day, to_day, "matched" if result["matched"] else "DIFFERENCES",
        )  # fmt: skip
        return ReconcileStatus(entry.provider, started, self._now_ms(), None, result)

    async def run_forever(self) -> None:
        async with aiohttp.ClientSession() as session:
            while True:
                try:
                    await self.check(session)
                except StoreUnavailableError as exc:
                    log.warning("reconciliation check skipped, the store is down: %s", exc)
                except Exception:
                    # A bug in one round must not end the schedule for good; it is logged
                    # with its traceback, and the next round tries again.
                    log.exception("reconciliation check failed")
                pause = _check_s(list(self._state.config.reconcile))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), pause)
                self._wake.clear()

    def figures(self) -> list[ReconcileFigures]:
        """Each configured reconciliation that was attempted, for the metrics."""
        rows: list[ReconcileFigures] = []
        for provider, status in sorted(self.statuses.items()):
            if status.attempted_ms is None:
                continue
            result = status.result
            cost = None if result is None else result["totals"]["difference"]["cost_usd"]
            rows.append(
                (
                    provider,
                    None if cost is None else float(cost),
                    None if result is None else bool(result["matched"]),
                    None if status.succeeded_ms is None else status.succeeded_ms / 1000,
                    status.last_error is not None,
                )
            )
        return rows


RECONCILER = web.AppKey("costproxy_reconciler", ReconcileScheduler)


async def reconciling(app: web.Application) -> AsyncIterator[None]:
    """The app's cleanup context that runs the scheduled reconciliations (registered after
    the store's, so the store is open; see app.py)."""
    task = asyncio.get_running_loop().create_task(app[RECONCILER].run_forever())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
