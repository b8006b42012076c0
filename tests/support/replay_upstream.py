"""A replay upstream: serves recorded provider responses byte for byte, on loopback.

`python -m tests.support.replay_upstream --port N`. Every POST is answered with the
recording its `x-replay` header names ("<provider>/<case>" under
tests/fixtures/recordings/openai, "anthropic/<case>" under .../anthropic): the recorded
status, content type, body bytes and, for Anthropic, its `request-id`. A
stream is written one event at a time, as a provider sends it. The request is ignored
(the proxy may add `stream_options`), but kept: `GET /_replay/requests` lists the last
bodies received, so a test can see exactly what the proxy sent upstream.

Without `x-replay`, the answer is built from `x-replay-status`, `x-replay-content-type`
and `x-replay-body` (base64): for the cases no recording shows (an empty error body).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import re
import sys
from collections import deque
from collections.abc import Mapping
from pathlib import Path

from aiohttp import web

from tests.support.procs import ServerProcess, free_port
from tests.support.recordings import recording

__all__ = ["create_app", "replay_proxy_config", "start_replay_upstream"]

_EVENT_END = re.compile(rb"\r\n\r\n|\n\n|\r\r")
RECEIVED = web.AppKey("received", deque)


def _events(body: bytes) -> list[bytes]:
    pieces, start = [], 0
    for match in _EVENT_END.finditer(body):
        pieces.append(body[start : match.end()])
        start = match.end()
    if start < len(body):
        pieces.append(body[start:])
    return pieces


async def _answer(request: web.Request) -> web.StreamResponse:
    request.app[RECEIVED].append(await request.read())
    name = request.headers.get("x-replay")
    if name is None:
        status = int(request.headers.get("x-replay-status", "200"))
        body = base64.b64decode(request.headers.get("x-replay-body", ""))
        content_type = request.headers.get("x-replay-content-type", "application/json")
        return web.Response(status=status, body=body, headers={"Content-Type": content_type})
    item = recording(name)
    headers = {"Content-Type": item.content_type}
    upstream_id = (item.meta.get("response_headers") or {}).get("request-id")
    if upstream_id:  # Anthropic's request id, where the recording kept it
        headers["request-id"] = upstream_id
    if not item.stream:
        return web.Response(status=item.status, body=item.body, headers=headers)
    response = web.StreamResponse(status=item.status, headers=headers)
    await response.prepare(request)
    for event in _events(item.body):
        await response.write(event)
        await asyncio.sleep(0)  # let each event leave on its own
    await response.write_eof()
    return response


async def _received(request: web.Request) -> web.Response:
    bodies = [base64.b64encode(body).decode() for body in request.app[RECEIVED]]
    return web.json_response(bodies)


async def _models(_: web.Request) -> web.Response:
    return web.json_response({"object": "list", "data": []})


def create_app() -> web.Application:
    app = web.Application()
    app[RECEIVED] = deque(maxlen=100)
    app.router.add_get("/v1/models", _models)
    app.router.add_get("/_replay/requests", _received)
    app.router.add_post("/{path:.*}", _answer)
    return app


def start_replay_upstream() -> ServerProcess:
    """This module as a process of its own, ready to answer."""
    port = free_port()
    return ServerProcess(
        ["--port", str(port)],
        port=port,
        health_path="/v1/models",
        env={k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")},
        program=(sys.executable, "-m", "tests.support.replay_upstream"),
        name="replay-upstream",
    ).start()


def replay_proxy_config(
    replay_url: str,
    directory: Path,
    routes: Mapping[str, str],
    prices: Mapping[str, str] | None = None,
) -> dict:
    """A proxy in front of the replay upstream: one route per `routes` item (route name →
    upstream model, no retries: one answer, one record), each priced at `prices`
    ({"input": ..., "output": ...}) when given; one key, ACME's."""
    config: dict = {
        "store": {"backend": "sqlite", "sqlite_path": str(directory / "usage.db")},
        "admin": {"token": "${T_ADMIN_TOKEN}"},
        "providers": {
            "replay": {
                "base_url": replay_url + "/v1",
                "api_key": "${T_UPSTREAM_KEY}",
                "forward_headers": ["x-replay", "x-replay-*"],
            }
        },
        "models": {
            name: {"targets": [{"provider": "replay", "model": model}], "retries": 0}
            for name, model in routes.items()
        },
        "keys": [{"key": "${T_ACME_KEY}", "customer": "acme"}],
    }
    if prices is not None:
        config["prices"] = {f"replay/{model}": dict(prices) for model in routes.values()}
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    web.run_app(create_app(), host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
