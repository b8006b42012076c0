"""Numbers a client sends cannot overflow the proxy's arithmetic: integer fields beyond
what any model accepts get 400, and the largest accepted request reserves a bounded
amount on either store (before: `max_tokens: 1e15` under a soft budget was 503
`store_unavailable`, an OverflowError in SQLite and a ResponseError in Redis, and raised
the critical store alert)."""

from __future__ import annotations

import uuid

import aiohttp
import pytest

from tests.support.stack import BACKEND_KEY, Stack

CHAT = "/v1/chat/completions"
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
INT32_MAX = 2**31 - 1


def as_customer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {BACKEND_KEY}", "X-Customer-Id": name}


async def budget(stack: Stack, http: aiohttp.ClientSession, *, hard: bool) -> str:
    name = f"big-{uuid.uuid4().hex[:10]}"
    body = {"budgets": [{"period": "monthly", "limit_usd": "1", "hard": hard}]}
    async with http.put(
        f"{stack.url}/admin/v1/budgets/customer/{name}", json=body, headers=stack.admin_headers
    ) as resp:
        assert resp.status == 200, await resp.text()
    return name


async def store_errors(stack: Stack, http: aiohttp.ClientSession) -> list[str]:
    async with http.get(stack.url + "/metrics") as resp:
        text = await resp.text()
    return [
        line
        for line in text.splitlines()
        if line.startswith(("costproxy_store_errors_total", "costproxy_budget_store_errors"))
        and float(line.rpartition(" ")[2]) != 0
    ]


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens", "max_output_tokens", "n"])
@pytest.mark.parametrize("value", [INT32_MAX + 1, 10**15, 2**63, 10**30])
async def test_integers_past_any_model_are_400(
    stack: Stack, http: aiohttp.ClientSession, field: str, value: int
) -> None:
    name = await budget(stack, http, hard=False)
    await stack.clear_upstream_requests(http)
    async with http.post(
        stack.url + CHAT, json={**BODY, field: value}, headers=as_customer(name)
    ) as resp:
        answer = await resp.json()
    assert resp.status == 400, answer
    # Past 2^64 the JSON parser reads a number as a float: not an integer at all.
    code = "integer_above_max_value" if value < 2**64 else "invalid_type"
    assert answer["error"]["code"] == code
    assert answer["error"]["param"] == field
    assert await stack.upstream_requests(http) == []


@pytest.mark.parametrize("hard", [False, True])
async def test_the_largest_accepted_request_reserves_without_overflow(
    stack: Stack, http: aiohttp.ClientSession, hard: bool
) -> None:
    """max_tokens × n at their bounds is 2^62 tokens: a reservation of ~2.8e21 nano-dollars
    at gpt-4o-mini's price, past every 64-bit counter. It is held at the bound: a soft
    budget lets the request through, a hard one refuses it, and no store call fails."""
    name = await budget(stack, http, hard=hard)
    body = {**BODY, "max_tokens": INT32_MAX, "n": INT32_MAX}
    for _ in range(3):
        async with http.post(stack.url + CHAT, json=body, headers=as_customer(name)) as resp:
            answer = await resp.json()
        if hard:
            assert resp.status == 429, answer
            assert answer["error"]["code"] == "budget_exceeded"
        else:
            assert resp.status == 200, answer
    assert await store_errors(stack, http) == []
    async with http.get(
        f"{stack.url}/admin/v1/budgets/customer/{name}", headers=stack.admin_headers
    ) as resp:
        view = await resp.json()
    assert resp.status == 200, view
