"""`GET /v1/models` and `GET /v1/models/{model}`, as OpenAI answers them: the route names
the calling key may use (a key limited to some models sees only those); any other name is
404 `model_not_found`, whether it does not exist or the key may not use it."""

from __future__ import annotations

import orjson
from aiohttp import web

from proxy.access.admission import authenticate
from proxy.access.auth import Principal
from proxy.errors import NotFoundError
from proxy.state import STATE, Snapshot

__all__ = ["add_model_routes"]


def _entries(snapshot: Snapshot, principal: Principal) -> list[dict]:
    entries = orjson.loads(snapshot.models_body)["data"]
    if principal.models is None:
        return entries
    return [entry for entry in entries if entry["id"] in principal.models]


async def list_models(request: web.Request) -> web.Response:
    snapshot = request.app[STATE].snapshot
    principal = await authenticate(request, snapshot.keys)
    if principal.models is None:  # the common case: the body built with the snapshot
        return web.Response(body=snapshot.models_body, content_type="application/json")
    body = {"object": "list", "data": _entries(snapshot, principal)}
    return web.Response(body=orjson.dumps(body), content_type="application/json")


async def retrieve_model(request: web.Request) -> web.Response:
    snapshot = request.app[STATE].snapshot
    principal = await authenticate(request, snapshot.keys)
    name = request.match_info["model"]
    for entry in _entries(snapshot, principal):
        if entry["id"] == name:
            return web.Response(body=orjson.dumps(entry), content_type="application/json")
    raise NotFoundError(
        f"The model '{name}' does not exist or you do not have access to it.",
        code="model_not_found",
        param="model",
    )


def add_model_routes(app: web.Application) -> None:
    app.router.add_get("/v1/models", list_models)
    # Model names may hold "/" (e.g. "meta-llama/Llama-3-8b"), as OpenAI-compatible
    # servers allow: the rest of the path is the name.
    app.router.add_get("/v1/models/{model:.+}", retrieve_model)
