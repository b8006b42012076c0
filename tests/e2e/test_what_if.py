"""What-if figures end to end, on both stores: records, the spend API and the report CLI."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid

import aiohttp

from tests.support.fleet import config_path, cost_nusd
from tests.support.procs import REPO
from tests.support.stack import ALTERNATIVES, BACKEND_KEY, ENV, PRICES, Stack

MINI, BUDGET = "rival/mini-like", "rival/budget"
# (route, upstream model, usage "in,cached,out,reasoning", stream)
REQUESTS = [
    ("gpt-4o-mini", "gpt-4o-mini", (1200, 200, 300, 50), False),
    ("gpt-4o-mini", "gpt-4o-mini", (40, 0, 8, 0), True),
    ("story", "cheap-model", (10_000, 3, 5_000, 0), False),
    ("unpriced", "no-price-model", (10, 0, 5, 0), False),
]


def alternatives(model: str) -> list[str]:
    return [MINI, BUDGET] if model == "gpt-4o-mini" else [BUDGET]


async def send(http: aiohttp.ClientSession, stack: Stack, customer: str, request: tuple) -> str:
    route, _, usage, stream = request
    headers = {
        "Authorization": f"Bearer {BACKEND_KEY}",
        "X-Customer-Id": customer,
        "x-mock-usage": ",".join(map(str, usage)),
    }
    body = {"model": route, "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    async with http.post(stack.url + "/v1/chat/completions", json=body, headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        await resp.read()
        return resp.headers["x-request-id"]


async def test_what_if_equals_token_counts_times_alternative_prices(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    customer = f"whatif-{uuid.uuid4().hex[:8]}"
    ids = await asyncio.gather(*(send(http, stack, customer, r) for r in REQUESTS))

    expected: dict[tuple[str, str], list[int]] = {}  # (alternative, model) → [actual, alt]
    for request_id, (_, model, (i, c, o, _r), _) in zip(ids, REQUESTS, strict=True):
        record = await stack.usage(http, request_id)
        want = {alt: cost_nusd(ALTERNATIVES[alt], i, c, o) for alt in alternatives(model)}
        assert record["what_if"] == want
        actual = cost_nusd(PRICES[model], i, c, o) if model in PRICES else 0
        assert record["cost_nusd"] == (actual if model in PRICES else None)
        for alt, nusd in want.items():
            sums = expected.setdefault((alt, model), [0, 0])
            sums[0] += actual
            sums[1] += nusd

    spend = await stack.spend(http, customer=customer, group_by="model", what_if="1")
    section = spend["what_if"]
    assert "tokenizer" in section["note"]
    got = {(g["alternative"], g["model"]): g for g in section["groups"]}
    assert got.keys() == expected.keys()
    for key, (actual, alternative) in expected.items():
        group = got[key]
        assert group["actual_cost_usd"] == usd(actual)
        assert group["alternative_cost_usd"] == usd(alternative)
        priced = key[1] in PRICES
        assert group["saving_usd"] == (usd(actual - alternative) if priced else None)
    assert got[(MINI, "gpt-4o-mini")]["requests"] == 2
    # The plain spend answer is unchanged by what-if rules.
    assert spend["total"]["requests"] == len(REQUESTS)

    out = report(stack, customer)
    assert "What if" in out and "tokenizer" in out
    line = next(row for row in out.splitlines() if row.startswith(MINI) and customer in row)
    mini = expected[(MINI, "gpt-4o-mini")]
    assert line.split()[-3:] == [usd(mini[0]), usd(mini[1]), usd(mini[0] - mini[1])]


def usd(nusd: int) -> str:
    sign = "-" if nusd < 0 else ""
    return f"{sign}{abs(nusd) // 10**9}.{abs(nusd) % 10**9:09d}"


def report(stack: Stack, customer: str) -> str:
    command = [sys.executable, "-m", "proxy", "report", "--config", str(config_path(stack.proxy))]
    done = subprocess.run(
        [*command, "--customer", customer, "--what-if"],
        cwd=REPO,
        env={**os.environ, **ENV},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout
