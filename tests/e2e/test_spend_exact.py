"""Exact money: after many requests with known usage, the spend API returns exactly Σ cost."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import defaultdict
from datetime import UTC, datetime

import aiohttp

from tests.support.money import expected_nusd, usd
from tests.support.stack import BACKEND_KEY, Stack

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
