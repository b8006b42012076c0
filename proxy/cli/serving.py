"""Serving a config until a signal: what `serve` and `quickstart` share."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Mapping

from aiohttp import web

from proxy import mock_upstream
from proxy.app import create_app
from proxy.config import Config
from proxy.server import serve

__all__ = ["new_loop", "serve_config"]

try:
    import uvloop  # optional: ~2x faster I/O, measured in bench/
except ImportError:  # not built for every platform
    uvloop = None  # type: ignore[assignment]  # the module, or None where it is not built


def new_loop() -> asyncio.AbstractEventLoop:
    return uvloop.new_event_loop() if uvloop is not None else asyncio.new_event_loop()


def serve_config(
    config: Config,
    *,
    config_path: str | os.PathLike[str],
    sockets: list[socket.socket],
    banner: str,
    env: Mapping[str, str] | None = None,
    fake_upstream: socket.socket | None = None,
) -> int:
    """Serve `config` on bound `sockets` until SIGTERM/SIGINT; with `fake_upstream`, the
    bundled fake upstream on that socket beside it."""

    async def run() -> int:
        # The fake upstream outlives the proxy, so that streams draining at shutdown end.
        fake = None
        if fake_upstream is not None:
            fake = web.AppRunner(mock_upstream.create_app(), access_log=None)
            await fake.setup()
            await web.SockSite(fake, fake_upstream).start()
        try:
            # The app is built inside the loop that serves it.
            return await serve(
                create_app(config, config_path=config_path, env=env),
                sockets=sockets,
                shutdown_timeout=config.server.shutdown_timeout_s,
                banner=banner,
            )
        finally:
            if fake is not None:
                await fake.cleanup()

    with asyncio.Runner(loop_factory=new_loop) as runner:
        return runner.run(run())
