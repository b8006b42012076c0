"""The store interface: what the request path and the admin API need from persistence."""

from __future__ import annotations

from datetime import date
from typing import Protocol

from proxy.records import AggregateRow, Breakdown, UsageRecord, WhatIfRow

__all__ = ["Store"]


class Store(Protocol):
    async def open(self) -> None:
        """Connect / create schema. Called once at start-up."""

    async def close(self) -> None:
        """Release connections and threads. Safe to call twice."""

    async def record_usage(self, record: UsageRecord) -> bool:
        """Apply one usage record atomically: the usage log entry plus every aggregate.

        Idempotent by `request_id`: a second call with the same id changes nothing and
        returns False; the first returns True.
        """

    async def aggregate_rows(
        self, *, customer: str | None, from_day: date, to_day: date, breakdown: Breakdown
    ) -> list[AggregateRow]:
        """Daily aggregate rows in [from_day, to_day] (inclusive), all customers when None.

        breakdown "base": one row per (customer, day, route, provider, model), dim None.
        breakdown "tag": as base, split by each tag of the request (dim "" when untagged).
        breakdown "end_user": as base, split by end user (dim "" when none).
        """

    async def get_usage(self, request_id: str) -> UsageRecord | None:
        """The usage record of one request, or None when unknown (or trimmed away)."""

    async def what_if_rows(
        self, *, customer: str | None, from_day: date, to_day: date
    ) -> list[WhatIfRow]:
        """Daily what-if rows in [from_day, to_day], one per (customer, day, route,
        provider, model, alternative); all customers when customer is None."""
