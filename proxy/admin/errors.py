"""The error responses every admin route documents (the OpenAI error shape)."""

from __future__ import annotations

from proxy.admin.models import ErrorBody
from proxy.admin.routes import Doc

__all__ = ["error_docs"]

_MEANING = {
    400: "Invalid request (the message names the problem)",
    401: "Missing or wrong admin token, or the admin API is disabled",
    404: "Not found",
    429: "Too many failed authentications from this address: retry after Retry-After",
}


def error_docs(*statuses: int) -> dict[int, Doc]:
    """Docs for 401 and 429 (every admin route) and the given statuses."""
    return {s: Doc(_MEANING[s], ErrorBody) for s in sorted({401, 429, *statuses})}
