"""What the proxy recorded for one provider, per UTC day and upstream model.

Tokens and cost come from the daily aggregates (kept for `store.retention_days`). The
usage log, read once in pages, tells which requests failed upstream without a token: the
provider answered those with an error and does not bill them, so they are not counted as
its requests. Where the log no longer holds every record of a day (it is bounded), the
day's rows count every request and say so.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import date

from proxy.accounting.records import Totals
from proxy.reconcile.coverage import DAY_S, day_start
from proxy.reconcile.figures import ProxyRow
from proxy.store.base import Store
from proxy.store.buckets import utc_day

__all__ = ["combine", "recorded_rows"]

Key = tuple[date, str]


def combine(totals: Mapping[Key, Totals], logged: Mapping[Key, tuple[int, int]]) -> list[ProxyRow]:
    """Rows from the aggregates and, per (day, model), (records in the log, records that
    failed upstream without tokens). Pure."""
    rows = []
    for (day, model), t in sorted(totals.items()):
        seen, failed = logged.get((day, model), (0, 0))
        complete = seen == t.requests
        rows.append(
            ProxyRow(
                day=day,
                model=model,
                requests=t.requests - failed if complete else t.requests,
                input_tokens=t.input_tokens,
                cached_input_tokens=t.cached_input_tokens,
                cache_write_tokens=t.cache_write_5m_tokens + t.cache_write_1h_tokens,
                output_tokens=t.output_tokens,
                cost_nusd=t.cost_nusd,
                estimated_requests=t.estimated_requests,
                unpriced_requests=t.unpriced_requests,
                failed_requests=failed if complete else 0,
                log_incomplete=not complete,
            )
        )
    return rows


async def recorded_rows(
    store: Store, provider: str, from_day: date, to_day: date
) -> list[ProxyRow]:
    """The proxy's rows of `provider` over [from_day, to_day] (UTC, inclusive)."""
    totals: dict[Key, Totals] = defaultdict(Totals)
    for row in await store.aggregate_rows(
        customer=None, from_day=from_day, to_day=to_day, breakdown="base"
    ):
        if row.provider == provider:
            totals[(date.fromisoformat(row.day), row.model)].add(row.totals)
    logged: dict[Key, tuple[int, int]] = {}
    from_ms = day_start(from_day) * 1000
    to_ms = (day_start(to_day) + DAY_S) * 1000
    async for record in store.iter_usage(customer=None, from_ms=from_ms, to_ms=to_ms):
        if record.provider != provider:
            continue
        key = (date.fromisoformat(utc_day(record.ts_ms)), record.model)
        seen, failed = logged.get(key, (0, 0))
        unbilled = record.status >= 400 and not record.input_tokens and not record.output_tokens
        logged[key] = (seen + 1, failed + unbilled)
    return combine(totals, logged)
