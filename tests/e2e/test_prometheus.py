"""A real Prometheus scrapes a real proxy under traffic from the fake upstream; then every
PromQL query of every dashboard panel and every alert rule is evaluated through its HTTP API.

No dashboard or rule can ship with a query on a metric the proxy does not export, or with
a legend naming a label the series do not carry.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import orjson
import pytest

from tests.support.observability import (
    ALERT_RULES,
    Query,
    alert_queries,
    alert_rules,
    dashboard_queries,
    variable_queries,
)
from tests.support.procs import ServerProcess, free_port, start_proxy
from tests.support.prometheus import PrometheusServer
from tests.support.reconcile_stack import ADMIN_KEYS_ENV, openai_report
from tests.support.report_api import FakeReportAPI
from tests.support.stack import (
    ACME_KEY,
    BACKEND_KEY,
    ENV,
    GLOBEX_KEY,
    METRICS_TOKEN,
    SECRETS,
    base_config,
)

PROMPT_MARKER = "PROMPT-TEXT-zebra-quartz-41"
CHAT = "/v1/chat/completions"


def _chat(model: str, *, stream: bool = False) -> dict:
    return {
        "model": model,
        "messages": [{"role": "user", "content": f"{PROMPT_MARKER} tell me a story"}],
        "stream": stream,
    }


def _auth(key: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **headers}


# One round of traffic: (path, headers, body, status the client gets). Together they touch
# every label value the dashboards show: statuses, token kinds, unpriced, estimated usage,
# streams (TTFT), each upstream error reason the fake can produce, and rejections.
ROUND = [
    (CHAT, _auth(ACME_KEY, **{"X-Cost-Tags": "feature=story"}), _chat("gpt-4o-mini"), 200),
    (CHAT, _auth(ACME_KEY), _chat("gpt-4o-mini", stream=True), 200),
    ("/v1/embeddings", _auth(GLOBEX_KEY), {"model": "text-embedding-3-small", "input": "hi"}, 200),
    (
        CHAT,
        _auth(BACKEND_KEY, **{"X-Customer-Id": "initech", "x-mock-usage": "1000,400,300,120"}),
        _chat("story", stream=True),
        200,
    ),
    (CHAT, _auth(ACME_KEY), _chat("unpriced"), 200),
    (CHAT, _auth(ACME_KEY), _chat("mystery"), 200),
    (CHAT, _auth(ACME_KEY, **{"x-mock-status": "500"}), _chat("gpt-4o-mini"), 500),
    (CHAT, _auth(ACME_KEY, **{"x-mock-status": "429"}), _chat("gpt-4o-mini"), 429),
    # Cut off mid-stream: the client got a 200 and a short stream; the record says 502.
    (CHAT, _auth(ACME_KEY, **{"x-mock-fail-after": "2"}), _chat("gpt-4o-mini", stream=True), 200),
    # A customer whose hard budget is zero: refused before anything goes upstream.
    (CHAT, _auth(BACKEND_KEY, **{"X-Customer-Id": "frugal"}), _chat("gpt-4o-mini"), 429),
    (CHAT, _auth("sk-not-a-key"), _chat("gpt-4o-mini"), 401),
    (CHAT, _auth(ACME_KEY), _chat("no-such-model"), 404),
]
# What each request of a round counts as in costproxy_requests_total{status}.
RECORDED_STATUSES = ["200"] * 6 + ["500", "429", "502", "429", "401", "404"]
TRAFFIC_SECONDS = 3.5


@dataclass
class Observed:
    prometheus: PrometheusServer
    proxy: ServerProcess
    metrics_url: str
    rounds: int
    at: float  # when the last scrape had seen all traffic: queries are evaluated then


async def _send(http: aiohttp.ClientSession, url: str, path: str, headers, body, status) -> None:
    async with http.post(url + path, json=body, headers=headers) as resp:
        await resp.read()
        assert resp.status == status, (path, headers, resp.status)


async def _query(
    http: aiohttp.ClientSession, prometheus: PrometheusServer, expr: str, at: float | None = None
) -> dict:
    params = {"query": expr, "time": str(time.time() if at is None else at)}
    async with http.get(prometheus.url + "/api/v1/query", params=params) as resp:
        answer = await resp.json()
    assert answer["status"] == "success", f"{expr}: {answer}"
    return answer["data"]


async def _wait_for(http, prometheus: PrometheusServer, expr: str, expected: float) -> None:
    deadline = time.monotonic() + 20
    seen = None
    while time.monotonic() < deadline:
        result = (await _query(http, prometheus, expr))["result"]
        seen = float(result[0]["value"][1]) if result else None
        if seen == expected:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{expr}: Prometheus saw {seen}, expected {expected}")


@pytest.fixture(scope="module")
async def observed(
    upstream: ServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Observed]:
    directory: Path = tmp_path_factory.mktemp("prometheus-e2e")
    metrics_port = free_port()
    config = base_config(
        upstream.url, {"backend": "sqlite", "sqlite_path": str(directory / "costproxy.db")}
    )
    # The dashboards' customer panels need customers named (off by default).
    config["metrics"] = {
        "port": metrics_port,
        "token": "${T_METRICS_TOKEN}",
        "customer_label": "all",
    }
    config["customers"] = {
        "acme": {"budgets": [{"period": "monthly", "limit_usd": "1000", "hard": True}]},
        "frugal": {"budgets": [{"period": "monthly", "limit_usd": "0", "hard": True}]},
    }
    # acme's unpriced traffic feeds the dashboards' "unpriced" panels: let it through its
    # hard budget (by default it is refused, see tests/e2e/test_prices.py).
    config["budgeting"] = {"unpriced": "allow"}
    # Reconciled with a fake of OpenAI's report API, once at start-up.
    reports = FakeReportAPI().start()
    config["providers"]["openai"]["report"] = openai_report(reports)
    config["reconcile"] = [{"provider": "openai", "every": "1h", "lag_days": 0, "days": 1}]
    proxy = start_proxy(config, directory, {**ENV, **ADMIN_KEYS_ENV})
    prometheus = PrometheusServer(
        job="costproxy",
        targets=[f"127.0.0.1:{metrics_port}"],
        rule_files=[ALERT_RULES],
        bearer_token=METRICS_TOKEN,
    )
    try:
        prometheus.start()
        rounds = 0
        async with aiohttp.ClientSession() as http:
            # Prometheus hands targets to its scrapers in batches, seconds after start-up:
            # traffic before the first scrape would be seen once, too few for rate().
            await _wait_for(http, prometheus, 'up{job="costproxy"}', 1)
            # Traffic across several scrapes, so that rate() and histogram_quantile() have
            # at least two samples that differ.
            end = time.monotonic() + TRAFFIC_SECONDS
            while time.monotonic() < end:
                await asyncio.gather(*(_send(http, proxy.url, *request) for request in ROUND))
                rounds += 1
                await asyncio.sleep(0.2)
            await _wait_for(http, prometheus, "sum(costproxy_requests_total)", rounds * len(ROUND))
        metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        # A fixed evaluation time: however slow the machine, rate() windows hold the traffic.
        yield Observed(prometheus, proxy, metrics_url, rounds, at=time.time())
    finally:
        prometheus.close()
        proxy.stop()
        reports.stop()


async def _assert_returns_data(http: aiohttp.ClientSession, observed: Observed, query: Query):
    data = await _query(http, observed.prometheus, query.expr, observed.at)
    assert data["resultType"] == "vector", query.where
    result = data["result"]
    assert result, f"{query.where}: no data for\n  {query.expr}"
    for series in result:
        missing = query.labels - series["metric"].keys()
        assert not missing, f"{query.where}: series {series['metric']} lacks labels {missing}"
    values = [float(series["value"][1]) for series in result]
    assert any(math.isfinite(v) for v in values), f"{query.where}: only {values}"


@pytest.mark.parametrize("query", dashboard_queries(), ids=lambda q: q.where)
async def test_dashboard_query_returns_data(observed: Observed, http, query: Query):
    await _assert_returns_data(http, observed, query)


@pytest.mark.parametrize("query", alert_queries(), ids=lambda q: q.where)
async def test_alert_signal_returns_data(observed: Observed, http, query: Query):
    await _assert_returns_data(http, observed, query)


@pytest.mark.parametrize(("dashboard", "metric", "label"), variable_queries())
async def test_dashboard_variable_has_values(observed: Observed, http, dashboard, metric, label):
    async with http.get(
        f"{observed.prometheus.url}/api/v1/label/{label}/values", params={"match[]": metric}
    ) as resp:
        values = (await resp.json())["data"]
    assert values, f"{dashboard}: variable over {metric} {label} has no values"
    if label == "customer":
        assert {"acme", "globex", "initech", "other"} <= set(values)


async def test_prometheus_evaluates_every_rule_without_error(observed: Observed, http):
    deadline = time.monotonic() + 10
    while True:
        async with http.get(observed.prometheus.url + "/api/v1/rules") as resp:
            groups = (await resp.json())["data"]["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        if all(rule["lastEvaluation"] > "2000" for rule in rules) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert {rule["name"] for rule in rules} == {rule["alert"] for rule in alert_rules()}
    for rule in rules:
        assert rule["health"] == "ok", (rule["name"], rule.get("lastError"))
        assert rule["lastEvaluation"] > "2000", f"{rule['name']} never evaluated"


async def test_counts_in_prometheus_equal_the_traffic(observed: Observed, http):
    data = await _query(http, observed.prometheus, "sum by (status) (costproxy_requests_total)")
    got = {series["metric"]["status"]: float(series["value"][1]) for series in data["result"]}
    expected = {status: n * observed.rounds for status, n in Counter(RECORDED_STATUSES).items()}
    assert got == expected
    data = await _query(http, observed.prometheus, 'sum(costproxy_requests_total{provider="none"})')
    assert float(data["result"][0]["value"][1]) == 2 * observed.rounds  # the 401 and the 404


async def test_the_metrics_port_wants_the_token(observed: Observed, http):
    async with http.get(observed.metrics_url) as resp:
        assert resp.status == 401
        assert METRICS_TOKEN not in await resp.text()
    async with http.get(observed.metrics_url, headers=_auth("wrong-token-of-16-chars")) as resp:
        assert resp.status == 401
    # With metrics.port set, the main port does not serve them.
    async with http.get(observed.proxy.url + "/metrics", headers=_auth(METRICS_TOKEN)) as resp:
        assert resp.status == 404


async def test_request_log_has_one_line_per_request_and_no_secret_or_text(observed: Observed):
    lines = [line for line in observed.proxy.logs().splitlines() if line.startswith("{")]
    entries = [orjson.loads(line) for line in lines]
    assert len(entries) == observed.rounds * len(ROUND), lines
    assert Counter(str(e["status"]) for e in entries) == Counter(
        {s: n * observed.rounds for s, n in Counter(RECORDED_STATUSES).items()}
    )
    routed = [e for e in entries if e["request_id"] is not None and "error" not in e]
    assert {e["customer"] for e in routed} == {"acme", "globex", "initech"}
    refused = [e for e in entries if e["request_id"] is not None and "error" in e]
    assert {(e["customer"], e["provider"], e["status"]) for e in refused} == {
        ("frugal", "openai", 429)
    }
    reasons = {reason for e in routed for reason in e["upstream_errors"]}
    assert reasons == {"server_error", "rate_limited", "broken"}, routed
    # Not compared with latency_ms: that ends when the record is settled, the overhead a
    # little later, once the response is handed over and the record submitted.
    assert all(e["overhead_ms"] >= 0 for e in routed), routed
    text = observed.proxy.logs()
    for secret in SECRETS:
        assert secret not in text
    assert PROMPT_MARKER not in text
    assert "word0 word1" not in text  # the fake upstream's reply text
