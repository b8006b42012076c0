"""Admin API: the last scheduled reconciliation of a provider with its own report."""

from __future__ import annotations

from aiohttp import web

from proxy.admin.errors import error_docs
from proxy.admin.routes import AdminRoute, Doc, Param, json_response
from proxy.errors import NotFoundError
from proxy.reconcile.status import ReconcileStatus, job_name
from proxy.state import ProxyState
from proxy.utc import iso_utc

__all__ = ["reconcile_routes"]


def _iso(ms: int | None) -> str | None:
    return None if ms is None else iso_utc(ms)


async def get_reconcile(request: web.Request, state: ProxyState) -> web.Response:
    provider = request.match_info["provider"]
    entry = next((e for e in state.config.reconcile if e.provider == provider), None)
    if entry is None:
        raise NotFoundError(
            f"Provider {provider!r} is not reconciled: add {{provider: {provider}}} under "
            "'reconcile' in the config (or run costproxy reconcile).",
            code="reconcile_not_configured",
        )
    # The stored outcome: whichever instance ran it, every instance answers the same.
    text = await state.store.job_result(job_name(provider))
    status = ReconcileStatus(provider) if text is None else ReconcileStatus.from_json(text)
    return json_response(
        {
            "provider": provider,
            "every": entry.every,
            "status": status.state,
            "attempted_at": _iso(status.attempted_ms),
            "succeeded_at": _iso(status.succeeded_ms),
            "last_error": status.last_error,
            "result": status.result,
        }
    )


def reconcile_routes() -> list[AdminRoute]:
    return [
        AdminRoute(
            "GET",
            "/admin/v1/reconcile/{provider}",
            get_reconcile,
            "The last reconciliation of a provider's spend with its own usage and cost report",
            {200: Doc("The last outcome and comparison"), **error_docs(404)},
            params=(Param("provider", "path", "A provider under 'reconcile'.", required=True),),
            tag="reconcile",
        )
    ]
