"""Bad input gets a clear 4xx in OpenAI's error shape; nothing reaches the upstream or the store."""

from __future__ import annotations

import uuid

import aiohttp
import pytest

from tests.support.stack import ACME_KEY, BACKEND_KEY, SECRETS, Stack

CHAT = "/v1/chat/completions"
GOOD = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def auth(key: str = ACME_KEY, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **extra}


CASES = [
    # (name, path, headers, body bytes, status, code)
    ("no key", CHAT, {}, GOOD, 401, "missing_api_key"),
    ("unknown key", CHAT, auth("sk-nope"), GOOD, 401, "invalid_api_key"),
    ("basic auth", CHAT, {"Authorization": "Basic Zm9vOmJhcg=="}, GOOD, 401, "missing_api_key"),
    ("malformed json", CHAT, auth(), b'{"model": "gpt-4o-mini",', 400, "invalid_json"),
    ("invalid utf-8", CHAT, auth(), b'{"model": "\xff\xfe"}', 400, "invalid_json"),
    ("json array", CHAT, auth(), b"[1, 2]", 400, "invalid_json"),
    ("empty body", CHAT, auth(), b"", 400, "invalid_json"),
    ("missing model", CHAT, auth(), {"messages": []}, 400, "missing_model"),
    ("model not a string", CHAT, auth(), {**GOOD, "model": 42}, 400, "invalid_type"),
    ("messages not a list", CHAT, auth(), {**GOOD, "messages": "hi"}, 400, "invalid_type"),
    ("stream not a bool", CHAT, auth(), {**GOOD, "stream": "yes"}, 400, "invalid_type"),
    ("negative max_tokens", CHAT, auth(), {**GOOD, "max_tokens": -1}, 400, "invalid_type"),
    ("user not a string", CHAT, auth(), {**GOOD, "user": 7}, 400, "invalid_type"),
    ("unknown model", CHAT, auth(), {**GOOD, "model": "gpt-17"}, 404, "model_not_found"),
    ("trusted key, no customer", CHAT, auth(BACKEND_KEY), GOOD, 400, "missing_customer"),
    (
        "trusted key, control chars in customer",
        CHAT,
        auth(BACKEND_KEY, **{"X-Customer-Id": "evil\tname"}),
        GOOD,
        400,
        "invalid_customer",
    ),
    ("bad tags", CHAT, auth(**{"X-Cost-Tags": "feature"}), GOOD, 400, "invalid_tags"),
    ("too large", CHAT, auth(), b'{"model": "' + b"x" * 70_000 + b'"}', 413, "request_too_large"),
    ("embeddings without input", "/v1/embeddings", auth(), {"model": "gpt-4o-mini"}, 400,
     "missing_required_parameter"),
    ("unknown path", "/v1/nothing", auth(), GOOD, 404, "not_found"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("path", "headers", "body", "status", "code"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
async def test_bad_request_gets_openai_error(
    stack: Stack, http: aiohttp.ClientSession, path, headers, body, status, code
):
    await stack.clear_upstream_requests(http)
    data = body if isinstance(body, bytes) else None
    json = None if isinstance(body, bytes) else body
    async with http.post(stack.url + path, headers=headers, data=data, json=json) as resp:
        payload = await resp.json(content_type=None)
        text = await resp.text()
    assert resp.status == status, text
    error = payload["error"]
    assert set(error) >= {"message", "type", "code"}
    assert error["code"] == code
    assert error["type"] and error["message"]
    assert "Traceback" not in text
    assert not any(secret in text for secret in SECRETS)
    assert await stack.upstream_requests(http) == [], "a bad request went upstream"


async def test_rejected_requests_store_nothing(stack: Stack, http: aiohttp.ClientSession):
    customer = f"cust-{uuid.uuid4().hex[:10]}"
    headers = auth(BACKEND_KEY, **{"X-Customer-Id": customer})
    for body in ({**GOOD, "model": "gpt-17"}, {**GOOD, "stream": 1}, {"messages": []}):
        async with http.post(stack.url + CHAT, headers=headers, json=body) as resp:
            assert 400 <= resp.status < 500
    spend = await stack.spend(http, customer=customer)
    assert spend["total"]["requests"] == 0


async def test_admin_api_needs_the_admin_token(stack: Stack, http: aiohttp.ClientSession):
    for headers in ({}, auth(), {"Authorization": "Bearer wrong-token-0000000000"}):
        async with http.get(stack.url + "/admin/v1/spend", headers=headers) as resp:
            assert resp.status == 401
            assert (await resp.json())["error"]["code"] in {"invalid_admin_token"}


@pytest.mark.parametrize(
    "params",
    [{"from": "2026-13-01"}, {"from": "2026-11-10", "to": "2026-11-01"}, {"group_by": "colour"}],
)
async def test_bad_spend_queries_are_400(stack: Stack, http: aiohttp.ClientSession, params):
    async with http.get(
        stack.url + "/admin/v1/spend", params=params, headers=stack.admin_headers
    ) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["code"] == "invalid_query"
