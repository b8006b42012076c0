"""Admin API: customers (create or replace, show, list with this month's spend, delete)."""

from __future__ import annotations

from aiohttp import web

from proxy.access import service as access_service
from proxy.access.admission import changed
from proxy.admin.errors import error_docs
from proxy.admin.models import CustomerList, CustomerOut, CustomerPut
from proxy.admin.routes import AdminRoute, Doc, Param, json_response, parse_body
from proxy.state import ProxyState

__all__ = ["customer_routes"]


async def put_customer(request: web.Request, state: ProxyState) -> web.Response:
    body = await parse_body(request, CustomerPut)
    answer = await access_service.put_customer(state.store, request.match_info["customer_id"], body)
    await changed(request.app)
    return json_response(answer)


async def get_customer(request: web.Request, state: ProxyState) -> web.Response:
    customer_id = request.match_info["customer_id"]
    return json_response(await access_service.get_customer(state.store, customer_id, state.config))


async def list_customers(request: web.Request, state: ProxyState) -> web.Response:
    await state.recorder.drain()  # this instance's own spend is included
    return json_response(await access_service.list_customers(state.store, state.config))


async def delete_customer(request: web.Request, state: ProxyState) -> web.Response:
    await access_service.delete_customer(state.store, request.match_info["customer_id"])
    await changed(request.app)
    return web.Response(status=204)


_ID = Param("customer_id", "path", "The customer's id, as keys and spend name it.", required=True)


def customer_routes() -> list[AdminRoute]:
    return [
        AdminRoute(
            "PUT",
            "/admin/v1/customers/{customer_id}",
            put_customer,
            "Create or replace a customer (name, metadata, rate limits)",
            {200: Doc("The customer", CustomerOut), **error_docs(400)},
            body=CustomerPut,
            params=(_ID,),
            tag="customers",
        ),
        AdminRoute(
            "GET",
            "/admin/v1/customers/{customer_id}",
            get_customer,
            "Show a customer and its spend this month",
            {200: Doc("The customer", CustomerOut), **error_docs(400, 404)},
            params=(_ID,),
            tag="customers",
        ),
        AdminRoute(
            "DELETE",
            "/admin/v1/customers/{customer_id}",
            delete_customer,
            "Delete a customer and revoke its issued keys (its usage stays)",
            {204: Doc("Deleted", media_types=()), **error_docs(400, 404)},
            params=(_ID,),
            tag="customers",
        ),
        AdminRoute(
            "GET",
            "/admin/v1/customers",
            list_customers,
            "List customers, each with its spend this month",
            {200: Doc("The customers", CustomerList), **error_docs()},
            tag="customers",
        ),
    ]
