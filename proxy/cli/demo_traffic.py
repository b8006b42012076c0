"""`python -m proxy.cli.demo_traffic`: steady, varied traffic for the demo dashboards.

Several customers, models, streams and the occasional upstream error, through a trusted key
and the fake upstream (whose `x-mock-*` headers set the usage and errors). Never aimed at a
real provider: it would spend real money.
"""

from __future__ import annotations

import argparse
import asyncio
import random
from collections.abc import Sequence

import aiohttp

__all__ = ["build_parser", "main", "plan_request", "run"]

# Customer → share of the traffic: a few big ones and a long tail, as in real life.
CUSTOMERS = {"acme": 30, "globex": 20, "initech": 12, "umbrella": 8, "hooli": 5, "stark": 3}
FEATURES = ("chat", "search", "summaries", "agents")
DEFAULT_MODELS = ("demo-gpt-4o-mini", "demo-gpt-4o", "demo-o4-mini", "demo-embedding",
                  "demo-unpriced")  # fmt: skip


def plan_request(rng: random.Random, models: Sequence[str]) -> tuple[str, dict, dict[str, str]]:
    """(path, body, headers) of one request. Pure: a seeded generator gives the same plan."""
    model = rng.choice(models)
    customer = rng.choices(list(CUSTOMERS), weights=list(CUSTOMERS.values()))[0]
    prompt = rng.randint(200, 20_000)
    cached = rng.choice((0, 0, prompt // 2))
    output = 0 if "embedding" in model else rng.randint(50, 2_000)
    reasoning = output // 3 if "o4" in model else 0
    headers = {
        "X-Customer-Id": customer,
        "X-Cost-Tags": f"feature={rng.choice(FEATURES)}",
        "x-mock-usage": f"{prompt},{cached},{output},{reasoning}",
        "x-mock-latency-ms": str(rng.randint(100, 900)),
    }
    if rng.random() < 0.03:
        headers["x-mock-status"] = rng.choice(("429", "500", "503"))
    if "embedding" in model:
        return "/v1/embeddings", {"model": model, "input": "demo"}, headers
    headers["x-mock-chunk-delay-ms"] = str(rng.randint(5, 40))
    body = {
        "model": model,
        "messages": [{"role": "user", "content": "demo"}],
        "stream": rng.random() < 0.6,
        "user": f"user-{rng.randint(1, 500)}",
    }
    return "/v1/chat/completions", body, headers


async def run(
    url: str,
    key: str,
    *,
    rate: float,
    models: Sequence[str],
    count: int | None = None,
    seed: int = 0,
) -> dict[int, int]:
    """Send `rate` requests a second (forever, or `count` of them); the statuses seen."""
    rng = random.Random(seed)
    statuses: dict[int, int] = {}
    pending: set[asyncio.Task[None]] = set()

    async def send(http: aiohttp.ClientSession, path: str, body: dict, headers: dict) -> None:
        try:
            async with http.post(url + path, json=body, headers=headers) as resp:
                await resp.read()
                statuses[resp.status] = statuses.get(resp.status, 0) + 1
        except aiohttp.ClientError as exc:  # the proxy restarting: keep going
            print(f"demo traffic: {type(exc).__name__}: {exc}", flush=True)

    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {key}"}) as http:
        sent = 0
        while count is None or sent < count:
            task = asyncio.create_task(send(http, *plan_request(rng, models)))
            pending.add(task)
            task.add_done_callback(pending.discard)
            sent += 1
            await asyncio.sleep(rng.expovariate(rate))
        await asyncio.gather(*pending)
    return statuses


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m proxy.cli.demo_traffic", description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="the proxy")
    parser.add_argument("--key", required=True, help="a trusted client key of the proxy")
    parser.add_argument("--rate", type=float, default=2.0, help="requests per second")
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS), help="comma list")
    parser.add_argument("--count", type=int, help="stop after this many requests")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    models = [m for m in args.models.split(",") if m]
    print(f"demo traffic: {args.rate}/s to {args.url} ({', '.join(models)})", flush=True)
    statuses = asyncio.run(
        run(args.url.rstrip("/"), args.key, rate=args.rate, models=models, count=args.count)
    )
    print(f"demo traffic: statuses {statuses}", flush=True)


if __name__ == "__main__":
    main()
