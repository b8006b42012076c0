"""A running proxy whose config file a test rewrites and reloads, as an operator would."""

from __future__ import annotations

import asyncio
import copy
import signal
from collections.abc import Callable

import aiohttp

from tests.support.fleet import ADMIN, admin_get, rewrite_config
from tests.support.procs import ServerProcess

__all__ = ["Reloadable"]


class Reloadable:
    def __init__(self, proxy: ServerProcess, config: dict) -> None:
        self.proxy = proxy
        self.config = config  # as last written

    def write(self, change: Callable[[dict], None]) -> None:
        """Change the config file (the server section, filled in at start, is kept)."""
        change(self.config)
        rewrite_config(self.proxy, lambda data: data.update(copy.deepcopy(self.config)))

    async def generation(self, http: aiohttp.ClientSession) -> int:
        return (await admin_get(http, self.proxy, "/admin/v1/providers"))["generation"]

    async def post_reload(self, http: aiohttp.ClientSession) -> tuple[int, dict]:
        async with http.post(self.proxy.url + "/admin/v1/reload", headers=ADMIN) as resp:
            return resp.status, await resp.json()

    async def sighup(self, http: aiohttp.ClientSession, expect_change: bool = True) -> dict:
        before = await admin_get(http, self.proxy, "/admin/v1/providers")
        assert self.proxy.process is not None
        self.proxy.process.send_signal(signal.SIGHUP)
        return await self.wait_for_reload(http, before, expect_change)

    async def wait_for_reload(
        self, http: aiohttp.ClientSession, before: dict, expect_change: bool = True
    ) -> dict:
        """The providers report once the reload it waits for happened (or was rejected)."""
        while True:
            now = await admin_get(http, self.proxy, "/admin/v1/providers")
            if expect_change and now["generation"] > before["generation"]:
                return now
            if not expect_change and now["reload"]["failed"] > before["reload"]["failed"]:
                return now
            await asyncio.sleep(0.01)
