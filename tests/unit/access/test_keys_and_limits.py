"""Pure parts of keys and rate limits, the key cache, and the OpenAPI route table."""

from __future__ import annotations

import pytest
from aiohttp import web

from proxy.access.auth import KeyIndex
from proxy.access.authenticator import Authenticator
from proxy.access.keys import IssuedKey, mint_secret, secret_sha256
from proxy.access.limits import estimate_tokens
from proxy.access.ratelimit import WINDOW_MS, Bucket, InProcessLimiter, decide, format_duration
from proxy.admin.openapi import build_openapi, openapi_path
from proxy.admin.routes import ADMIN_ROUTES
from proxy.app import create_app
from proxy.config import KeyConfig, parse_config
from proxy.errors import AuthenticationError


@pytest.mark.parametrize(
    ("ms", "text"),
    [(0, "0ms"), (20, "20ms"), (1000, "1s"), (1500, "1.5s"), (12_000, "12s"),
     (360_000, "6m0s"), (61_250, "1m1.25s"), (3_600_000, "1h0m0s")],
)  # fmt: skip
def test_format_duration_like_openai(ms: int, text: str):
    assert format_duration(ms) == text


def test_decide_is_all_or_nothing_and_headers_show_the_tightest_bucket():
    rpm, tpm = Bucket("key:k", "requests", 10), Bucket("customer:c", "tokens", 100)
    decision, after = decide([0, 90 * WINDOW_MS], [rpm, tpm], [1, 20])
    assert not decision.allowed and after == [0, 90 * WINDOW_MS]
    headers = decision.headers()
    assert headers["x-ratelimit-remaining-tokens"] == "10"
    assert headers["retry-after-ms"] == str(10 * WINDOW_MS // 100)  # 10 tokens at 100/min
    assert headers["retry-after"] == "6"
    decision, after = decide([0, 0], [rpm, tpm], [1, 20])
    assert decision.allowed and after == [WINDOW_MS, 20 * WINDOW_MS]
    assert decision.headers()["x-ratelimit-remaining-requests"] == "9"
    assert decision.headers()["x-ratelimit-reset-requests"] == "6s"
    assert "retry-after" not in decision.headers()


async def test_in_process_limiter_drains_in_one_minute():
    now = [0]
    limiter = InProcessLimiter(clock=lambda: now[0])
    bucket = Bucket("key:k", "requests", 2)
    assert [(await limiter.take([bucket], [1])).allowed for _ in range(3)] == [True, True, False]
    now[0] = 30_000  # half a minute drains one request
    assert (await limiter.take([bucket], [1])).allowed
    assert not (await limiter.take([bucket], [1])).allowed
    await limiter.adjust([bucket], [-5])  # settle's correction never goes below empty
    assert (await limiter.take([bucket], [2])).allowed


@pytest.mark.parametrize(
    ("size", "payload", "default", "expected"),
    [(400, {}, 0, 100), (401, {"max_tokens": 50}, 0, 151), (8, {"n": 3, "max_tokens": 10}, 0, 32),
     (4, {}, 256, 257), (4, {"max_completion_tokens": 7}, 256, 8)],
)  # fmt: skip
def test_estimate_tokens(size: int, payload: dict, default: int, expected: int):
    assert estimate_tokens(size, payload, default) == expected


class CountingStore:
    def __init__(self, keys: dict[str, IssuedKey]) -> None:
        self.keys = keys
        self.calls = 0

    async def find_key(self, sha256: str, now_ms: int) -> IssuedKey | None:
        self.calls += 1
        return self.keys.get(sha256)


async def test_config_keys_and_foreign_keys_never_reach_the_store():
    store = CountingStore({})
    auth = Authenticator(KeyIndex([KeyConfig(key="sk-a", customer="a")]), store)  # type: ignore[arg-type]
    assert (await auth.authenticate({"Authorization": "Bearer sk-a"})).customer == "a"
    with pytest.raises(AuthenticationError):
        await auth.authenticate({"Authorization": "Bearer sk-unknown"})
    assert store.calls == 0


async def test_issued_keys_are_cached_briefly_and_dropped_on_invalidate():
    secret = mint_secret()
    key = IssuedKey("key_1", secret[:8], "acme", None, 0, rpm=5)
    store = CountingStore({secret_sha256(secret): key})
    clock = [0.0]
    auth = Authenticator(KeyIndex([]), store, monotonic=lambda: clock[0], now_ms=lambda: 1)  # type: ignore[arg-type]
    headers = {"Authorization": f"Bearer {secret}"}
    for _ in range(5):
        principal = await auth.authenticate(headers)
    assert (principal.key_id, principal.customer, principal.rpm) == ("key_1", "acme", 5)
    assert store.calls == 1
    clock[0] = 1.01
    await auth.authenticate(headers)
    assert store.calls == 2
    store.keys.clear()  # revoked
    auth.invalidate()
    with pytest.raises(AuthenticationError):
        await auth.authenticate(headers)
    assert auth.take_last_used() == {"key_1": 1}


def test_every_admin_route_is_documented_and_every_documented_route_exists(tmp_path):
    config = parse_config(
        {
            "store": {"sqlite_path": str(tmp_path / "x.db")},
            "providers": {"p": {"base_url": "http://127.0.0.1:1"}},
            "models": {"m": {"targets": [{"provider": "p", "model": "m"}]}},
        }
    )
    app = create_app(config)
    registered = {
        (route.method.lower(), openapi_path(route.resource.canonical))
        for route in app.router.routes()
        if isinstance(route.resource, web.AbstractResource)
        and route.resource.canonical.startswith("/admin/")
        and route.method != "HEAD"
    }
    document = build_openapi(app[ADMIN_ROUTES])
    documented = {(m, path) for path, ops in document["paths"].items() for m in ops}
    assert registered == documented
    assert document["openapi"] == "3.1.0"
    for ops in document["paths"].values():
        for op in ops.values():
            assert "401" in op["responses"]
