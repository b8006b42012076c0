"""Admin API: the usage export, streamed from the store as CSV or JSON Lines."""

from __future__ import annotations

from aiohttp import web

from proxy.accounting.export import FORMATS, ExportQuery, export_chunks
from proxy.accounting.spend import SpendQueryError
from proxy.admin.errors import error_docs
from proxy.admin.routes import AdminRoute, Doc, Param
from proxy.errors import BadRequestError
from proxy.state import ProxyState

__all__ = ["usage_routes"]

_MEDIA_TYPES = tuple(media.partition(";")[0] for media in FORMATS.values())


async def export_usage(request: web.Request, state: ProxyState) -> web.StreamResponse:
    try:
        query = ExportQuery.parse(request.query)
    except SpendQueryError as exc:
        raise BadRequestError(str(exc), code="invalid_query") from None
    await state.recorder.drain()  # include this instance's own writes
    records = state.store.iter_usage(
        customer=query.customer, from_ms=query.from_ms, to_ms=query.to_ms
    )
    response = web.StreamResponse(
        headers={
            "Content-Type": FORMATS[query.format],
            "Content-Disposition": f'attachment; filename="{query.filename}"',
        }
    )
    response.enable_chunked_encoding()
    await response.prepare(request)
    async for chunk in export_chunks(records, query.format):
        await response.write(chunk)
    await response.write_eof()
    return response


def usage_routes() -> list[AdminRoute]:
    return [
        AdminRoute(
            "GET",
            "/admin/v1/usage",
            export_usage,
            "Export usage records for invoicing, streamed (constant memory)",
            {200: Doc("One record per line", media_types=_MEDIA_TYPES), **error_docs(400)},
            params=(
                Param("customer", "query", "Only this customer (default: all)."),
                Param(
                    "from",
                    "query",
                    "First UTC day, e.g. 2026-11-01 (default: 1st of month).",
                    {"type": "string", "format": "date"},
                ),
                Param(
                    "to",
                    "query",
                    "Last UTC day, inclusive (default: end of the month).",
                    {"type": "string", "format": "date"},
                ),
                Param(
                    "format",
                    "query",
                    "jsonl (default) or csv.",
                    {"type": "string", "enum": list(FORMATS)},
                ),
            ),
            tag="usage",
        )
    ]
