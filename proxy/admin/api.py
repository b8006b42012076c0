"""Every admin API module's routes, registered through the documented route table."""

from __future__ import annotations

from aiohttp import web

from proxy.admin.budgets import budget_routes
from proxy.admin.customers import customer_routes
from proxy.admin.keys import key_routes
from proxy.admin.openapi import openapi_routes
from proxy.admin.prices import price_routes
from proxy.admin.providers import provider_routes
from proxy.admin.reconcile import reconcile_routes
from proxy.admin.routes import add_admin_route_table
from proxy.admin.spend import spend_routes
from proxy.admin.usage import usage_routes
from proxy.listeners import admin_listener_guard
from proxy.state import STATE

__all__ = ["add_admin_api"]


def add_admin_api(app: web.Application) -> None:
    admin_port = app[STATE].config.admin.port
    if admin_port is not None:
        app.middlewares.append(admin_listener_guard(admin_port))
    for routes in (
        spend_routes(),
        provider_routes(),
        budget_routes(),
        key_routes(),
        customer_routes(),
        usage_routes(),
        price_routes(),
        reconcile_routes(),
        openapi_routes(),
    ):
        add_admin_route_table(app, routes)
