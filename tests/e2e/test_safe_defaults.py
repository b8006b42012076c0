"""Safe by default (before: /metrics was open on the API's port and named every customer
with its spend; the compose stack and the quickstart fronted a real provider key with
published demo secrets; the SQLite file and the journal were 0644)."""

from __future__ import annotations

import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
import yaml

from tests.support.outage import FAST, health, wait_until
from tests.support.procs import REPO, ServerProcess, free_port, start_proxy
from tests.support.redis_server import RedisServer
from tests.support.stack import ENV, METRICS_TOKEN, base_config, chat_status

BALANCER = "127.0.0.3"  # a trusted proxy in front: it says which client a request is from


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def proxy_config(upstream: ServerProcess, directory: Path, **sections: dict) -> dict:
    config = base_config(
        upstream.url, {"backend": "sqlite", "sqlite_path": str(directory / "data" / "usage.db")}
    )
    config["server"] = {**config["server"], "trusted_proxies": [BALANCER]}
    return config | sections


@pytest.fixture(scope="module")
def default_proxy(
    upstream: ServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServerProcess, Path]]:
    directory = tmp_path_factory.mktemp("defaults")
    proxy = start_proxy(proxy_config(upstream, directory), directory, ENV)
    yield proxy, directory
    proxy.stop()


async def scrape(url: str, source: str, forwarded_for: str | None = None, token: str | None = None):
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    connector = aiohttp.TCPConnector(local_addr=(source, 0))
    async with (
        aiohttp.ClientSession(connector=connector) as http,
        http.get(url + "/metrics", headers=headers) as resp,
    ):
        return resp.status, await resp.text()


async def test_metrics_answer_loopback_only_and_name_no_customer(
    default_proxy: tuple[ServerProcess, Path], http: aiohttp.ClientSession
) -> None:
    proxy, _ = default_proxy
    assert await chat_status(http, proxy.url) == 200
    status, text = await scrape(proxy.url, "127.0.0.1")
    assert status == 200
    assert 'customer="other"' in text and "acme" not in text  # no customer named by default

    # A client elsewhere (its request relayed by the trusted balancer) gets nothing.
    status, text = await scrape(proxy.url, BALANCER, forwarded_for="203.0.113.5")
    assert status == 403, text
    assert '"metrics_loopback_only"' in text
    assert "costproxy_requests_total" not in text


async def test_a_metrics_token_opens_them_to_other_addresses(
    upstream: ServerProcess, tmp_path: Path
) -> None:
    config = proxy_config(upstream, tmp_path, metrics={"token": "${T_METRICS_TOKEN}"})
    proxy = start_proxy(config, tmp_path, {**ENV, "T_METRICS_TOKEN": METRICS_TOKEN})
    try:
        remote = {"forwarded_for": "203.0.113.5"}
        assert (await scrape(proxy.url, BALANCER, **remote, token=METRICS_TOKEN))[0] == 200
        assert (await scrape(proxy.url, BALANCER, **remote))[0] == 401
    finally:
        proxy.stop()


async def test_the_store_and_journal_are_created_private(
    default_proxy: tuple[ServerProcess, Path], upstream: ServerProcess, tmp_path: Path
) -> None:
    _, directory = default_proxy
    data = directory / "data"
    assert mode(data) == 0o700
    files = {p.name: mode(p) for p in data.iterdir() if p.is_file()}
    assert {"usage.db", "usage.db-wal", "usage.db-shm"} <= set(files)
    assert set(files.values()) == {0o600}, files

    # A Redis store that goes down: the records go to the journal.
    with RedisServer() as redis:
        store = {"backend": "redis", "redis_url": redis.url, **FAST}
        store["journal_path"] = str(tmp_path / "journal")
        proxy = start_proxy(base_config(upstream.url, store), tmp_path, ENV)
        redis.stop()
        try:
            async with aiohttp.ClientSession() as http:

                async def journaled() -> bool:
                    assert await chat_status(http, proxy.url) == 200
                    return (await health(http, proxy.url))["journal_pending_records"] > 0

                await wait_until(journaled)
        finally:
            proxy.stop()
    journal = tmp_path / "journal"
    assert mode(journal) == 0o700
    files = {p.name: mode(p) for p in journal.iterdir()}
    assert any(name.endswith(".jsonl") for name in files), files
    assert set(files.values()) == {0o600}, files


def compose_environment() -> dict[str, str]:
    """The proxy's environment as docker-compose.yml sets it with no shell variables set."""
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    return {
        name: re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", str(value))
        for name, value in compose["services"]["proxy"]["environment"].items()
    }


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    base = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "HOME": str(cwd)}
    return subprocess.run(
        [sys.executable, "-m", "proxy", *args],
        env=base | env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_compose_stack_refuses_its_demo_secrets_beside_a_real_key(tmp_path: Path) -> None:
    config = REPO / "config" / "compose" / "costproxy.yaml"
    env = compose_environment() | {"OPENAI_API_KEY": "sk-proj-real-looking-key"}
    result = run(["serve", "--config", str(config)], env, tmp_path)
    assert result.returncode == 1
    for variable in ("COSTPROXY_ADMIN_TOKEN", "COSTPROXY_CLIENT_KEY", "GRAFANA_ADMIN_PASSWORD"):
        assert f"set {variable} to a secret of your own" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert "sk-proj-real-looking-key" not in result.stderr + result.stdout

    # Without a provider key (the demo profile), the same defaults load.
    demo = run(["check-config", str(config)], compose_environment(), tmp_path)
    assert demo.returncode == 0, demo.stderr
    own = {
        "COSTPROXY_ADMIN_TOKEN": "an-admin-token-of-our-own",
        "COSTPROXY_CLIENT_KEY": "sk-a-client-key-of-our-own",
        "GRAFANA_ADMIN_PASSWORD": "a-grafana-password",
    }
    assert run(["check-config", str(config)], env | own, tmp_path).returncode == 0


def test_the_quickstart_refuses_its_demo_keys_beside_a_real_key(tmp_path: Path) -> None:
    quickstart = [
        "quickstart",
        "--config",
        str(REPO / "config" / "quickstart.yaml"),
        "--port",
        str(free_port()),
        "--fake-port",
        str(free_port()),
    ]
    result = run(quickstart, {"OPENAI_API_KEY": "sk-proj-real-looking-key"}, tmp_path)
    assert result.returncode == 1
    for variable in ("ACME_KEY", "GLOBEX_KEY", "BACKEND_KEY"):
        assert f"set {variable} to a secret of your own" in result.stderr, result.stderr
    # The admin token it generated is its owner's only, from its first byte.
    assert mode(tmp_path / "data") == 0o700
    assert mode(tmp_path / "data" / "admin-token") == 0o600
