"""Running the proxy's app until a signal, then shutting down gracefully.

On the first SIGTERM or SIGINT the proxy stops accepting connections, lets in-flight
requests and streams finish for up to `shutdown_timeout` seconds (then cancels them; their
usage is still recorded), writes every usage record to the store or the journal, and
returns 0. A second signal exits at once: whatever the journal has fsync'd is kept.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

__all__ = ["RedactProtocolErrors", "serve"]

log = logging.getLogger("costproxy")

_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class RedactProtocolErrors(logging.Filter):
    """aiohttp logs a malformed HTTP request at ERROR with a traceback that quotes the
    offending header line, which may be someone's Authorization header: keep one line
    that says what happened and quotes nothing the client sent."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            record.msg = "rejected a malformed HTTP request (%s %s)"
            record.args = (exc.code, type(exc).__name__)
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


async def serve(
    app: web.Application,
    *,
    sockets: list[socket.socket],
    shutdown_timeout: float,
    banner: str = "",
) -> int:
    """Serve `app` on already bound `sockets` (the API's, and the admin port's if set)."""
    logging.getLogger("aiohttp.server").addFilter(RedactProtocolErrors())
    # auto_decompress off: a compressed request body reaches the app as sent, which
    # refuses it or decodes it within max_body_bytes (pipeline.body_encoding); aiohttp
    # would inflate it into memory as it arrives, before any handler could say no.
    runner = web.AppRunner(
        app,
        access_log=None,
        handle_signals=False,
        shutdown_timeout=shutdown_timeout,
        auto_decompress=False,
    )
    await runner.setup()
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()

    def exit_now(signum: int) -> None:
        log.warning("second %s: exiting at once", signal.Signals(signum).name)
        logging.shutdown()
        os._exit(128 + signum)

    def begin_shutdown(signum: int) -> None:
        log.info(
            "%s: no new connections; waiting up to %gs for in-flight requests",
            signal.Signals(signum).name,
            shutdown_timeout,
        )
        for sig in _SIGNALS:
            loop.add_signal_handler(sig, exit_now, sig)
        stopping.set()

    try:
        for sig in _SIGNALS:
            loop.add_signal_handler(sig, begin_shutdown, sig)
        for sock in sockets:
            await web.SockSite(runner, sock).start()
        if banner:
            print(banner, flush=True)
        await stopping.wait()
    finally:
        # Stops the listener, closes idle keep-alive connections, waits for running
        # handlers (up to shutdown_timeout), then runs the app's cleanup: the recorder
        # drains into the store or the journal.
        await runner.cleanup()
        for sig in _SIGNALS:
            loop.remove_signal_handler(sig)
    log.info("shut down cleanly")
    return 0
