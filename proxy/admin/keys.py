"""Admin API: issued keys (create, list, show, revoke, rotate)."""

from __future__ import annotations

from aiohttp import web

from proxy.access import service as access_service
from proxy.access.admission import changed
from proxy.access.identifiers import normal_id
from proxy.admin.errors import error_docs
from proxy.admin.models import KeyCreate, KeyCreated, KeyList, KeyOut, KeyRotate, KeyRotated
from proxy.admin.routes import AdminRoute, Doc, Param, json_response, parse_body
from proxy.state import ProxyState

__all__ = ["key_routes"]


async def create_key(request: web.Request, state: ProxyState) -> web.Response:
    body = await parse_body(request, KeyCreate)
    created = await access_service.create_key(state.store, body)
    await changed(request.app)  # a key refused a moment ago may now be cached as unknown
    return json_response(created, status=201)


async def list_keys(request: web.Request, state: ProxyState) -> web.Response:
    customer = request.query.get("customer")
    customer = normal_id(customer) if customer else None
    return json_response(await access_service.list_keys(state.store, customer, state.config))


async def get_key(request: web.Request, state: ProxyState) -> web.Response:
    return json_response(await access_service.get_key(state.store, request.match_info["key_id"]))


async def revoke_key(request: web.Request, state: ProxyState) -> web.Response:
    await access_service.revoke_key(state.store, request.match_info["key_id"])
    await changed(request.app)
    return web.Response(status=204)


async def rotate_key(request: web.Request, state: ProxyState) -> web.Response:
    body = await parse_body(request, KeyRotate, required=False)
    rotated = await access_service.rotate_key(state.store, request.match_info["key_id"], body)
    await changed(request.app)
    return json_response(rotated)


_KEY_ID = Param("key_id", "path", "The key's id (key_...).", required=True)


def key_routes() -> list[AdminRoute]:
    return [
        AdminRoute(
            "POST",
            "/admin/v1/keys",
            create_key,
            "Issue a key for a customer; the secret is in this answer only",
            {201: Doc("The new key, with its secret", KeyCreated), **error_docs(400)},
            body=KeyCreate,
            tag="keys",
        ),
        AdminRoute(
            "GET",
            "/admin/v1/keys",
            list_keys,
            "List issued keys (never their secrets)",
            {200: Doc("The keys", KeyList), **error_docs()},
            params=(Param("customer", "query", "Only this customer's keys."),),
            tag="keys",
        ),
        AdminRoute(
            "GET",
            "/admin/v1/keys/{key_id}",
            get_key,
            "Show one issued key",
            {200: Doc("The key", KeyOut), **error_docs(404)},
            params=(_KEY_ID,),
            tag="keys",
        ),
        AdminRoute(
            "DELETE",
            "/admin/v1/keys/{key_id}",
            revoke_key,
            "Revoke a key: refused on every instance within a second",
            {204: Doc("Revoked", media_types=()), **error_docs(404)},
            params=(_KEY_ID,),
            tag="keys",
        ),
        AdminRoute(
            "POST",
            "/admin/v1/keys/{key_id}/rotate",
            rotate_key,
            "New secret for a key; the old one works for grace_s more seconds",
            {200: Doc("The new secret", KeyRotated), **error_docs(400, 404)},
            body=KeyRotate,
            body_required=False,
            params=(_KEY_ID,),
            tag="keys",
        ),
    ]
