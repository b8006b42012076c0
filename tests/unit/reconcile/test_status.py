"""When a scheduled reconciliation is due, what its stored outcome says, and its metrics."""

from __future__ import annotations

import pytest

from proxy.config import ReconcileConfig
from proxy.observability.reconcile_metrics import render_reconcile
from proxy.reconcile.status import ReconcileStatus

HOUR_MS = 3_600_000
ENTRY = ReconcileConfig(provider="openai", every="6h", retry_s=900)


@pytest.mark.parametrize(
    ("status", "now_ms", "due"),
    [
        (ReconcileStatus("openai"), 0, True),  # never run
        (ReconcileStatus("openai", 0, 1, None, {"matched": True}), 6 * HOUR_MS - 1, False),
        (ReconcileStatus("openai", 0, 1, None, {"matched": True}), 6 * HOUR_MS, True),
        (ReconcileStatus("openai", 0, None, "HTTP 401"), 899_999, False),  # retried sooner
        (ReconcileStatus("openai", 0, None, "HTTP 401"), 900_000, True),
    ],
)
def test_due(status: ReconcileStatus, now_ms: int, due: bool) -> None:
    assert status.due(ENTRY, now_ms) is due


def test_state_and_round_trip() -> None:
    assert ReconcileStatus("p").state == "pending"
    assert ReconcileStatus("p", 1, 2, None, {"matched": True}).state == "matched"
    assert ReconcileStatus("p", 1, 2, None, {"matched": False}).state == "differences"
    failed = ReconcileStatus("p", 3, 2, "refused", {"matched": True})
    assert failed.state == "failed"
    assert ReconcileStatus.from_json(failed.to_json()) == failed


def test_metrics() -> None:
    text = render_reconcile(
        [("openai", -0.25, False, 1_800_000_000.0, False), ("broken", None, None, None, True)]
    )
    samples = [line for line in text.splitlines() if not line.startswith("#")]
    assert samples == [
        'costproxy_reconcile_difference_usd{provider="openai"} -0.25',
        'costproxy_reconcile_matched{provider="openai"} 0.0',
        'costproxy_reconcile_last_success_timestamp_seconds{provider="openai"} 1800000000.0',
        'costproxy_reconcile_last_attempt_failed{provider="openai"} 0.0',
        'costproxy_reconcile_last_attempt_failed{provider="broken"} 1.0',
    ]
    assert "# TYPE costproxy_reconcile_matched gauge" in text
