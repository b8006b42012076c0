"""Through a real proxy: 1,000 distinct customers with `max_customers: 100` leave at most
101 customer label values, and not one request uncounted. /metrics is on the main port here.

The same bound with 10,000 customers is tested in-process (tests/test_metrics.py): the
proxy serves ~800 requests/s to this one-process client, so 10,000 here would take 13 s."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.procs import ServerProcess, start_proxy
from tests.support.stack import BACKEND_KEY, ENV, base_config

CUSTOMERS = 1_000
MAX_CUSTOMERS = 100
CONCURRENCY = 64


@pytest.fixture(scope="module")
def proxy(
    upstream: ServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    directory = tmp_path_factory.mktemp("cardinality")
    config = base_config(
        upstream.url, {"backend": "sqlite", "sqlite_path": str(directory / "costproxy.db")}
    )
    config["metrics"] = {"max_customers": MAX_CUSTOMERS}
    config["request_log"] = {"enabled": False}
    server = start_proxy(config, directory, ENV)
    yield server
    server.stop()


async def test_a_thousand_customers_leave_at_most_101_label_values(proxy: ServerProcess):
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as http:
        queue = list(range(CUSTOMERS))

        async def worker() -> None:
            while queue:
                i = queue.pop()
                headers = {"Authorization": f"Bearer {BACKEND_KEY}", "X-Customer-Id": f"c{i}"}
                body = {"model": "text-embedding-3-small", "input": "hi"}
                async with http.post(proxy.url + "/v1/embeddings", json=body, headers=headers) as r:
                    assert r.status == 200, await r.text()
                    await r.read()

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        async with http.get(proxy.url + "/metrics") as resp:
            assert resp.status == 200  # no metrics.token: open on the main port
            exposition = await resp.text()

    requests = Counter()
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == "costproxy_requests_total":
                requests[sample.labels["customer"]] += sample.value
    assert len(requests) <= MAX_CUSTOMERS + 1, f"{len(requests)} customer label values"
    assert requests["other"] >= CUSTOMERS - MAX_CUSTOMERS
    assert sum(requests.values()) == CUSTOMERS
