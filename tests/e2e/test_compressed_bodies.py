"""Compressed request bodies: refused with 415 by default; with
`server.accept_compressed_bodies` decoded within `max_body_bytes`, so a gzip bomb costs
the proxy no more memory than the limit (before: eleven 200 KB bombs took its RSS from
227 to 460 MB before the size limit answered)."""

from __future__ import annotations

import asyncio
import gzip
import zlib
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import orjson
import pytest

from proxy.config import ServerConfig
from tests.support.procs import ServerProcess, start_proxy
from tests.support.stack import ACME_KEY, ENV, base_config

CHAT = "/v1/chat/completions"
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
MAX_BODY = ServerConfig().max_body_bytes  # the default: 16 MiB
BOMB_DECODED = 200 * 1024 * 1024


def bomb() -> bytes:
    """~200 KB of gzip that decodes to 200 MB of zeros, made without holding the 200 MB."""
    encoder = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(1024 * 1024)
    out = [encoder.compress(zeros) for _ in range(BOMB_DECODED // len(zeros))]
    return b"".join([*out, encoder.flush()])


def rss_kb(process: ServerProcess) -> int:
    assert process.process is not None
    status = Path(f"/proc/{process.process.pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1])


def start(upstream: ServerProcess, directory: Path, accept: bool) -> ServerProcess:
    store = {"backend": "sqlite", "sqlite_path": str(directory / "costproxy.db")}
    config = base_config(upstream.url, store)
    config["server"] = {"accept_compressed_bodies": accept}
    return start_proxy(config, directory, ENV)


@pytest.fixture(scope="module")
def refusing(upstream: ServerProcess, tmp_path_factory) -> Iterator[ServerProcess]:
    proxy = start(upstream, tmp_path_factory.mktemp("plain-only"), accept=False)
    yield proxy
    proxy.stop()


@pytest.fixture(scope="module")
def accepting(upstream: ServerProcess, tmp_path_factory) -> Iterator[ServerProcess]:
    proxy = start(upstream, tmp_path_factory.mktemp("compressed"), accept=True)
    yield proxy
    proxy.stop()


async def post(
    http: aiohttp.ClientSession, proxy: ServerProcess, body: bytes, encoding: str, path=CHAT
) -> tuple[int, dict]:
    headers = {
        "Authorization": f"Bearer {ACME_KEY}",
        "Content-Type": "application/json",
        "Content-Encoding": encoding,
    }
    async with http.post(proxy.url + path, data=body, headers=headers) as resp:
        return resp.status, await resp.json(content_type=None)


async def upstream_requests(http: aiohttp.ClientSession, upstream: ServerProcess) -> list[dict]:
    async with http.get(upstream.url + "/_mock/requests") as resp:
        return await resp.json()


async def test_compressed_bodies_are_refused_by_default(
    refusing: ServerProcess, upstream: ServerProcess, http: aiohttp.ClientSession
) -> None:
    await http.delete(upstream.url + "/_mock/requests")
    for encoding, body in (
        ("gzip", gzip.compress(orjson.dumps(BODY))),
        ("deflate", zlib.compress(orjson.dumps(BODY))),
        ("br", b"\x0b\x02\x80hello\x03"),
    ):
        status, answer = await post(http, refusing, body, encoding)
        assert status == 415, answer
        assert answer["error"]["code"] == "unsupported_content_encoding"
        assert answer["error"]["param"] == "Content-Encoding"
    assert await upstream_requests(http, upstream) == []


async def test_accepted_bodies_are_decoded_and_sent_plain(
    accepting: ServerProcess, upstream: ServerProcess, http: aiohttp.ClientSession
) -> None:
    await http.delete(upstream.url + "/_mock/requests")
    plain = orjson.dumps(BODY)
    two_members = gzip.compress(plain[:20]) + gzip.compress(plain[20:])
    for encoding, body in (
        ("gzip", gzip.compress(plain)),
        ("deflate", zlib.compress(plain)),
        ("gzip", two_members),
    ):
        status, answer = await post(http, accepting, body, encoding)
        assert status == 200, answer
    sent = await upstream_requests(http, upstream)
    assert [orjson.loads(r["body"])["messages"] for r in sent] == [BODY["messages"]] * 3
    assert not any("content-encoding" in {h.lower() for h in r["headers"]} for r in sent)


@pytest.mark.parametrize(
    ("encoding", "body", "status", "code"),
    [
        ("gzip", b"not gzip at all", 400, "invalid_body_encoding"),
        ("gzip", gzip.compress(orjson.dumps(BODY))[:-12], 400, "invalid_body_encoding"),
        ("br", b"\x0b\x02\x80hello\x03", 415, "unsupported_content_encoding"),
        ("gzip", gzip.compress(b" " * (MAX_BODY + 1)), 413, "request_too_large"),
    ],
)
async def test_bad_compressed_bodies_are_4xx(
    accepting: ServerProcess, http: aiohttp.ClientSession, encoding, body, status, code
) -> None:
    answer_status, answer = await post(http, accepting, body, encoding)
    assert answer_status == status, answer
    assert answer["error"]["code"] == code


async def test_the_admin_api_takes_plain_bodies_only(
    accepting: ServerProcess, http: aiohttp.ClientSession
) -> None:
    headers = {"Authorization": "Bearer admin-token-SECRET-5e6f7a8b9c", "Content-Encoding": "gzip"}
    async with http.put(
        accepting.url + "/admin/v1/budgets/customer/zip",
        data=gzip.compress(b'{"budgets": []}'),
        headers=headers,
    ) as resp:
        assert resp.status == 415, await resp.text()


@pytest.mark.parametrize("accept", [False, True])
async def test_gzip_bombs_cost_no_more_memory_than_the_limit(
    refusing: ServerProcess,
    accepting: ServerProcess,
    http: aiohttp.ClientSession,
    accept: bool,
) -> None:
    proxy = accepting if accept else refusing
    payload = bomb()
    assert len(payload) < 250 * 1024
    await post(http, proxy, gzip.compress(orjson.dumps(BODY)), "gzip")  # warm
    before = rss_kb(proxy)
    answers = await asyncio.gather(*(post(http, proxy, payload, "gzip") for _ in range(11)))
    grown_mb = (rss_kb(proxy) - before) / 1024

    assert {status for status, _ in answers} == ({413} if accept else {415})
    # Eleven bombs of 200 MB each: decoded one at a time, each stopped at the 16 MiB limit.
    assert grown_mb < 3 * MAX_BODY / 1024 / 1024 + 8, f"RSS grew {grown_mb:.1f} MB"
