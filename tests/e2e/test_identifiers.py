"""One spelling per identifier: customer ids, end-user ids and tags are counted, budgeted
and queried in their NFKC form, tag names case-folded (before: `ａcme` in fullwidth and
`acme` were two customers, `Env` and `env` two tags, and a client escaped a per-end-user
cap by spelling the end user differently). And `end_user_ids` lets a customer take its
end-user ids from trusted keys only."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import aiohttp
import pytest

from tests.support.procs import ServerProcess, start_proxy
from tests.support.stack import (
    ACME_KEY,
    ADMIN_TOKEN,
    BACKEND_KEY,
    ENV,
    GLOBEX_KEY,
    Stack,
    base_config,
)

CHAT = "/v1/chat/completions"
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def fullwidth(text: str) -> str:
    """ASCII letters and digits as their fullwidth forms (U+FF01..U+FF5E)."""
    return "".join(chr(ord(c) + 0xFEE0) if c.isalnum() and c.isascii() else c for c in text)


async def chat(
    http: aiohttp.ClientSession, url: str, key: str = BACKEND_KEY, **headers: str
) -> tuple[int, dict]:
    async with http.post(
        url + CHAT, json=BODY, headers={"Authorization": f"Bearer {key}", **headers}
    ) as resp:
        return resp.status, await resp.json()


async def test_one_customer_whatever_its_spelling(stack: Stack, http: aiohttp.ClientSession):
    name = f"café-{uuid.uuid4().hex[:8]}"
    spellings = [name, fullwidth(name), name.replace("é", "e\u0301")]
    assert len(set(spellings)) == 3
    for spelling in spellings:
        status, answer = await chat(http, stack.url, **{"X-Customer-Id": spelling})
        assert status == 200, answer

    for spelling in spellings:  # and queried by any of them
        spend = await stack.spend(http, customer=spelling)
        assert spend["customer"] == name
        assert spend["total"]["requests"] == 3


async def test_one_tag_and_one_end_user_whatever_their_spelling(
    stack: Stack, http: aiohttp.ClientSession
):
    name = f"tags-{uuid.uuid4().hex[:8]}"
    for tag, user in (
        ("Env=prod", "player-1"),
        ("env=prod", "ｐlayer-1"),
        ("ＥＮＶ=prod", "player-1"),
    ):
        status, answer = await chat(
            http,
            stack.url,
            **{"X-Customer-Id": name, "X-Cost-Tags": tag, "X-End-User-Id": user},
        )
        assert status == 200, answer

    by_tag = await stack.spend(http, customer=name, group_by="tag")
    assert [(g["tag"], g["requests"]) for g in by_tag["groups"]] == [("env=prod", 3)]
    by_user = await stack.spend(http, customer=name, group_by="end_user")
    assert [(g["end_user"], g["requests"]) for g in by_user["groups"]] == [("player-1", 3)]


async def test_budgets_hold_for_every_spelling_of_an_end_user(
    stack: Stack, http: aiohttp.ClientSession
):
    """A $0 cap for each end user, and an override without a cap for `vip`, both set by
    another spelling of the customer: `ｖｉｐ` is `vip`, while `VIP` (case is kept) is
    another end user, under the cap."""
    name = f"capped-{uuid.uuid4().hex[:8]}"
    zero = {"budgets": [{"period": "daily", "limit_usd": "0"}]}
    for scope, body in ((f"end_users/{fullwidth(name)}", zero), (f"end_user/{name}/ｖip", {})):
        async with http.put(
            f"{stack.url}/admin/v1/budgets/{scope}", json={"budgets": [], **body}, headers=ADMIN
        ) as resp:
            assert resp.status == 200, await resp.text()
    async with http.get(f"{stack.url}/admin/v1/budgets", headers=ADMIN) as resp:
        scopes = {b["scope"] for b in (await resp.json())["budgets"]}
    assert {f"end_users/{name}", f"end_user/{name}/vip"} <= scopes

    for user, expected in (("vip", 200), ("ｖｉｐ", 200), ("VIP", 429), ("player", 429)):
        status, answer = await chat(
            http, stack.url, **{"X-Customer-Id": name, "X-End-User-Id": user}
        )
        assert status == expected, (user, answer)


@pytest.fixture(scope="module")
def modes(upstream: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("end-user-ids")
    store = {"backend": "sqlite", "sqlite_path": str(directory / "costproxy.db")}
    config = base_config(upstream.url, store)
    cap = [{"period": "daily", "limit_usd": "0.00005"}]
    config["customers"] = {
        "acme": {"end_user_budgets": cap, "end_user_ids": "trusted"},
        "strict": {"end_user_budgets": cap, "end_user_ids": "required"},
        "open": {"end_user_budgets": cap},
    }
    proxy = start_proxy(config, directory, ENV)
    yield proxy.url
    proxy.stop()


async def test_trusted_end_user_ids(modes: str, http: aiohttp.ClientSession) -> None:
    # acme's own (untrusted) key may not name end users: it could rotate them at will.
    status, answer = await chat(http, modes, ACME_KEY, **{"X-End-User-Id": "p1"})
    assert status == 403, answer
    assert answer["error"]["code"] == "end_user_not_trusted"
    async with http.post(
        modes + CHAT,
        json={**BODY, "user": "p2"},
        headers={"Authorization": f"Bearer {ACME_KEY}"},
    ) as resp:
        assert resp.status == 403
    assert (await chat(http, modes, ACME_KEY))[0] == 200  # no end user: the customer's caps
    trusted = {"X-Customer-Id": "acme", "X-End-User-Id": "p1"}
    assert (await chat(http, modes, BACKEND_KEY, **trusted))[0] == 200


async def test_required_end_user_ids(modes: str, http: aiohttp.ClientSession) -> None:
    status, answer = await chat(http, modes, BACKEND_KEY, **{"X-Customer-Id": "strict"})
    assert status == 400, answer
    assert answer["error"]["code"] == "missing_end_user"
    named = {"X-Customer-Id": "strict", "X-End-User-Id": "p1"}
    assert (await chat(http, modes, BACKEND_KEY, **named))[0] == 200


async def test_any_key_may_name_end_users_by_default(modes: str, http: aiohttp.ClientSession):
    """The default (`any`): whatever key names the end user, which is why a client that
    rotates ids gets a fresh cap per id (the docs say so)."""
    assert (await chat(http, modes, GLOBEX_KEY, **{"X-End-User-Id": "r1"}))[0] == 200
