"""proxy/metrics.py in-process: label bounds, what one observation adds, error reasons."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from proxy.accounting.records import UsageRecord
from proxy.config import MetricsConfig, parse_config
from proxy.errors import ConfigError
from proxy.observability.metrics import (
    OTHER,
    UPSTREAM_ERROR_REASONS,
    CustomerLabels,
    ProxyMetrics,
    upstream_errors,
)


def record(customer: str = "acme", **fields) -> UsageRecord:
    values = {
        "request_id": "req_1",
        "ts_ms": 0,
        "customer": customer,
        "route": "gpt-4o-mini",
        "provider": "openai",
        "model": "gpt-4o-mini",
        "endpoint": "chat.completions",
        "status": 200,
        "input_tokens": 100,
        "cached_input_tokens": 40,
        "output_tokens": 20,
        "reasoning_tokens": 5,
        "cost_nusd": 1_500_000_000,
        "latency_ms": 250.0,
    }
    return UsageRecord(**{**values, **fields})


def metrics(**config) -> ProxyMetrics:
    """Metrics that name customers (customer_label `all`) unless told otherwise."""
    return ProxyMetrics(MetricsConfig(**{"customer_label": "all", **config}))


def samples(m: ProxyMetrics) -> dict[tuple[str, frozenset], float]:
    """Every sample of the exposition, read back with prometheus-client's own parser."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(m.exposition().decode())
        for sample in family.samples
    }


def value(m: ProxyMetrics, name: str, **labels: str) -> float | None:
    return samples(m).get((name, frozenset(labels.items())))


def label_values(m: ProxyMetrics, metric: str, label: str) -> set[str]:
    return {
        dict(labels)[label]
        for name, labels in samples(m)
        if name == metric and label in dict(labels)
    }


# Customer labels.


@pytest.mark.parametrize(
    ("policy", "max_customers", "listed", "seen", "expected"),
    [
        ("all", 2, (), ["a", "b", "c", "a", "d", "b"], ["a", "b", OTHER, "a", OTHER, "b"]),
        ("all", 0, (), ["a", "b"], [OTHER, OTHER]),
        ("listed", 500, ("b", "d"), ["a", "b", "c", "d"], [OTHER, "b", OTHER, "d"]),
        ("none", 500, (), ["a", "b"], [OTHER, OTHER]),
    ],
)
def test_customer_labels(policy, max_customers, listed, seen, expected):
    labels = CustomerLabels(policy, max_customers, listed)
    assert [labels.label(customer) for customer in seen] == expected


def test_ten_thousand_customers_leave_at_most_max_plus_one_label_values():
    m = metrics(max_customers=100)
    for i in range(10_000):
        m.observe(record(f"customer-{i:05d}"), 0.0001, ())
    customers = label_values(m, "costproxy_requests_total", "customer")
    assert len(customers) == 101
    assert customers == {f"customer-{i:05d}" for i in range(100)} | {OTHER}
    assert label_values(m, "costproxy_tokens_total", "customer") == customers
    assert len(m.customers) == 100  # memory is bounded too
    assert value(m, "costproxy_requests_total", **_labels(OTHER)) == 9_900


def _labels(customer: str, status: str = "200") -> dict[str, str]:
    return {"model": "gpt-4o-mini", "provider": "openai", "customer": customer, "status": status}


# One observation.


def test_observe_counts_request_tokens_cost_and_timings():
    m = metrics()
    m.observe(record(ttft_ms=120.0), 0.0004, ())
    m.observe(record(status=499, cost_nusd=500_000_000, ttft_ms=80.0), 0.0002, ())
    assert value(m, "costproxy_requests_total", **_labels("acme")) == 1
    assert value(m, "costproxy_requests_total", **_labels("acme", "499")) == 1
    spend = {"model": "gpt-4o-mini", "provider": "openai", "customer": "acme"}
    for kind, expected in [("input", 200), ("cached_input", 80), ("output", 40), ("reasoning", 10)]:
        assert value(m, "costproxy_tokens_total", **spend, kind=kind) == expected
    assert value(m, "costproxy_cost_usd_total", **spend) == pytest.approx(2.0)
    model = {"model": "gpt-4o-mini", "provider": "openai"}
    assert value(m, "costproxy_request_duration_seconds_count", **model) == 2
    assert value(m, "costproxy_request_duration_seconds_sum", **model) == pytest.approx(0.5)
    assert value(m, "costproxy_time_to_first_token_seconds_sum", **model) == pytest.approx(0.2)
    assert value(m, "costproxy_overhead_seconds_sum") == pytest.approx(0.0006)
    assert value(m, "costproxy_overhead_seconds_bucket", le="0.00025") == 1
    assert value(m, "costproxy_unpriced_requests_total", **model) == 0


def test_billable_spend_is_counted_beside_cost():
    m = metrics()
    m.observe(record(cost_nusd=1_000_000_000, billable_nusd=1_250_000_000), 0.0001, ())
    m.observe(record(cost_nusd=None, billable_nusd=None), 0.0001, ())  # unknown: not counted
    spend = {"model": "gpt-4o-mini", "provider": "openai", "customer": "acme"}
    assert value(m, "costproxy_cost_usd_total", **spend) == pytest.approx(1.0)
    assert value(m, "costproxy_billable_usd_total", **spend) == pytest.approx(1.25)


def test_unpriced_and_non_streaming_requests():
    m = metrics()
    m.observe(record(cost_nusd=None), 0.0001, ())
    model = {"model": "gpt-4o-mini", "provider": "openai"}
    assert value(m, "costproxy_unpriced_requests_total", **model) == 1
    assert value(m, "costproxy_time_to_first_token_seconds_count", **model) == 0


def test_rejected_requests_carry_provider_none():
    m = metrics()
    m.rejected(401)
    m.rejected(401)
    m.rejected(404)
    none = {"model": "none", "provider": "none", "customer": OTHER}
    assert value(m, "costproxy_requests_total", **none, status="401") == 2
    assert value(m, "costproxy_requests_total", **none, status="404") == 1
    assert value(m, "costproxy_overhead_seconds_count") == 0


def test_label_children_are_made_once():
    m = metrics()
    key = ("gpt-4o-mini", "openai", "acme", 200)
    m.observe(record(), 0.0001, ())
    child = m._request_children[key]
    m.observe(record(), 0.0001, ())
    assert m._request_children == {key: child}  # the same child: no label formatting again
    assert child.value == 2


def test_series_for_errors_and_targets_exist_from_the_start():
    m = ProxyMetrics(MetricsConfig(), providers=["openai"], targets=[("gpt-4o", "openai")])
    for reason in UPSTREAM_ERROR_REASONS:
        assert value(m, "costproxy_upstream_errors_total", provider="openai", reason=reason) == 0
    assert value(m, "costproxy_unpriced_requests_total", model="gpt-4o", provider="openai") == 0
    assert value(m, "costproxy_store_errors_total", operation="record_usage") == 0
    m.observe(record(), 0.0001, ("timeout", "timeout"))
    assert value(m, "costproxy_upstream_errors_total", provider="openai", reason="timeout") == 2


def test_inflight_gauge():
    m = metrics()
    m.request_started()
    m.request_started()
    m.request_finished()
    assert value(m, "costproxy_inflight_requests") == 1


def test_store_calls():
    m = metrics()
    m.store_call("record_usage", 0.002, failed=False)
    m.store_call("record_usage", 0.5, failed=True)
    assert value(m, "costproxy_store_latency_seconds_count", operation="record_usage") == 2
    assert value(m, "costproxy_store_errors_total", operation="record_usage") == 1


def test_exposition_is_prometheus_text_with_escaped_labels():
    m = metrics()
    m.observe(record('we "quote"\\back\nslash'), 0.0001, ())
    text = m.exposition().decode()
    assert "# TYPE costproxy_requests_total counter" in text
    assert "# TYPE costproxy_overhead_seconds histogram" in text
    assert 'costproxy_overhead_seconds_bucket{le="+Inf"} 1' in text
    assert "process_cpu_seconds_total" in text
    assert label_values(m, "costproxy_requests_total", "customer") == {'we "quote"\\back\nslash'}


def test_histogram_buckets_are_cumulative_and_inclusive():
    m = metrics()
    for seconds in (0.0001, 0.0001, 0.0003, 0.2):
        m.observe(record(), seconds, ())
    assert value(m, "costproxy_overhead_seconds_bucket", le="0.0001") == 2  # le is <=
    assert value(m, "costproxy_overhead_seconds_bucket", le="0.0005") == 3
    assert value(m, "costproxy_overhead_seconds_bucket", le="0.1") == 3
    assert value(m, "costproxy_overhead_seconds_bucket", le="+Inf") == 4
    assert value(m, "costproxy_overhead_seconds_count") == 4
    assert value(m, "costproxy_overhead_seconds_sum") == pytest.approx(0.2005)


def test_registries_are_per_app():
    first, second = metrics(), metrics()
    first.rejected(401)
    assert value(second, "costproxy_requests_total", **_labels(OTHER, "401")) is None


# Why the upstream failed.


@pytest.mark.parametrize(
    ("failures", "final_status", "reasons"),
    [
        ([], 200, ()),
        ([], 499, ()),  # the client went away: not the upstream's fault
        ([], 400, ()),  # the client's request refused upstream
        ([], 404, ()),
        (["upstream_timeout"], 504, ("timeout",)),
        (["upstream_unreachable", "upstream_unreachable"], 200, ("unreachable", "unreachable")),
        (["upstream_broken"], 502, ("broken",)),
        (["stream broken"], 200, ("broken",)),  # cut off after the first byte
        (["http 429", "http 503"], 200, ("rate_limited", "server_error")),  # then a success
        (["http 500", "http 500", "http 500"], 500, ("server_error",) * 3),
        ([], 401, ("auth",)),  # the provider refused our key
        ([], 403, ("auth",)),
        (["something new"], 502, ("other",)),
    ],
)
def test_upstream_errors(failures, final_status, reasons):
    assert upstream_errors(failures, final_status) == reasons
    assert set(reasons) <= set(UPSTREAM_ERROR_REASONS)


def test_what_if_costs_by_alternative():
    m = metrics()
    m.observe(record(what_if={"rival/mini": 500_000_000, "rival/budget": 1_000}), 0.0001, ())
    m.observe(record(what_if={"rival/mini": 250_000_000}), 0.0001, ())
    labels = {"model": "gpt-4o-mini", "provider": "openai"}
    got = value(m, "costproxy_whatif_cost_usd_total", **labels, alternative="rival/mini")
    assert got == pytest.approx(0.75)
    got = value(m, "costproxy_whatif_cost_usd_total", **labels, alternative="rival/budget")
    assert got == pytest.approx(0.000001)


def test_config_reloads_are_read_at_scrape_time():
    m = metrics()
    assert value(m, "costproxy_config_reloads_total", result="ok") is None
    figures = [3, 1, 4]
    m.watch_reloads(lambda: tuple(figures))
    assert value(m, "costproxy_config_reloads_total", result="ok") == 3
    assert value(m, "costproxy_config_reloads_total", result="rejected") == 1
    figures[0] = 5
    assert value(m, "costproxy_config_reloads_total", result="ok") == 5
    assert value(m, "costproxy_config_generation") == 4


# The config section.


def _config(metrics_section: dict, port: int = 8080) -> dict:
    return {
        "server": {"port": port},
        "providers": {"openai": {"base_url": "https://api.openai.com/v1"}},
        "models": {"m": {"targets": [{"provider": "openai", "model": "m"}]}},
        "metrics": metrics_section,
    }


def test_metrics_config_defaults():
    config = parse_config(_config({}))
    assert config.metrics.customer_label == "none"  # no customer named unless enabled
    assert config.metrics.max_customers == 500
    assert config.metrics.port is None
    assert config.metrics.token is None
    assert config.request_log.enabled is True


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"customer_label": "listed"}, "'customers' is empty"),
        ({"customers": ["acme"]}, "only used with customer_label: listed"),
        ({"customer_label": "some"}, "metrics.customer_label"),
        ({"max_customers": -1}, "metrics.max_customers"),
        ({"port": 8080}, "metrics.port must differ from server.port"),
        ({"token": "short"}, "metrics token must be at least 16 characters"),
        ({"unknown": 1}, "metrics.unknown"),
    ],
)
def test_metrics_config_errors(section, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        parse_config(_config(section))


def test_budget_refusals_carry_model_provider_and_customer():
    m = metrics(max_customers=1)
    m.rejected(429, "gpt-4o-mini", "openai", "acme")
    m.rejected(429, "gpt-4o-mini", "openai", "globex")  # past the cap
    assert value(m, "costproxy_requests_total", **_labels("acme", "429")) == 1
    assert value(m, "costproxy_requests_total", **_labels(OTHER, "429")) == 1


BUDGET_SNAPSHOT = {
    "reservations_total": 12,
    "rejections_total": {"customer": 3},
    "recounted_total": 1,
    "settles_total": 9,
    "settle_failures_total": 0,
    "store_errors_total": 0,
    "offline_reservations_total": 4,
    "offline_charges_total": 3,
    "offline_unsent_usd": "0.000001500",
    "alerts_total": {"threshold": 2},
    "webhook_deliveries_total": 2,
    "webhook_failed_deliveries_total": 1,
    "webhook_backlog": 0,
    "spent_usd": {
        "customer/acme|monthly": "80.500000000",
        "customer/globex|monthly": "1.000000000",
        "end_user/acme/player-9|daily": "0.400000000",
        "tag/feature=story|daily": "12.000000000",
    },
    "limit_usd": {
        "customer/acme|monthly": "100.000000000",
        "customer/globex|monthly": "5.000000000",
        "end_user/acme/player-9|daily": "0.500000000",
        "tag/feature=story|daily": "200.000000000",
    },
}


def test_budget_figures_are_read_at_scrape_time():
    m = metrics(max_customers=1)
    m.observe(record("acme"), 0.0001, ())  # acme takes the one customer label
    m.watch_budgets(lambda: BUDGET_SNAPSHOT)
    assert value(m, "costproxy_budget_reservations_total") == 12
    assert value(m, "costproxy_budget_rejections_total", scope_kind="customer") == 3
    assert value(m, "costproxy_budget_alerts_total", kind="threshold") == 2
    assert value(m, "costproxy_budget_webhook_failed_deliveries_total") == 1
    assert value(m, "costproxy_budget_offline_reservations_total") == 4
    assert value(m, "costproxy_budget_offline_unsent_usd") == 0.0000015
    acme = {"scope": "customer/acme", "period": "monthly", "customer": "acme"}
    assert value(m, "costproxy_budget_spent_usd", **acme) == 80.5
    assert value(m, "costproxy_budget_limit_usd", **acme) == 100
    tag = {"scope": "tag/feature=story", "period": "daily", "customer": ""}
    assert value(m, "costproxy_budget_spent_usd", **tag) == 12
    # globex is past metrics.max_customers, and end users never become labels.
    scopes = label_values(m, "costproxy_budget_spent_usd", "scope")
    assert scopes == {"customer/acme", "tag/feature=story"}


def test_store_health_and_journal_backlog_are_read_at_scrape_time():
    m = metrics()
    assert value(m, "costproxy_store_up") is None  # nothing watched yet
    seen = {"up": True, "pending": 0, "lost": 0}
    m.watch_store(lambda: (seen["up"], seen["pending"], seen["lost"]))
    assert value(m, "costproxy_store_up") == 1
    seen.update(up=False, pending=42, lost=1)
    assert value(m, "costproxy_store_up") == 0
    assert value(m, "costproxy_journal_pending_records") == 42
    assert value(m, "costproxy_usage_records_lost_total") == 1


def test_model_mismatches_are_counted_and_each_kind_logged_once() -> None:
    m = metrics()
    assert m.model_mismatch("openai", "gpt-4.1-nano", "gpt-4.1") is True
    assert m.model_mismatch("openai", "gpt-4.1-nano", "gpt-4.1") is False
    assert m.model_mismatch("openai", "gpt-4.1-nano", "gpt-4o") is True
    got = value(m, "costproxy_model_mismatch_total", provider="openai", model="gpt-4.1-nano")
    assert got == 3


def test_by_default_no_customer_is_named():
    m = ProxyMetrics(MetricsConfig())
    m.observe(record(customer="acme-secret-name"), 0.001, ())
    text = m.exposition().decode()
    assert "acme-secret-name" not in text
    assert 'customer="other"' in text
