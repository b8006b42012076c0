"""`python -m bench --scenarios console`: the console's pages on a big history.

Seeds each store with 1,000,000 usage records over 90 days and 10,000 customers, written
straight through the store's own batched write path (the same group commit the proxy
uses), then starts a proxy on that store and times each page: the server's own time from
the page's Server-Timing header, and the time the client waited.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
import urllib.parse
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import orjson

from bench import stack
from proxy.accounting.records import UsageRecord
from proxy.config import StoreConfig
from proxy.store.factory import make_store

__all__ = ["PAGES", "run_console"]

_DAY_MS = 86_400_000
_ROUTES = [
    ("gpt-4o-mini", "openai", "gpt-4o-mini", 150, 600),
    ("gpt-4o", "openai", "gpt-4o-2024-08-06", 2500, 10000),
    ("claude", "anthropic", "claude-3-5-sonnet", 3000, 15000),
    ("llama", "groq", "llama-3.1-70b", 590, 790),
    ("mystery", "vllm", "house-model", None, None),  # unpriced
]


def _pages(today: str, first90: str, first30: str, customer: str) -> list[tuple[str, str]]:
    return [
        ("overview (30 days)", f"/ui/?from={first30}&to={today}"),
        ("overview (90 days)", f"/ui/?from={first90}&to={today}"),
        ("customers (90 days, by spend)", f"/ui/customers?from={first90}&to={today}"),
        ("customers (90 days, page 50)", f"/ui/customers?from={first90}&to={today}&page=50"),
        ("customers (90 days, by tokens)", f"/ui/customers?from={first90}&to={today}&sort=tokens"),
        ("customers (90 days, search)", f"/ui/customers?from={first90}&to={today}&q=c0042"),
        ("customer (90 days)", f"/ui/customers/{customer}?from={first90}&to={today}"),
        ("requests (all)", "/ui/requests"),
        ("requests (one customer)", f"/ui/requests?customer={customer}"),
        ("requests (status 500)", "/ui/requests?status=500"),
    ]


PAGES = [name for name, _ in _pages("", "", "", "")]


def _records(count: int, customers: int, days: int, seed: int = 16) -> list[UsageRecord]:
    """`count` records over the last `days` UTC days; customer sizes spread like real
    traffic (a few large, many small)."""
    rng = random.Random(seed)
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    start_ms = now_ms - days * _DAY_MS + 60_000
    weights = [1 / (1 + i) ** 0.6 for i in range(customers)]
    names = [f"c{i:05d}" for i in range(customers)]
    chosen = rng.choices(names, weights=weights, k=count)
    out = []
    for i, customer in enumerate(chosen):
        route, provider, model, p_in, p_out = _ROUTES[rng.randrange(len(_ROUTES))]
        tokens_in, tokens_out = rng.randrange(50, 4000), rng.randrange(10, 1200)
        cost = None if p_in is None else (tokens_in * p_in + tokens_out * p_out)  # nano-$ at $/1M
        out.append(
            UsageRecord(
                request_id=f"seed-{i}",
                ts_ms=start_ms + (now_ms - start_ms - 120_000) * i // count,
                customer=customer,
                route=route,
                provider=provider,
                model=model,
                endpoint="chat.completions",
                status=500 if rng.random() < 0.002 else 200,
                input_tokens=tokens_in,
                output_tokens=tokens_out,
                cost_nusd=cost,
                tags=(f"feature=f{rng.randrange(8)}",),
                end_user=f"u{rng.randrange(50)}",
                key_id="bench",
                latency_ms=rng.uniform(100, 3000),
            )
        )
    return out


async def _seed(config: StoreConfig, records: list[UsageRecord], batch: int = 2000) -> float:
    store = make_store(config)
    await store.open()
    began = time.perf_counter()
    try:
        for start in range(0, len(records), batch):
            chunk = records[start : start + batch]
            await asyncio.gather(*(store.record_usage(r) for r in chunk))
    finally:
        await store.close()
    return time.perf_counter() - began


async def _time_pages(url: str, pages: list[tuple[str, str]], repeats: int) -> dict[str, dict]:
    # unsafe=True: keep cookies of an IP-address host (127.0.0.1).
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.post(
            url + "/ui/login",
            data={"token": stack.ADMIN_TOKEN, "next": "/ui/"},
            headers={"Origin": url},
            allow_redirects=False,
        ) as resp:
            assert resp.status == 303, await resp.text()
        out = {}
        for name, path in pages:
            server, client = [], []
            for _ in range(repeats + 1):  # the first is a warm-up
                began = time.perf_counter()
                async with http.get(url + path, allow_redirects=False) as resp:
                    await resp.read()
                    assert resp.status == 200, (path, resp.status)  # not sent to log in
                    timing = resp.headers["Server-Timing"]
                client.append((time.perf_counter() - began) * 1000)
                server.append(float(timing.split("dur=")[1]))
            server, client = server[1:], client[1:]
            out[name] = {
                "path": urllib.parse.unquote(path),
                "server_ms_p50": statistics.median(server),
                "server_ms_max": max(server),
                "client_ms_p50": statistics.median(client),
            }
    return out


def run_console(args: argparse.Namespace, results: Path) -> int:
    count, customers, days = args.console_records, 10_000, 90
    print(f"generating {count:,} records over {days} days and {customers:,} customers", flush=True)
    records = _records(count, customers, days)
    today = datetime.now(UTC).date()
    pages = _pages(
        today.isoformat(),
        (today - timedelta(days=days - 1)).isoformat(),
        (today - timedelta(days=29)).isoformat(),
        "c00000",  # the largest customer
    )
    workdir = stack.make_workdir()
    servers: list[stack.Server] = []
    report: dict[str, dict] = {}
    try:
        upstream = stack.start_upstream(None, workdir)
        servers.append(upstream)
        for store in [s for s in args.stores.split(",") if s and s != "none"]:
            if store == "redis":
                redis = stack.start_redis(None, workdir)
                servers.append(redis)
                url = f"redis://127.0.0.1:{redis.port}/0"
                config = {"backend": "redis", "redis_url": url, "key_prefix": "bench:"}
            else:
                config = {"backend": "sqlite", "sqlite_path": str(workdir / "console.db")}
            config["usage_log_max"] = 2_000_000
            seed_s = asyncio.run(_seed(StoreConfig.model_validate(config), records))
            print(
                f"{store}: seeded in {seed_s:.0f} s ({count / seed_s:,.0f} records/s)", flush=True
            )
            proxy, _ = stack.start_proxy(f"console-{store}", None, workdir, upstream.url, config)
            servers.append(proxy)
            timings = asyncio.run(_time_pages(proxy.url, pages, args.repeats))
            report[store] = {"seed_s": seed_s, "pages": timings}
    finally:
        for server in reversed(servers):
            server.stop()
    _print(report)
    results.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = results / f"console-{stamp}.json"
    document = {"records": count, "customers": customers, "days": days, "stores": report}
    path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    print(f"wrote {path}")
    return 0


def _print(report: dict[str, dict]) -> None:
    stores = list(report)
    print()
    print(f"{'page':34}" + "".join(f"{s + ' server p50 / max ms':>32}" for s in stores))
    for name in PAGES:
        cells = []
        for s in stores:
            t = report[s]["pages"][name]
            cells.append(f"{t['server_ms_p50']:>20.1f} / {t['server_ms_max']:>7.1f}")
        print(f"{name:34}" + "".join(f"{c:>32}" for c in cells))
