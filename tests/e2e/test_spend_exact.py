"""Exact money: after many requests with known usage, the spend API returns exactly Σ cost;
what-if figures are exactly the same token counts × the alternatives' prices."""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import uuid
from collections import defaultdict
from datetime import UTC, datetime

import aiohttp

from tests.support.fleet import config_path, cost_nusd
from tests.support.money import expected_nusd, nusd, usd
from tests.support.procs import REPO
from tests.support.stack import ALTERNATIVES, BACKEND_KEY, ENV, PRICES, Stack

ROUTES = {"gpt-4o-mini": "gpt-4o-mini", "story": "cheap-model"}  # route → upstream model


def plan(seed: int, customers: list[str]) -> list[dict]:
    rng = random.Random(seed)
    requests = []
    for _ in range(60):
        route = rng.choice(list(ROUTES))
        input_tokens = rng.randint(1, 50_000)
        cached = rng.randint(0, input_tokens)
        output = rng.randint(0, 8_000)
        requests.append(
            {
                "customer": rng.choice(customers),
                "route": route,
                "usage": (input_tokens, cached, output, rng.randint(0, output)),
                "tag": rng.choice([None, "feature=story", "feature=npc"]),
                "end_user": rng.choice([None, "player-1", "player-2"]),
                "stream": rng.random() < 0.5,
            }
        )
    return requests


async def send(http: aiohttp.ClientSession, stack: Stack, req: dict) -> None:
    headers = {
        "Authorization": f"Bearer {BACKEND_KEY}",
        "X-Customer-Id": req["customer"],
        "x-mock-usage": ",".join(map(str, req["usage"])),
    }
    if req["tag"]:
        headers["X-Cost-Tags"] = req["tag"]
    body = {
        "model": req["route"],
        "messages": [{"role": "user", "content": "hello"}],
        "stream": req["stream"],
    }
    if req["end_user"]:
        body["user"] = req["end_user"]
    async with http.post(stack.url + "/v1/chat/completions", json=body, headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        await resp.read()


async def test_spend_is_exact_and_groups_sum_to_the_total(
    stack: Stack, http: aiohttp.ClientSession
):
    run = uuid.uuid4().hex[:8]
    customers = [f"acme-{run}", f"globex-{run}", f"initech-{run}"]
    requests = plan(seed=7, customers=customers)
    for i in range(0, len(requests), 12):  # concurrent batches
        await asyncio.gather(*(send(http, stack, req) for req in requests[i : i + 12]))

    by_customer: dict[str, int] = defaultdict(int)
    by_model: dict[tuple[str, str], int] = defaultdict(int)
    by_tag: dict[tuple[str, str | None], int] = defaultdict(int)
    by_user: dict[tuple[str, str | None], int] = defaultdict(int)
    tokens: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for req in requests:
        model = ROUTES[req["route"]]
        cost = expected_nusd(model, *req["usage"][:3])
        by_customer[req["customer"]] += cost
        by_model[(req["customer"], model)] += cost
        by_tag[(req["customer"], req["tag"])] += cost
        by_user[(req["customer"], req["end_user"])] += cost
        for i, value in enumerate(req["usage"]):
            tokens[req["customer"]][i] += value

    for customer in customers:
        spend = await stack.spend(http, customer=customer, group_by="model")
        total = spend["total"]
        assert total["cost_usd"] == usd(by_customer[customer])
        assert total["requests"] == sum(r["customer"] == customer for r in requests)
        assert [
            total["input_tokens"],
            total["cached_input_tokens"],
            total["output_tokens"],
            total["reasoning_tokens"],
        ] == tokens[customer]
        groups = {g["model"]: g["cost_usd"] for g in spend["groups"]}
        assert groups == {
            model: usd(cost) for (c, model), cost in by_model.items() if c == customer
        }
        assert (
            sum(int(g["cost_usd"].replace(".", "")) for g in spend["groups"])
            == by_customer[customer]
        )

        tags = await stack.spend(http, customer=customer, group_by="tag")
        assert {g["tag"]: g["cost_usd"] for g in tags["groups"]} == {
            tag: usd(cost) for (c, tag), cost in by_tag.items() if c == customer
        }
        users = await stack.spend(http, customer=customer, group_by="end_user,route")
        per_user: dict[str | None, int] = defaultdict(int)
        for g in users["groups"]:
            per_user[g["end_user"]] += int(g["cost_usd"].replace(".", ""))
        assert dict(per_user) == {
            user: cost for (c, user), cost in by_user.items() if c == customer
        }

    # Across customers: group by customer and day; today's UTC date is the only day.
    today = datetime.now(UTC).date().isoformat()
    everyone = await stack.spend(http, group_by="customer,day", **{"from": today, "to": today})
    mine = {g["customer"]: g for g in everyone["groups"] if g["customer"] in customers}
    assert {c: g["cost_usd"] for c, g in mine.items()} == {
        c: usd(v) for c, v in by_customer.items()
    }
    assert all(g["day"] == today for g in mine.values())
    assert sum(int(g["cost_usd"].replace(".", "")) for g in everyone["groups"]) == int(
        everyone["total"]["cost_usd"].replace(".", "")
    )


# --- what if ---------------------------------------------------------------------------

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


async def send_usage(
    http: aiohttp.ClientSession, stack: Stack, customer: str, request: tuple
) -> str:
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
    ids = await asyncio.gather(*(send_usage(http, stack, customer, r) for r in REQUESTS))

    expected: dict[tuple[str, str], list[int]] = {}  # (alternative, model) → [actual, alt]
    for request_id, (_, model, (i, c, o, _r), _) in zip(ids, REQUESTS, strict=True):
        record = await stack.usage(http, request_id)
        want = {alt: cost_nusd(ALTERNATIVES[alt], i, c, o) for alt in alternatives(model)}
        assert record["what_if"] == {alt: usd(cost) for alt, cost in want.items()}
        actual = cost_nusd(PRICES[model], i, c, o) if model in PRICES else 0
        assert nusd(record["cost_usd"]) == (actual if model in PRICES else None)
        for alt, cost in want.items():
            sums = expected.setdefault((alt, model), [0, 0])
            sums[0] += actual
            sums[1] += cost

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
