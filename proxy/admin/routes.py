"""The admin API's route table: each admin module lists its routes with what the OpenAPI
document needs to know about them, and `add_admin_route_table` registers both at once.

The table lives on the app (ADMIN_ROUTES), so the document and the router can never
disagree. One convention for every handler: `async (request, state) -> response`, called
only after the admin token was checked here, once, for every route of the table.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError

from proxy.access.auth import bearer_matches
from proxy.access.throttle import count_failure, refuse_blocked
from proxy.errors import AuthenticationError, BadRequestError
from proxy.pipeline.body_encoding import body_encoding
from proxy.state import STATE, ProxyState

__all__ = [
    "ADMIN_ROUTES",
    "AdminRoute",
    "Body",
    "Doc",
    "Param",
    "add_admin_route_table",
    "json_response",
    "parse_body",
    "read_plain_body",
]

Handler = Callable[[web.Request, ProxyState], Awaitable[web.StreamResponse]]
M = TypeVar("M", bound=BaseModel)


class Body(BaseModel):
    """Base of every admin request body: unknown fields are mistakes, reported as 400."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    location: Literal["query", "path"]
    description: str = ""
    schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "string"})
    required: bool = False


@dataclass(frozen=True, slots=True)
class Doc:
    """One documented response: a pydantic model for JSON, or a raw media type."""

    description: str
    model: type[BaseModel] | None = None
    media_types: tuple[str, ...] = ("application/json",)


@dataclass(frozen=True, slots=True)
class AdminRoute:
    method: str
    path: str
    handler: Handler
    summary: str
    responses: Mapping[int, Doc]
    body: type[BaseModel] | None = None
    body_required: bool = True
    params: tuple[Param, ...] = ()
    tag: str = "admin"


ADMIN_ROUTES = web.AppKey("costproxy_admin_routes", list[AdminRoute])


def _admin_state(request: web.Request) -> ProxyState:
    """The proxy's state, for a request that carries the admin token (401 otherwise; 429
    for an address that failed too often)."""
    state = request.app[STATE]
    token = state.config.admin.token
    if token is None:
        raise AuthenticationError(
            "The admin API is disabled: set admin.token in the config.", code="admin_disabled"
        )
    refuse_blocked(request, "admin")
    if not bearer_matches(request.headers, token.get_secret_value()):
        error = AuthenticationError("Invalid or missing admin token.", code="invalid_admin_token")
        count_failure(request, "admin", error)
        raise error
    return state


def _authenticated(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def endpoint(request: web.Request) -> web.StreamResponse:
        return await handler(request, _admin_state(request))

    endpoint.__name__ = handler.__name__
    return endpoint


def add_admin_route_table(app: web.Application, routes: Iterable[AdminRoute]) -> None:
    table = app.get(ADMIN_ROUTES)
    if table is None:
        table = app[ADMIN_ROUTES] = []
    for route in routes:
        app.router.add_route(route.method, route.path, _authenticated(route.handler))
        table.append(route)


async def read_plain_body(request: web.Request) -> bytes:
    """The request's body; 415 for a compressed one (the admin API takes plain bodies,
    whatever server.accept_compressed_bodies says for the client API)."""
    body_encoding(request.headers, accepted=False)
    return await request.read()


def json_response(data: object, status: int = 200) -> web.Response:
    """The one way the admin API (and /healthz) answers JSON."""
    return web.Response(status=status, body=orjson.dumps(data), content_type="application/json")


async def parse_body(request: web.Request, model: type[M], *, required: bool = True) -> M:
    """The request's JSON body as `model`; a 400 naming each problem otherwise."""
    raw = await read_plain_body(request)
    if not raw.strip() and not required:
        raw = b"{}"
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequestError(f"The body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(data, dict):
        raise BadRequestError("The body must be a JSON object.", code="invalid_json")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}"
            for e in exc.errors(include_url=False)
        )
        first = exc.errors(include_url=False)[0]["loc"]
        raise BadRequestError(
            f"Invalid request body: {problems}",
            code="invalid_request_body",
            param=".".join(str(p) for p in first) or None,
        ) from None
