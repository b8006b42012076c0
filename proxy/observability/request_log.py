"""The structured request log: one JSON line per request on the `costproxy.requests` logger.

A line holds who, what and how much, never what was said: no prompt or completion text,
no key (only the key's name or a short hash prefix, as `key_id`), no header values.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import TextIO

import orjson

from proxy.accounting.pricing import format_usd
from proxy.accounting.records import UsageRecord

__all__ = [
    "LOGGER_NAME",
    "RequestLog",
    "flush_request_log",
    "flushing_request_log",
    "send_request_log_to",
]

LOGGER_NAME = "costproxy.requests"
_log = logging.getLogger(LOGGER_NAME)


class RequestLog:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def _on(self) -> bool:
        # Checked before building the line: a disabled log costs nothing per request.
        return self.enabled and _log.isEnabledFor(logging.INFO)

    def routed(
        self, record: UsageRecord, overhead_s: float, upstream_errors: Sequence[str]
    ) -> None:
        if not self._on():
            return
        line = {
            "request_id": record.request_id,
            "ts_ms": record.ts_ms,
            "customer": record.customer,
            "end_user": record.end_user,
            "tags": record.tags,
            "key_id": record.key_id,
            "endpoint": record.endpoint,
            "route": record.route,
            "model": record.model,
            "provider": record.provider,
            "status": record.status,
            "input_tokens": record.input_tokens,
            "cached_input_tokens": record.cached_input_tokens,
            "output_tokens": record.output_tokens,
            "reasoning_tokens": record.reasoning_tokens,
            "usage_source": record.usage_source,
            "cost_usd": None if record.cost_nusd is None else format_usd(record.cost_nusd),
            "latency_ms": record.latency_ms,
            "ttft_ms": record.ttft_ms,
            "overhead_ms": round(overhead_s * 1000, 3),
            "attempts": record.attempts,
            "upstream_errors": upstream_errors,  # one reason per failed attempt
        }
        _emit(line)

    def rejected(
        self,
        ts_ms: int,
        endpoint: str,
        status: int,
        code: str,
        latency_s: float,
        *,
        request_id: str | None = None,
        customer: str | None = None,
        route: str | None = None,
        model: str = "none",
        provider: str = "none",
        client: str | None = None,
    ) -> None:
        """A request refused before it went upstream: before routing (nothing else known
        for sure, so nothing else logged), or by a budget (who and where known)."""
        if not self._on():
            return
        line = {
            "request_id": request_id,
            "ts_ms": ts_ms,
            "customer": customer,
            "endpoint": endpoint,
            "route": route,
            "model": model,
            "provider": provider,
            "status": status,
            "error": code,
            "latency_ms": round(latency_s * 1000, 3),
        }
        if client is not None:  # refused before it authenticated: only its address is known
            line["client"] = client
        _emit(line)


def _emit(line: dict) -> None:
    # makeRecord + handle is what `_log.info()` does, minus its search of the call stack
    # for the caller's file and line (~5 µs a request, for fields this log never shows).
    _log.handle(
        _log.makeRecord(LOGGER_NAME, logging.INFO, "", 0, orjson.dumps(line).decode(), (), None)
    )


class _BufferedLines(logging.StreamHandler):
    """Writes each line into a buffer that `flush_request_log()` empties (every 0.1 s
    while the app runs, and at exit): one write system call per batch, not per request
    (~30 µs a request when stdout is unbuffered, as in containers)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.stream.write(self.format(record) + "\n")
        except Exception:  # logging's contract: a failing handler reports, never raises
            self.handleError(record)


def send_request_log_to(stream: TextIO) -> None:
    """Write request lines to `stream` as bare JSON, one per line, instead of through the
    root handler's text format (which would prefix every line and break the JSON)."""
    # A buffered writer of our own on the same file, as stdout may be unbuffered; a stream
    # that is not a file (a StringIO) is written to as it is.
    with contextlib.suppress(AttributeError, OSError, ValueError):
        stream = open(stream.fileno(), "w", buffering=1 << 16, encoding="utf-8", closefd=False)  # noqa: SIM115
    handler = _BufferedLines(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    _log.addHandler(handler)
    _log.propagate = False


def flush_request_log() -> None:
    for handler in _log.handlers:
        handler.flush()


async def flushing_request_log(app: object) -> AsyncIterator[None]:
    """cleanup_ctx: flush the request log every 0.1 s while the app runs, and at its end."""

    async def every_tenth_of_a_second() -> None:
        while True:
            await asyncio.sleep(0.1)
            flush_request_log()

    task = asyncio.get_running_loop().create_task(every_tenth_of_a_second())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        flush_request_log()
