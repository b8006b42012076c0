"""Headers cross the proxy by allowlist, in both directions (before: a denylist let
`Helicone-Auth`, `X-Portkey-Api-Key`, `OpenAI-Beta`, `X-Forwarded-For` and any other client
header reach the provider, and the provider's `openai-organization`, `openai-project`,
organisation-wide `x-ratelimit-*` and `Access-Control-Allow-Origin: *` reach clients).

The fake upstream records the headers it was sent, and answers with the headers
api.openai.com sends (organisation, project, its rate limits, a request id)."""

from __future__ import annotations

from collections.abc import Iterator

import aiohttp
import pytest

from tests.support.procs import ServerProcess, start_proxy
from tests.support.stack import ACME_KEY, ENV, GLOBEX_KEY, UPSTREAM_KEY, base_config

BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
STEERING = {
    "Helicone-Auth": "Bearer sk-helicone-someone-elses",
    "X-Portkey-Api-Key": "pk-someone-elses",
    "OpenAI-Beta": "assistants=v2",
    "OpenAI-Organization": "org-client-chosen",
    "OpenAI-Project": "proj_client_chosen",
    "X-Forwarded-For": "203.0.113.9",
    "X-Stainless-Lang": "python",
    "User-Agent": "client/1.0",
    "X-Anything": "at all",
}
# What aiohttp adds to every request on its own (Accept: */* unless one is given).
TRANSPORT = {"host", "content-length", "accept-encoding", "accept"}
ORGANISATION = {
    "openai-organization",
    "openai-project",
    "openai-version",
    "openai-processing-ms",
    "access-control-allow-origin",
}


@pytest.fixture(scope="module")
def proxy(upstream: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("headers")
    store = {"backend": "sqlite", "sqlite_path": str(directory / "costproxy.db")}
    config = base_config(upstream.url, store)
    config["providers"]["openai"].pop("forward_headers")  # nothing but the kind's own
    config["providers"]["timed"] = {
        "base_url": upstream.url + "/v1",
        "api_key": "${T_UPSTREAM_KEY}",
        "forward_headers": ["x-mock-*"],
        "return_headers": ["openai-processing-ms"],
    }
    config["providers"]["azure"] = {
        "kind": "azure",
        "base_url": upstream.url,
        "api_key": "${T_UPSTREAM_KEY}",
        "api_version": "2024-10-21",
    }
    config["models"] |= {
        "beta": {
            "targets": [{"provider": "openai", "model": "gpt-4o-mini"}],
            "forward_headers": ["OpenAI-Beta"],
        },
        "timed": {"targets": [{"provider": "timed", "model": "gpt-4o-mini"}], "retries": 0},
        "on-azure": {"targets": [{"provider": "azure", "model": "gpt-4o-mini"}]},
    }
    config["keys"][1]["rpm"] = 7  # globex: the proxy's own limit, in its own headers
    server = start_proxy(config, directory, ENV)
    yield server.url
    server.stop()


async def sent_upstream(
    http: aiohttp.ClientSession, upstream: ServerProcess, proxy: str, model: str, **headers: str
) -> tuple[dict[str, str], aiohttp.ClientResponse]:
    """The headers the upstream received for one request, and the client's response."""
    await http.delete(upstream.url + "/_mock/requests")
    async with http.post(
        proxy + "/v1/chat/completions",
        json={**BODY, "model": model},
        headers={"Authorization": f"Bearer {ACME_KEY}", **headers},
    ) as resp:
        await resp.read()
    async with http.get(upstream.url + "/_mock/requests") as listing:
        (request,) = await listing.json()
    return {k.lower(): v for k, v in request["headers"].items()}, resp


async def test_only_the_headers_the_api_defines_go_upstream(
    proxy: str, upstream: ServerProcess, http: aiohttp.ClientSession
) -> None:
    extra = {"Idempotency-Key": "idem-1", "Accept": "application/json"}
    sent, resp = await sent_upstream(http, upstream, proxy, "gpt-4o-mini", **STEERING, **extra)
    assert resp.status == 200
    assert set(sent) - TRANSPORT == {"authorization", "content-type", "idempotency-key"}
    assert sent["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert sent["accept"] == "application/json"
    assert sent["idempotency-key"] == "idem-1"


async def test_a_route_may_add_a_header(
    proxy: str, upstream: ServerProcess, http: aiohttp.ClientSession
) -> None:
    sent, _ = await sent_upstream(http, upstream, proxy, "beta", **STEERING)
    assert sent["openai-beta"] == "assistants=v2"
    assert "helicone-auth" not in sent and "x-forwarded-for" not in sent


async def test_each_kind_has_its_own_list(
    proxy: str, upstream: ServerProcess, http: aiohttp.ClientSession
) -> None:
    headers = {"x-ms-client-request-id": "c-1", "Idempotency-Key": "idem-2", **STEERING}
    sent, resp = await sent_upstream(http, upstream, proxy, "on-azure", **headers)
    assert resp.status == 200
    assert set(sent) - TRANSPORT == {"api-key", "content-type", "x-ms-client-request-id"}


@pytest.mark.parametrize("stream", [False, True])
async def test_only_headers_describing_the_answer_come_back(
    proxy: str, upstream: ServerProcess, http: aiohttp.ClientSession, stream: bool
) -> None:
    async with http.post(
        proxy + "/v1/chat/completions",
        json={**BODY, "stream": stream},
        headers={"Authorization": f"Bearer {ACME_KEY}"},
    ) as resp:
        await resp.read()
    names = {h.lower() for h in resp.headers}
    assert resp.status == 200
    assert not names & ORGANISATION
    assert not any(name.startswith("x-ratelimit-") for name in names)
    assert resp.headers["x-upstream-request-id"].startswith("req_mock")
    assert resp.headers["x-request-id"].startswith("req_")
    assert resp.headers["Content-Type"].startswith(
        "text/event-stream" if stream else "application/json"
    )


async def test_errors_keep_their_content_type_and_retry_after_only(
    proxy: str, http: aiohttp.ClientSession
) -> None:
    async with http.post(
        proxy + "/v1/chat/completions",
        json={**BODY, "model": "timed"},
        headers={"Authorization": f"Bearer {ACME_KEY}", "x-mock-status": "429"},
    ) as resp:
        await resp.read()
    assert resp.status == 429
    assert resp.headers["Retry-After"] == "1"
    assert resp.headers["Content-Type"] == "application/json"
    assert resp.headers["openai-processing-ms"] == "12"  # listed in return_headers
    assert not {h.lower() for h in resp.headers} & (ORGANISATION - {"openai-processing-ms"})


async def test_rate_limit_headers_are_the_clients_own(
    proxy: str, http: aiohttp.ClientSession
) -> None:
    async with http.post(
        proxy + "/v1/chat/completions",
        json=BODY,
        headers={"Authorization": f"Bearer {GLOBEX_KEY}"},
    ) as resp:
        await resp.read()
    assert resp.status == 200
    assert resp.headers["x-ratelimit-limit-requests"] == "7"  # not the organisation's 10000
    assert "x-ratelimit-limit-tokens" not in resp.headers
