"""Property-based fuzzing of bodies, headers and admin queries against a running proxy:
whatever arrives, the answer is never a 5xx, and every error is OpenAI-shaped."""

from __future__ import annotations

import asyncio
import gzip
import json
import unicodedata
import uuid
from collections.abc import Iterator

import aiohttp
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.procs import ServerProcess, start_proxy
from tests.support.stack import ACME_KEY, ADMIN_TOKEN, BACKEND_KEY, ENV, SECRETS, Stack, base_config

ENDPOINTS = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses")
MODELS = ("gpt-4o-mini", "mystery", "story", "text-embedding-3-small", "nope", "")
FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def fuzzed(upstream: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    directory = tmp_path_factory.mktemp("fuzz")
    config = base_config(
        upstream.url, {"backend": "sqlite", "sqlite_path": str(directory / "usage.db")}
    )
    # Hundreds of wrong keys and tokens from one address: past the default threshold the
    # address would be refused (429) and later examples would test the refusal only.
    # The throttle is fuzzed in test_auth_failures.
    config["auth_failures"] = {"threshold": 1_000_000}
    proxy = start_proxy(config, directory, ENV)
    yield Stack(proxy=proxy, upstream=upstream, backend="sqlite")
    proxy.stop()


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
message = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "system", "assistant", "tool", 7]), "content": json_value}
)
body_fields = st.fixed_dictionaries(
    {},
    optional={
        "model": st.sampled_from(MODELS) | json_value,
        "messages": st.lists(message, max_size=3) | json_value,
        "prompt": st.text(max_size=30) | json_value,
        "input": st.text(max_size=30) | json_value,
        "stream": st.booleans() | json_value,
        "stream_options": st.fixed_dictionaries({"include_usage": json_value}) | json_value,
        "max_tokens": st.integers(min_value=-(2**70), max_value=2**70) | json_value,
        "max_completion_tokens": st.integers(min_value=-1, max_value=2**63),
        "n": st.integers(min_value=-5, max_value=5),
        "user": json_value,
    },
)


def deep(depth: int) -> bytes:
    return b'{"model": "gpt-4o-mini", "messages": ' + b"[" * depth + b"]" * depth + b"}"


raw_bodies = (
    body_fields.map(lambda fields: json.dumps(fields).encode())
    | st.binary(max_size=200)
    | st.integers(min_value=1, max_value=100_000).map(deep)
    | st.sampled_from(
        [
            b'{"model": "gpt-4o-mini", "max_tokens": 1' + b"0" * 400 + b"}",
            b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "\xff"}]}',
            b'{"model": "gpt-4o-mini", "model": 5}',
            b"\xef\xbb\xbf{}",
        ]
    )
)
# Header values an HTTP client can send at all (no CR, LF or NUL): everything else in them.
header_text = st.text(
    st.characters(blacklist_characters="\r\n\x00", blacklist_categories=("Cs",)), max_size=300
)


HI = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


async def sent(
    http: aiohttp.ClientSession, url: str, headers: dict[str, str], **body: object
) -> aiohttp.ClientResponse | None:
    """The proxy's response to a POST (of `body`: `json=` or `data=`, a chat saying hi by
    default), or None for a request the HTTP client itself refuses to send (a header
    value it will not write)."""
    try:
        return await http.post(url, headers=headers, **(body or {"json": HI}))
    except ValueError:
        return None


async def check_answer(resp: aiohttp.ClientResponse) -> None:
    text = await resp.text(errors="replace")
    assert resp.status < 500, text
    if resp.status >= 400:
        error = orjson.loads(text)["error"]
        assert error["message"] and error["type"] and "code" in error  # OpenAI: may be null
    assert "Traceback" not in text
    assert not any(secret in text for secret in SECRETS)


@FUZZ
@given(
    path=st.sampled_from(ENDPOINTS),
    body=raw_bodies,
    key=st.sampled_from([ACME_KEY, BACKEND_KEY, "sk-wrong", ""]),
)
async def test_any_body_gets_no_5xx(fuzzed: Stack, http: aiohttp.ClientSession, path, body, key):
    headers = {"Authorization": f"Bearer {key}", "X-Customer-Id": "fuzz-bodies"}
    async with http.post(fuzzed.url + path, data=body, headers=headers) as resp:
        await check_answer(resp)


@FUZZ
@given(customer=header_text, tags=header_text, end_user=header_text, trusted=st.booleans())
async def test_any_attribution_header_gets_no_5xx(
    fuzzed: Stack, http: aiohttp.ClientSession, customer, tags, end_user, trusted
):
    headers = {
        "Authorization": f"Bearer {BACKEND_KEY if trusted else ACME_KEY}",
        "X-Customer-Id": customer,
        "X-Cost-Tags": tags,
        "X-End-User-Id": end_user,
    }
    resp = await sent(http, fuzzed.url + ENDPOINTS[0], headers)
    if resp is None:
        return
    async with resp:
        await check_answer(resp)
        if resp.status == 200 and not trusted:
            record = await fuzzed.usage(http, resp.headers["x-request-id"])
            assert record["customer"] == "acme", "X-Customer-Id honoured for an untrusted key"


@FUZZ
@given(
    params=st.dictionaries(
        st.sampled_from(["customer", "from", "to", "group_by", "x"]), header_text, max_size=4
    ),
    request_id=header_text.filter(lambda s: "/" not in s and s not in ("", ".", "..")),
    token=st.sampled_from([ADMIN_TOKEN, "nope", ""]),
)
async def test_any_admin_query_gets_no_5xx(
    fuzzed: Stack, http: aiohttp.ClientSession, params, request_id, token
):
    headers = {"Authorization": f"Bearer {token}"}
    async with http.get(fuzzed.url + "/admin/v1/spend", params=params, headers=headers) as resp:
        await check_answer(resp)
    url = fuzzed.url + "/admin/v1/usage/" + aiohttp.helpers.quote(request_id, safe="")
    async with http.get(url, headers=headers) as resp:
        await check_answer(resp)


@pytest.mark.parametrize("depth", [300, 2000])
async def test_deep_json_is_a_400_even_when_the_proxy_rewrites_the_body(
    fuzzed: Stack, http: aiohttp.ClientSession, depth: int
):
    nested = b"[" * depth + b"]" * depth
    body = b'{"model": "gpt-4o-mini", "stream": true, "messages": [], "x": ' + nested + b"}"
    headers = {"Authorization": f"Bearer {ACME_KEY}"}
    async with http.post(fuzzed.url + ENDPOINTS[0], data=body, headers=headers) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["code"] == "invalid_json"


async def raw_request(stack: Stack, head: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", stack.proxy.port)
    body = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}'
    writer.write(head + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(65536), 5)
    writer.close()
    return answer


@pytest.mark.parametrize(
    "injected",
    [
        b"X-Customer-Id: evil\r\nX-Cost-Tags: a=b\rX-Injected: 1\r\n",
        b"X-Customer-Id: evil\x00name\r\n",
        b"X-Customer-Id: evil\x1b[31mred\r\n",
        b"X-Customer-Id: " + b"x" * 129 + b"\r\n",
        b"X-Cost-Tags: team=a\x7f\r\n",
        b"X-Cost-Tags: " + b",".join(b"k%d=v" % i for i in range(40)) + b"\r\n",
        b"X-Customer-Id: ok\r\nX-Leak: " + ACME_KEY.encode() + b"\x01\r\n",
    ],
    ids=["bare-cr", "nul", "escape", "too-long", "del", "too-many-tags", "key-in-bad-line"],
)
async def test_header_injection_is_a_400_and_stores_nothing(fuzzed: Stack, injected: bytes):
    head = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Authorization: Bearer " + BACKEND_KEY.encode() + b"\r\n"
        b"Content-Type: application/json\r\n" + injected
    )
    answer = await raw_request(fuzzed, head)
    status = int(answer.split(b" ", 2)[1])
    assert 400 <= status < 500, answer
    assert b"Traceback" not in answer


async def test_no_traceback_or_secret_in_the_log(fuzzed: Stack, http: aiohttp.ClientSession):
    customer = f"after-fuzz-{uuid.uuid4().hex[:6]}"
    headers = {"Authorization": f"Bearer {BACKEND_KEY}", "X-Customer-Id": customer}
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    async with http.post(fuzzed.url + ENDPOINTS[0], json=body, headers=headers) as resp:
        assert resp.status == 200  # still serving
    log = fuzzed.proxy.logs()
    assert "Traceback" not in log
    assert not any(secret in log for secret in SECRETS)


# Header names an HTTP client can send (RFC 9110 token characters).
header_name = st.text(
    st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"),
    min_size=1,
    max_size=30,
).filter(lambda name: not name.lower().startswith("x-mock-"))  # the fake's own controls
# What the fuzz stack's provider may be sent: its kind's headers, the fake's controls, the
# proxy's own and aiohttp's.
SENT_UPSTREAM = {
    "accept", "idempotency-key", "content-type", "authorization", "host", "content-length",
    "accept-encoding",
}  # fmt: skip


@FUZZ
@given(headers=st.dictionaries(header_name, header_text, max_size=6))
async def test_no_client_header_reaches_the_provider_unless_listed(
    fuzzed: Stack, http: aiohttp.ClientSession, headers: dict[str, str]
):
    await fuzzed.clear_upstream_requests(http)
    resp = await sent(
        http, fuzzed.url + ENDPOINTS[0], {**headers, "Authorization": f"Bearer {ACME_KEY}"}
    )
    if resp is None:
        return
    async with resp:
        await check_answer(resp)
    for upstream in await fuzzed.upstream_requests(http):
        names = {name.lower() for name in upstream["headers"]}
        assert names <= SENT_UPSTREAM, upstream["headers"]


@FUZZ
@given(
    encoding=st.sampled_from(["gzip", "deflate", "br", "x-gzip", "zstd", "identity"]) | header_text,
    body=raw_bodies | raw_bodies.map(gzip.compress),
)
async def test_any_content_encoding_gets_no_5xx_and_compressed_bodies_stay_here(
    fuzzed: Stack, http: aiohttp.ClientSession, encoding: str, body: bytes
):
    headers = {"Authorization": f"Bearer {ACME_KEY}", "Content-Encoding": encoding}
    await fuzzed.clear_upstream_requests(http)
    resp = await sent(http, fuzzed.url + ENDPOINTS[0], headers, data=body)
    if resp is None:
        return
    async with resp:
        await check_answer(resp)
        refused = encoding.strip().lower() not in ("", "identity")
        if refused:
            assert resp.status == 415
    if refused:
        assert await fuzzed.upstream_requests(http) == []


@FUZZ
@given(
    customer=st.text(max_size=20).filter(str.strip),
    tag_name=st.text(st.characters(categories=("L", "N")), min_size=1, max_size=10),
)
async def test_identifiers_are_recorded_in_their_one_spelling(
    fuzzed: Stack, http: aiohttp.ClientSession, customer: str, tag_name: str
):
    headers = {
        "Authorization": f"Bearer {BACKEND_KEY}",
        "X-Customer-Id": customer,
        "X-Cost-Tags": f"{tag_name}=v",
    }
    resp = await sent(http, fuzzed.url + ENDPOINTS[0], headers)
    if resp is None:
        return
    async with resp:
        await check_answer(resp)
        if resp.status != 200:
            return
        record = await fuzzed.usage(http, resp.headers["x-request-id"])
    assert record["customer"] == unicodedata.normalize("NFKC", customer)
    name = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", tag_name).casefold())
    assert record["tags"] == [f"{name}=v"]
