"""Several fake upstreams behind one proxy: config building, restarts and admin calls."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path

import aiohttp
import yaml

from tests.support.procs import ServerProcess, free_port, start_upstream
from tests.support.stack import ADMIN_TOKEN

__all__ = [
    "ADMIN",
    "admin_get",
    "config_path",
    "cost_nusd",
    "dead_url",
    "restart_upstream",
    "rewrite_config",
    "start_upstreams",
    "usage_record",
]

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def cost_nusd(prices: tuple[str, str, str], input_tokens: int, cached: int, output: int) -> int:
    """Expected cost from USD-per-1M literals (input, cached input, output), computed with
    exact fractions and rounded half to even once, independently of proxy.accounting.pricing."""
    price_in, price_cached, price_out = (Fraction(p) for p in prices)
    usd_times_million = (
        (input_tokens - cached) * price_in + cached * price_cached + output * price_out
    )
    return round(usd_times_million * 1000)


def restart_upstream(server: ServerProcess, *extra_args: str) -> ServerProcess:
    """Stop `server` and start a fake upstream on the same port, maybe with other options."""
    server.stop()
    again = ServerProcess(
        ["mock-upstream", "--port", str(server.port), *extra_args],
        port=server.port,
        health_path=server.health_path,
        env=server.env,
    )
    return again.start()


def dead_url() -> str:
    """A loopback URL where nothing listens: connections are refused."""
    return f"http://127.0.0.1:{free_port()}/v1"


def config_path(proxy: ServerProcess) -> Path:
    return Path(proxy.args[proxy.args.index("--config") + 1])


def rewrite_config(proxy: ServerProcess, change) -> None:
    """Apply `change(config_dict)` to the proxy's config file (server section kept)."""
    path = config_path(proxy)
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


async def admin_get(http: aiohttp.ClientSession, proxy: ServerProcess, path: str) -> dict:
    async with http.get(proxy.url + path, headers=ADMIN) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def usage_record(http: aiohttp.ClientSession, proxy: ServerProcess, request_id: str) -> dict:
    return await admin_get(http, proxy, f"/admin/v1/usage/{request_id}")


def start_upstreams(*options: tuple[str, ...]) -> list[ServerProcess]:
    """One fake upstream per tuple of extra arguments, started side by side."""
    with ThreadPoolExecutor(max_workers=len(options)) as pool:
        return list(pool.map(lambda extra: start_upstream(*extra), options))
