"""The table of usage records, on the requests page and a customer's page. Pure."""

from __future__ import annotations

from collections.abc import Sequence

from proxy.accounting.records import UsageRecord
from proxy.console.html import count, esc, link, money, table
from proxy.utc import iso_utc

__all__ = ["cost_cell", "requests_table"]


def cost_cell(record: UsageRecord) -> str:
    if record.cost_nusd is None:
        return (
            '<span class="unpriced" title="no price for this model: cost unknown">unpriced</span>'
        )
    return money(record.cost_nusd)


def requests_table(records: Sequence[UsageRecord], *, show_customer: bool = True) -> str:
    headers = ["Time (UTC)", "Customer", "Model", "Provider", "Status", "Input", "Cached",
               "Output", "Reasoning", "Cost", "Usage", "Latency ms"]  # fmt: skip
    rows = []
    for r in records:
        status_class = "ok" if r.status < 400 else "bad"
        rows.append(
            [
                link(f"/ui/requests/{r.request_id}", iso_utc(r.ts_ms)),
                esc(r.customer),
                esc(r.model),
                esc(r.provider),
                f'<span class="status {status_class}">{r.status}</span>',
                count(r.input_tokens),
                count(r.cached_input_tokens),
                count(r.output_tokens),
                count(r.reasoning_tokens),
                cost_cell(r),
                esc(r.usage_source),
                f'<span class="num">{r.latency_ms:,.0f}</span>',
            ]
        )
    if not show_customer:
        headers = headers[:1] + headers[2:]
        rows = [row[:1] + row[2:] for row in rows]
    numeric = (5, 6, 7, 8, 9, 11) if show_customer else (4, 5, 6, 7, 8, 10)
    return table(headers, rows, numeric=numeric, cls="requests", empty="No request yet.")
