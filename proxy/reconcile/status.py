"""The last reconciliation of a provider as the store keeps it, and when the next one is
due. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from proxy.config import ReconcileConfig

__all__ = ["ReconcileStatus", "job_name"]


def job_name(provider: str) -> str:
    return f"reconcile/{provider}"


@dataclass(frozen=True, slots=True)
class ReconcileStatus:
    """`result` is the comparison of the last run that succeeded; a run that failed since
    (report unreachable, key refused) leaves it and sets `last_error`."""

    provider: str
    attempted_ms: int | None = None
    succeeded_ms: int | None = None
    last_error: str | None = None
    result: dict[str, Any] | None = None

    def due(self, entry: ReconcileConfig, now_ms: int) -> bool:
        if self.attempted_ms is None:
            return True
        wait_s = entry.every_s if self.last_error is None else min(entry.every_s, entry.retry_s)
        return now_ms - self.attempted_ms >= wait_s * 1000

    @property
    def state(self) -> str:
        """pending (never run), failed (the last attempt), matched or differences."""
        if self.last_error is not None:
            return "failed"
        if self.result is None:
            return "pending"
        return "matched" if self.result["matched"] else "differences"

    def to_json(self) -> str:
        return orjson.dumps(
            {
                "provider": self.provider,
                "attempted_ms": self.attempted_ms,
                "succeeded_ms": self.succeeded_ms,
                "last_error": self.last_error,
                "result": self.result,
            }
        ).decode()

    @classmethod
    def from_json(cls, text: str) -> ReconcileStatus:
        data = orjson.loads(text)
        return cls(
            provider=data["provider"],
            attempted_ms=data.get("attempted_ms"),
            succeeded_ms=data.get("succeeded_ms"),
            last_error=data.get("last_error"),
            result=data.get("result"),
        )
