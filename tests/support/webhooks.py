"""A webhook receiver on loopback, for the alert tests."""

from __future__ import annotations

import hashlib
import hmac
from collections import Counter

import orjson
from aiohttp import web

from tests.support.procs import free_port

__all__ = ["SECRET", "Receiver"]

SECRET = "whsec-test-0123456789"


class Receiver:
    """A webhook endpoint on loopback that fails the first `fail_first` attempts of every
    delivery, and records the ones it accepts."""

    def __init__(self, fail_first: int) -> None:
        self.fail_first = fail_first
        self.attempts: Counter[str] = Counter()
        self.accepted: list[dict] = []
        self.bad_signatures = 0
        self.port = free_port()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(request.headers["X-CostProxy-Signature"], expected):
            self.bad_signatures += 1
            return web.Response(status=401)
        delivery = orjson.loads(body)
        self.attempts[delivery["id"]] += 1
        if self.attempts[delivery["id"]] <= self.fail_first:
            return web.Response(status=503)
        self.accepted.append(delivery)
        return web.Response(status=204)

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()
