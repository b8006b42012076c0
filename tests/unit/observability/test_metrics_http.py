"""`GET /metrics` in-process: on the main port, with and without `metrics.token`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from proxy.app import create_app
from proxy.config import parse_config
from proxy.observability.metrics import CONTENT_TYPE

TOKEN = "metrics-token-0123456789"


def _config(tmp_path: Path, metrics: dict) -> dict:
    return {
        "store": {"backend": "sqlite", "sqlite_path": str(tmp_path / "costproxy.db")},
        "providers": {"openai": {"base_url": "http://127.0.0.1:9/v1"}},
        "models": {"m": {"targets": [{"provider": "openai", "model": "m"}]}},
        "metrics": metrics,
    }


async def _client(tmp_path: Path, metrics: dict) -> AsyncIterator[TestClient]:
    app = create_app(parse_config(_config(tmp_path, metrics)))
    async with TestClient(TestServer(app)) as client:
        yield client


@pytest.fixture
async def open_metrics(tmp_path: Path) -> AsyncIterator[TestClient]:
    async for client in _client(tmp_path, {}):
        yield client


@pytest.fixture
async def guarded_metrics(tmp_path: Path) -> AsyncIterator[TestClient]:
    async for client in _client(tmp_path, {"token": TOKEN}):
        yield client


async def test_metrics_on_the_main_port(open_metrics: TestClient):
    async with open_metrics.post("/v1/chat/completions", json={}) as resp:
        assert resp.status == 401  # no key: rejected before routing
    async with open_metrics.get("/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == CONTENT_TYPE
        text = await resp.text()
    assert (
        'costproxy_requests_total{model="none",provider="none",customer="other",status="401"} 1.0'
        in text
    )
    assert "costproxy_inflight_requests 0.0" in text  # the scrape is not an LLM request


async def test_metrics_token(guarded_metrics: TestClient):
    async with guarded_metrics.get("/metrics") as resp:
        assert resp.status == 401
        assert (await resp.json())["error"]["code"] == "invalid_metrics_token"
    headers = {"Authorization": f"Bearer {TOKEN}x"}
    async with guarded_metrics.get("/metrics", headers=headers) as resp:
        assert resp.status == 401
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with guarded_metrics.get("/metrics", headers=headers) as resp:
        assert resp.status == 200
        assert "costproxy_requests_total" in await resp.text()
