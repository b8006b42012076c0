"""The admin API's OpenAPI 3.1 document, built from the app's admin route table."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from proxy import __version__
from proxy.admin.errors import error_docs
from proxy.admin.routes import ADMIN_ROUTES, AdminRoute, Doc, json_response
from proxy.state import ProxyState

__all__ = ["build_openapi", "openapi_path", "openapi_routes"]

_PATH_PARAM = re.compile(r"\{(\w+)(?::[^}]*)?\}")


def openapi_path(aiohttp_path: str) -> str:
    """`/x/{id:\\d+}` → `/x/{id}`: OpenAPI has no regex in path templates."""
    return _PATH_PARAM.sub(r"{\1}", aiohttp_path)


class _Schemas:
    def __init__(self) -> None:
        self.components: dict[str, Any] = {}

    def ref(self, model: type[BaseModel], mode: str) -> dict[str, str]:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}", mode=mode)  # type: ignore[arg-type]
        self.components.update(schema.pop("$defs", {}))
        self.components[model.__name__] = schema
        return {"$ref": f"#/components/schemas/{model.__name__}"}


def _responses(docs: dict[int, Doc], schemas: _Schemas) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for status, doc in sorted(docs.items()):
        entry: dict[str, Any] = {"description": doc.description}
        if doc.media_types:
            schema = (
                schemas.ref(doc.model, "serialization")
                if doc.model is not None
                else {"type": "object"}
                if doc.media_types == ("application/json",)
                else {"type": "string"}
            )
            entry["content"] = {media: {"schema": schema} for media in doc.media_types}
        out[str(status)] = entry
    return out


def _operation(route: AdminRoute, schemas: _Schemas) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": route.handler.__name__,
        "summary": route.summary,
        "tags": [route.tag],
        "security": [{"adminToken": []}],
        "responses": _responses(dict(route.responses), schemas),
    }
    if route.params:
        op["parameters"] = [
            {
                "name": p.name,
                "in": p.location,
                "required": p.required or p.location == "path",
                "description": p.description,
                "schema": dict(p.schema),
            }
            for p in route.params
        ]
    if route.body is not None:
        op["requestBody"] = {
            "required": route.body_required,
            "content": {"application/json": {"schema": schemas.ref(route.body, "validation")}},
        }
    return op


def build_openapi(routes: Iterable[AdminRoute]) -> dict[str, Any]:
    schemas = _Schemas()
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(openapi_path(route.path), {})[route.method.lower()] = _operation(
            route, schemas
        )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "costproxy admin API",
            "version": __version__,
            "description": "Every route needs `Authorization: Bearer <admin token>`. Errors are "
            '`{"error": {"message", "type", "param", "code"}}`.',
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(schemas.components.items())),
            "securitySchemes": {"adminToken": {"type": "http", "scheme": "bearer"}},
        },
    }


async def get_openapi(request: web.Request, state: ProxyState) -> web.Response:
    routes = request.app[ADMIN_ROUTES]
    return json_response(build_openapi(routes))


def openapi_routes() -> list[AdminRoute]:
    return [
        AdminRoute(
            "GET",
            "/admin/v1/openapi.json",
            get_openapi,
            "This document",
            {200: Doc("The OpenAPI 3.1 document"), **error_docs()},
            tag="meta",
        )
    ]
