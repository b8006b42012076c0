"""Failed authentication is throttled per client address (before: 2,000 wrong admin tokens
in half a second were 2,000 plain 401s, and the 401 log lines named no address).

Clients connect from several loopback addresses (127.0.0.2, .4, ...: Linux routes all of
127/8 to the loopback interface), so each test's address is its own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.procs import ServerProcess, start_proxy
from tests.support.stack import ADMIN_TOKEN, ENV, METRICS_TOKEN, base_config, chat_status

THRESHOLD = 5
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def proxy(
    upstream: ServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    directory = tmp_path_factory.mktemp("auth-failures")
    store = {"backend": "sqlite", "sqlite_path": str(directory / "costproxy.db")}
    config = base_config(upstream.url, store)
    config["auth_failures"] = {
        "threshold": THRESHOLD,
        "window_s": 60,
        "block_s": 30,  # longer than any test: a block seen is a block that holds
        "max_block_s": 60,
    }
    # A load balancer, for the X-Forwarded-For test.
    config["server"] = {**config["server"], "trusted_proxies": ["127.0.0.3"]}
    config["metrics"] = {"token": "${T_METRICS_TOKEN}"}
    server = start_proxy(config, directory, {**ENV, "T_METRICS_TOKEN": METRICS_TOKEN})
    yield server
    server.stop()


def session_from(address: str) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(address, 0)))


@pytest.fixture
async def metrics_reader() -> AsyncIterator[aiohttp.ClientSession]:
    async with session_from("127.0.0.9") as session:
        yield session


async def metric(session: aiohttp.ClientSession, proxy: ServerProcess, series: str) -> float:
    headers = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    async with session.get(proxy.url + "/metrics", headers=headers) as resp:
        assert resp.status == 200
        for line in (await resp.text()).splitlines():
            if line.startswith(series + " "):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


async def admin_status(session: aiohttp.ClientSession, url: str, token: str) -> tuple[int, dict]:
    async with session.get(
        url + "/admin/v1/spend", headers={"Authorization": f"Bearer {token}"}
    ) as resp:
        return resp.status, dict(resp.headers)


async def test_guessing_the_admin_token_is_throttled(
    proxy: ServerProcess, metrics_reader: aiohttp.ClientSession
) -> None:
    async with session_from("127.0.0.2") as guesser:
        answers = []
        for batch in range(20):  # 2,000 guesses, 100 at a time
            answers += await asyncio.gather(
                *(
                    admin_status(guesser, proxy.url, f"guess-{batch}-{i:04d}-xxxxxxxx")
                    for i in range(100)
                )
            )
        statuses = [status for status, _ in answers]
        assert statuses.count(401) == THRESHOLD
        assert statuses.count(429) == 2000 - THRESHOLD
        assert all(int(h["Retry-After"]) >= 1 for s, h in answers if s == 429)
        # The right token from that address waits too: a guess may not tell by its answer.
        assert (await admin_status(guesser, proxy.url, ADMIN_TOKEN))[0] == 429
        # The address is refused on the admin API only.
        assert await chat_status(guesser, proxy.url) == 200

    async with session_from("127.0.0.5") as bystander:  # another address is not refused
        assert (await admin_status(bystander, proxy.url, ADMIN_TOKEN))[0] == 200

    failures = 'costproxy_auth_failures_total{kind="invalid_admin_token"}'
    blocked = 'costproxy_auth_blocked_total{realm="admin"}'
    assert await metric(metrics_reader, proxy, failures) == THRESHOLD
    assert await metric(metrics_reader, proxy, blocked) == 2000 - THRESHOLD + 1
    logs = proxy.logs()
    lines = [
        line for line in logs.splitlines() if "authentication failed (invalid_admin_token)" in line
    ]
    assert len(lines) == THRESHOLD
    assert all(line.endswith("from 127.0.0.2") and " INFO " in line for line in lines)
    assert "address 127.0.0.2 refused on the admin API for 30s" in logs
    assert "guess-" not in logs  # no guess is ever logged


async def test_wrong_client_keys_are_throttled_and_logged_with_the_address(
    proxy: ServerProcess, metrics_reader: aiohttp.ClientSession
) -> None:
    async with session_from("127.0.0.4") as client:
        statuses = []
        for i in range(THRESHOLD + 3):
            async with client.post(
                proxy.url + "/v1/chat/completions",
                json=BODY,
                headers={"Authorization": f"Bearer sk-wrong-{i}"},
            ) as resp:
                statuses.append(resp.status)
                if resp.status == 429:
                    assert (await resp.json())["error"]["code"] == "too_many_failed_authentications"
    assert statuses == [401] * THRESHOLD + [429] * 3
    await asyncio.sleep(0.3)  # the request log is written every 0.1 s
    rejected = [
        line
        for line in proxy.logs().splitlines()
        if line.startswith('{"request_id":null') and '"client":"127.0.0.4"' in line
    ]
    assert [('"status":401' in line, '"status":429' in line) for line in rejected] == [
        (True, False)
    ] * THRESHOLD + [(False, True)] * 3
    kinds = 'costproxy_auth_failures_total{kind="invalid_api_key"}'
    assert await metric(metrics_reader, proxy, kinds) >= THRESHOLD


async def test_behind_a_trusted_proxy_each_forwarded_address_counts_alone(
    proxy: ServerProcess,
) -> None:
    async with session_from("127.0.0.3") as balancer:

        async def wrong(forwarded: str) -> int:
            headers = {
                "Authorization": "Bearer wrong-admin-token-xxxx",
                "X-Forwarded-For": forwarded,
            }
            async with balancer.get(proxy.url + "/admin/v1/spend", headers=headers) as resp:
                return resp.status

        assert [await wrong("198.51.100.7") for _ in range(THRESHOLD + 1)] == [401] * THRESHOLD + [
            429
        ]
        assert await wrong("198.51.100.8") == 401  # another client behind the same balancer
    assert "from 198.51.100.7" in proxy.logs()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    authorization=st.text(
        st.characters(blacklist_characters="\r\n\x00", blacklist_categories=("Cs",)), max_size=80
    ),
    forwarded=st.text(
        st.characters(blacklist_characters="\r\n\x00", blacklist_categories=("Cs",)), max_size=80
    ),
    path=st.sampled_from(["/admin/v1/spend", "/v1/chat/completions", "/v1/models", "/metrics"]),
)
async def test_any_credentials_get_401_or_429_and_no_5xx(
    proxy: ServerProcess, authorization: str, forwarded: str, path: str
) -> None:
    async with session_from("127.0.0.6") as session:
        headers = {"Authorization": authorization, "X-Forwarded-For": forwarded}
        try:
            resp = (
                await session.post(proxy.url + path, json=BODY, headers=headers)
                if path.startswith("/v1/chat")
                else await session.get(proxy.url + path, headers=headers)
            )
        except ValueError:
            return  # a value the HTTP client itself refuses to send
        async with resp:
            text = await resp.text()
    assert resp.status in (401, 429), text
    assert "Traceback" not in text


async def test_the_consoles_login_and_shared_links_are_throttled_too(
    proxy: ServerProcess,
) -> None:
    """The console's login form takes the admin token: guessing it there is guessing it
    on the admin API (one count); guessing shared links is counted on its own."""
    async with session_from("127.0.0.8") as guesser:
        statuses = []
        for i in range(THRESHOLD + 1):
            async with guesser.post(
                proxy.url + "/ui/login", data={"token": f"guess-{i}", "next": "/ui/"}
            ) as resp:
                statuses.append(resp.status)
        assert statuses == [401] * THRESHOLD + [429]
        assert int(resp.headers["Retry-After"]) >= 1
        assert (await admin_status(guesser, proxy.url, ADMIN_TOKEN))[0] == 429  # one count
        shares = []
        for i in range(THRESHOLD + 1):
            async with guesser.get(proxy.url + f"/ui/share/not-a-share-{i}") as resp:
                shares.append(resp.status)
        assert shares == [404] * THRESHOLD + [429]
