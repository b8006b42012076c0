"""Budgets set at run time through the admin API: validated, applied at once, enforced;
and every way a held request can end settles it exactly once."""

from __future__ import annotations

import asyncio
import re
import uuid
from decimal import Decimal

import aiohttp
import pytest

from tests.support.money import expected_nusd, usd
from tests.support.stack import BACKEND_KEY, Stack

CHAT = "/v1/chat/completions"
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 20}


def customer() -> str:
    return f"c-{uuid.uuid4().hex[:10]}"


def as_customer(name: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {BACKEND_KEY}", "X-Customer-Id": name, **extra}


async def put(stack: Stack, http: aiohttp.ClientSession, scope: str, body: object):
    async with http.put(
        f"{stack.url}/admin/v1/budgets/{scope}", json=body, headers=stack.admin_headers
    ) as resp:
        return resp.status, await resp.json()


async def view(stack: Stack, http: aiohttp.ClientSession, scope: str) -> dict:
    async with http.get(
        f"{stack.url}/admin/v1/budgets/{scope}", headers=stack.admin_headers
    ) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def settled_view(stack: Stack, http: aiohttp.ClientSession, scope: str) -> dict:
    for _ in range(100):
        answer = await view(stack, http, scope)
        if all(b["reserved_usd"] == "0.00" for b in answer["budgets"]):
            return answer
        await asyncio.sleep(0.05)
    raise AssertionError(f"a hold was never settled: {answer}")


BAD = [
    ({"budgets": [{"period": "monthly", "limit_usd": "-1"}]}, "greater than or equal to 0"),
    ({"budgets": [{"period": "fortnightly", "limit_usd": "5"}]}, "period"),
    ({"budgets": [{"period": "daily", "limit_usd": "5", "alert_at": [50, 120]}]}, "1-100"),
    ({"budgets": [{"period": "daily", "limit_usd": "0.0000000001"}]}, "decimal"),
    ({"budgets": [{"period": "daily", "limit_usd": "5"}] * 2}, "two daily budgets"),
    ({"budgets": [{"period": "daily"}]}, "limit_usd"),
    ({"budgets": [{"period": "daily", "limit_usd": "5", "colour": "red"}]}, "colour"),
    ([{"period": "daily", "limit_usd": "5"}], '{"budgets": [...]}'),
]


@pytest.mark.parametrize(("body", "message"), BAD)
async def test_bad_budgets_are_refused_and_nothing_is_stored(
    stack: Stack, http: aiohttp.ClientSession, body: object, message: str
) -> None:
    name = customer()
    status, answer = await put(stack, http, f"customer/{name}", body)

    assert status == 400
    assert answer["error"]["code"] == "invalid_budget"
    assert message in answer["error"]["message"]
    assert (await view(stack, http, f"customer/{name}")) == {
        "scope": f"customer/{name}",
        "source": None,
        "budgets": [],
    }


@pytest.mark.parametrize("scope", ["planet/x", "end_user/acme", "tag/novalue", "customer/"])
async def test_bad_scopes_are_refused(stack: Stack, http: aiohttp.ClientSession, scope: str):
    status, answer = await put(stack, http, scope, {"budgets": []})
    assert status in (400, 404)
    if status == 400:
        assert answer["error"]["code"] == "invalid_budget_scope"


async def test_the_admin_token_is_required(stack: Stack, http: aiohttp.ClientSession):
    async with http.put(f"{stack.url}/admin/v1/budgets/global", json={"budgets": []}) as resp:
        assert resp.status == 401


async def test_a_budget_set_at_run_time_is_enforced_at_once(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    name = customer()
    status, answer = await put(
        stack, http, name, {"budgets": [{"period": "daily", "limit_usd": 0.0002}]}
    )
    assert status == 200, answer
    assert answer["source"] == "runtime"
    assert answer["budgets"][0]["limit_usd"] == "0.0002"

    usage = {"x-mock-usage": "100,0,20,0"}  # 100 × 0.15 + 20 × 0.60 = $0.000027
    async with http.post(stack.url + CHAT, json=BODY, headers=as_customer(name, **usage)) as resp:
        assert resp.status == 200
        remaining = resp.headers["x-costproxy-budget-remaining-usd"]
    assert re.fullmatch(r"0\.000\d{6}", remaining)
    await settled_view(stack, http, f"customer/{name}")

    await stack.clear_upstream_requests(http)
    statuses = []
    for _ in range(12):
        async with http.post(
            stack.url + CHAT, json=BODY, headers=as_customer(name, **usage)
        ) as resp:
            statuses.append(resp.status)
            if resp.status == 429:
                error = (await resp.json())["error"]
                retry_after = int(resp.headers["Retry-After"])
                break
    assert statuses[-1] == 429
    assert error["type"] == error["code"] == "budget_exceeded"
    assert re.match(
        rf"customer {name} (reached|has too little left of) its daily budget of \$0\.0002 "
        r"\(spent \$0\.\d+, resets \d{4}-\d\d-\d\dT00:00:00Z",
        error["message"],
    ), error["message"]
    assert 0 < retry_after <= 86_400
    assert len(await stack.upstream_requests(http)) == len(statuses) - 1  # not forwarded

    async with http.delete(
        f"{stack.url}/admin/v1/budgets/customer/{name}", headers=stack.admin_headers
    ) as resp:
        assert (await resp.json())["deleted"] is True
    async with http.post(stack.url + CHAT, json=BODY, headers=as_customer(name)) as resp:
        assert resp.status == 200
        assert "x-costproxy-budget-remaining-usd" not in resp.headers


async def test_a_cheaper_answer_releases_the_difference(stack: Stack, http: aiohttp.ClientSession):
    name = customer()
    await put(stack, http, name, {"budgets": [{"period": "monthly", "limit_usd": "1"}]})
    headers = as_customer(name, **{"x-mock-usage": "7,0,3,0"})
    async with http.post(stack.url + CHAT, json=BODY, headers=headers) as resp:
        assert resp.status == 200
        before = resp.headers["x-costproxy-budget-remaining-usd"]

    (budget,) = (await settled_view(stack, http, f"customer/{name}"))["budgets"]
    cost = expected_nusd("gpt-4o-mini", 7, 0, 3)
    assert before == "1.000000000"  # nothing settled yet when it was admitted
    assert budget["spent_usd"].rstrip("0") == usd(cost).rstrip("0")
    assert budget["remaining_usd"].rstrip("0") == usd(10**9 - cost).rstrip("0")
    assert budget["reserved_usd"] == "0.00"  # the hold was larger than the cost: released


async def test_the_remaining_header_never_rises_between_settled_requests(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    """Identical requests until the budget refuses: near the end the proxy recounts the
    prompt with the tokenizer, its reservation shrinks ~3x, and the figure must not jump
    back up (it did when the header counted the request's own reservation)."""
    name = customer()
    body = {**BODY, "messages": [{"role": "user", "content": "x " * 40}], "max_tokens": 10}
    usage = {"x-mock-usage": "20,0,10,0"}  # 20 × 150 + 10 × 600 = 9,000 nano-dollars
    await put(stack, http, name, {"budgets": [{"period": "daily", "limit_usd": "0.0001"}]})
    seen: list[str] = []
    for _ in range(15):
        async with http.post(stack.url + CHAT, json=body, headers=as_customer(name, **usage)) as r:
            if r.status == 429:
                break
            assert r.status == 200
            seen.append(r.headers["x-costproxy-budget-remaining-usd"])
        await settled_view(stack, http, f"customer/{name}")
    figures = [Decimal(x) for x in seen]
    assert figures == sorted(figures, reverse=True), seen
    cost = expected_nusd("gpt-4o-mini", 20, 0, 10)
    assert seen == [usd(100_000 - i * cost) for i in range(len(seen))]
    # The byte bound (~130 bytes) is refused before the recount (~47 tokens) is: the
    # last requests got in only because the proxy counted.
    assert (100_000 - (len(seen) - 1) * cost) < 130 * 150 + 10 * 600


async def test_a_budget_set_mid_period_counts_the_spend_so_far(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    name = customer()
    usage = {"x-mock-usage": "1000,0,0,0"}  # 1,000 × 150 = $0.00015 each
    for _ in range(2):
        async with http.post(stack.url + CHAT, json=BODY, headers=as_customer(name, **usage)) as r:
            assert r.status == 200
    status, answer = await put(
        stack, http, name, {"budgets": [{"period": "weekly", "limit_usd": "0.00031"}]}
    )
    assert status == 200
    assert answer["budgets"][0]["spent_usd"] == "0.0003"
    async with http.post(stack.url + CHAT, json=BODY, headers=as_customer(name)) as r:
        # $0.0003 spent: the worst case of the prompt and 20 output tokens does not fit.
        assert r.status == 429
        assert "spent $0.0003" in (await r.json())["error"]["message"]


@pytest.mark.parametrize(
    ("extra", "stream", "spends"),
    [
        ({"x-mock-status": "500"}, False, False),  # upstream error: nothing spent
        ({"x-mock-status": "429"}, True, False),
        ({"x-mock-fail-after": "2", "x-mock-chunks": "6"}, True, True),  # cut mid-stream
        ({}, True, True),
    ],
)
async def test_every_ending_settles_once(
    stack: Stack, http: aiohttp.ClientSession, extra: dict, stream: bool, spends: bool
) -> None:
    name = customer()
    await put(stack, http, name, {"budgets": [{"period": "weekly", "limit_usd": "1"}]})
    body = {**BODY, "stream": stream}
    async with http.post(stack.url + CHAT, json=body, headers=as_customer(name, **extra)) as resp:
        await resp.read()
        if resp.status == 200:  # streams: the header was set at prepare time
            assert "x-costproxy-budget-remaining-usd" in resp.headers

    (budget,) = (await settled_view(stack, http, f"customer/{name}"))["budgets"]
    assert (budget["spent_usd"] != "0.00") is spends


async def test_a_client_that_hangs_up_mid_stream_is_settled(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    name = customer()
    await put(stack, http, name, {"budgets": [{"period": "monthly", "limit_usd": "1"}]})
    headers = as_customer(name, **{"x-mock-chunks": "200", "x-mock-chunk-delay-ms": "20"})
    resp = await http.post(stack.url + CHAT, json={**BODY, "stream": True}, headers=headers)
    await resp.content.readuntil(b"\n\n")
    resp.close()

    (budget,) = (await settled_view(stack, http, f"customer/{name}"))["budgets"]
    assert budget["spent_usd"] != "0.00"


async def test_end_user_defaults_and_overrides(stack: Stack, http: aiohttp.ClientSession):
    name = customer()
    await put(
        stack, http, f"end_users/{name}", {"budgets": [{"period": "daily", "limit_usd": "0"}]}
    )
    await put(stack, http, f"end_user/{name}/vip", {"budgets": []})

    async def status(user: str) -> int:
        headers = as_customer(name, **{"X-End-User-Id": user})
        async with http.post(stack.url + CHAT, json=BODY, headers=headers) as resp:
            return resp.status

    assert await status("player-1") == 429  # the default: $0 per end user
    assert await status("vip") == 200  # an override: no budget at all
    async with http.get(f"{stack.url}/admin/v1/budgets", headers=stack.admin_headers) as resp:
        scopes = {b["scope"]: b["source"] for b in (await resp.json())["budgets"]}
    assert scopes[f"end_users/{name}"] == scopes[f"end_user/{name}/vip"] == "runtime"
