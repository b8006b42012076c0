"""Property-based fuzzing of the Messages API endpoints against a running proxy in front of
the fake upstream: whatever body or key arrives, the answer is never a 5xx, every error
is in Anthropic's shape, and no secret shows."""

from __future__ import annotations

import json
from collections.abc import Iterator

import aiohttp
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.anthropic_stack import anthropic_config
from tests.support.procs import ServerProcess, start_proxy
from tests.support.stack import ACME_KEY, BACKEND_KEY, ENV, SECRETS

ENDPOINTS = ("/v1/messages", "/v1/messages/count_tokens")
MODELS = ("claude-sonnet-4-5", "claude-haiku-4-5", "gpt-4o-mini", "nope", "")
FUZZ = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def proxy(
    upstream: ServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    directory = tmp_path_factory.mktemp("fuzz-messages")
    store = {"backend": "sqlite", "sqlite_path": str(directory / "usage.db")}
    config = anthropic_config(upstream.url, store)
    # Hundreds of wrong keys from one address: past the default threshold the address
    # would be refused (429) and later examples would test the refusal only (the throttle
    # is fuzzed in test_auth_failures).
    config["auth_failures"] = {"threshold": 1_000_000}
    server = start_proxy(config, directory, ENV)
    yield server
    server.stop()


json_leaf = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
)
json_value = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
block = st.fixed_dictionaries(
    {"type": st.sampled_from(["text", "image", "tool_use", "tool_result", 3]), "text": json_value},
    optional={"cache_control": json_value, "content": json_value, "input": json_value},
)
message = st.fixed_dictionaries(
    {
        "role": st.sampled_from(["user", "assistant", 7]),
        "content": st.text(max_size=30) | st.lists(block, max_size=3) | json_value,
    }
)
body_fields = st.fixed_dictionaries(
    {},
    optional={
        "model": st.sampled_from(MODELS) | json_value,
        "messages": st.lists(message, max_size=3) | json_value,
        "system": st.text(max_size=30) | st.lists(block, max_size=2) | json_value,
        "stream": st.booleans() | json_value,
        "max_tokens": st.integers(min_value=-(2**70), max_value=2**70) | json_value,
        "metadata": st.fixed_dictionaries({"user_id": json_value}) | json_value,
        "tools": st.lists(json_value, max_size=2) | json_value,
    },
)
raw_bodies = (
    body_fields.map(lambda fields: json.dumps(fields).encode())
    | st.binary(max_size=200)
    | st.sampled_from(
        [
            b'{"model": "claude-haiku-4-5", "max_tokens": 1' + b"0" * 400 + b"}",
            b'{"model": "claude-haiku-4-5", "model": 5, "messages": []}',
            b'{"model": "claude-haiku-4-5", "messages": ' + b"[" * 3000 + b"]" * 3000 + b"}",
        ]
    )
)


async def check_answer(resp: aiohttp.ClientResponse) -> None:
    text = await resp.text(errors="replace")
    assert resp.status < 500, text
    if resp.status >= 400:
        answer = orjson.loads(text)
        assert answer["type"] == "error", text
        assert answer["error"]["type"] and answer["error"]["message"]
    assert "Traceback" not in text
    assert not any(secret in text for secret in SECRETS)


@FUZZ
@given(
    path=st.sampled_from(ENDPOINTS),
    body=raw_bodies,
    key=st.sampled_from([ACME_KEY, BACKEND_KEY, "sk-wrong", ""]),
    header=st.sampled_from(["x-api-key", "Authorization"]),
)
async def test_any_body_gets_no_5xx(
    proxy: ServerProcess, http: aiohttp.ClientSession, path, body, key, header
) -> None:
    value = key if header == "x-api-key" else f"Bearer {key}"
    headers = {header: value, "X-Customer-Id": "fuzz-messages"}
    async with http.post(proxy.url + path, data=body, headers=headers) as resp:
        await check_answer(resp)
