"""The compose stack's proxy config, run for real (Redis store, the fake upstream as the
"demo" provider), fed by the demo traffic generator: the dashboards' demo has data."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import aiohttp
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from proxy.cli import demo_traffic
from tests.support.procs import REPO, ServerProcess, free_port, start_proxy
from tests.support.redis_server import RedisServer

CLIENT_KEY = "sk-demo-client-SECRET-0f1e"


@pytest.fixture(scope="module")
def demo_proxy(
    upstream: ServerProcess, redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServerProcess, int]]:
    config = yaml.safe_load((REPO / "config/compose/costproxy.yaml").read_text())
    metrics_port = free_port()
    config["metrics"]["port"] = metrics_port  # 9464 may be taken on a test machine
    config["store"]["key_prefix"] = "demo-stack:"
    env = {
        "REDIS_URL": redis_server.url,
        "COSTPROXY_DEMO_UPSTREAM_URL": upstream.url + "/v1",
        "COSTPROXY_ADMIN_TOKEN": "demo-admin-token-of-some-length",
        "COSTPROXY_CLIENT_KEY": CLIENT_KEY,
    }
    proxy = start_proxy(config, tmp_path_factory.mktemp("demo-stack"), env)
    yield proxy, metrics_port
    proxy.stop()


async def test_demo_traffic_fills_the_metrics(demo_proxy: tuple[ServerProcess, int]):
    proxy, metrics_port = demo_proxy
    statuses = await demo_traffic.run(
        proxy.url, CLIENT_KEY, rate=500, models=demo_traffic.DEFAULT_MODELS, count=60, seed=3
    )
    assert sum(statuses.values()) == 60
    assert statuses[200] >= 50  # a few injected 429/5xx
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{metrics_port}/metrics") as resp,
    ):
        exposition = await resp.text()
    customers, unpriced, spend, what_if = Counter(), 0.0, 0.0, Counter()
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == "costproxy_requests_total":
                customers[sample.labels["customer"]] += sample.value
            elif sample.name == "costproxy_unpriced_requests_total":
                unpriced += sample.value
            elif sample.name == "costproxy_cost_usd_total":
                spend += sample.value
            elif sample.name == "costproxy_whatif_cost_usd_total":
                what_if[sample.labels["alternative"]] += sample.value
    assert set(customers) <= set(demo_traffic.CUSTOMERS)
    assert len(customers) >= 4
    assert unpriced > 0 and spend > 0
    assert set(what_if) == {"openai/gpt-4o-mini", "deepseek/deepseek-chat"}
    assert all(value > 0 for value in what_if.values())
