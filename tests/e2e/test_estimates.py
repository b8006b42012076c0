"""Estimates where no usage arrives: an image in the prompt counts by OpenAI's documented
rule from its own header, audio by its duration, and the record says "estimated". Each
pair of requests differs by one part only, so the difference is that part's count."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.support.bodies import wav
from tests.support.procs import REPO, ServerProcess, start_proxy
from tests.support.stack import ACME_KEY, ADMIN_TOKEN, ENV

PNG = (REPO / "tests" / "fixtures" / "images" / "python.png").read_bytes()  # 16 x 16
TEXT = {"type": "text", "text": "What is in this picture?"}


@pytest.fixture(scope="module")
def proxy(
    upstream: ServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    directory: Path = tmp_path_factory.mktemp("estimates")
    config = {
        "store": {"backend": "sqlite", "sqlite_path": str(directory / "usage.db")},
        "admin": {"token": "${T_ADMIN_TOKEN}"},
        "providers": {
            "fake": {
                "base_url": upstream.url + "/v1",
                "forward_headers": ["x-mock-*"],
                "api_key": "${T_UPSTREAM_KEY}",
            }
        },
        "models": {"gpt-4o": {"targets": [{"provider": "fake", "model": "gpt-4o"}]}},
        "keys": [{"key": "${T_ACME_KEY}", "customer": "acme"}],
    }
    server = start_proxy(config, directory, ENV)
    yield server
    server.stop()


async def estimated_input(
    http: aiohttp.ClientSession, proxy: ServerProcess, content: list[dict]
) -> int:
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": content}]}
    headers = {"Authorization": f"Bearer {ACME_KEY}", "x-mock-no-usage": "1"}
    async with http.post(proxy.url + "/v1/chat/completions", json=body, headers=headers) as resp:
        assert resp.status == 200
        request_id = resp.headers["x-request-id"]
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with http.get(f"{proxy.url}/admin/v1/usage/{request_id}", headers=admin) as resp:
        record = await resp.json()
    assert record["usage_source"] == "estimated"
    return record["input_tokens"]


def image(url: str, detail: str | None = None) -> dict:
    return {
        "type": "image_url",
        "image_url": {"url": url, **({"detail": detail} if detail else {})},
    }


@pytest.mark.parametrize(
    ("part", "tokens"),
    [
        # OpenAI: 85 base + 170 per 512 px tile; a 16 x 16 image is one tile.
        pytest.param(image("data:image/png;base64," + base64.b64encode(PNG).decode()), 255,
                     id="inline-png"),
        pytest.param(image("data:image/png;base64," + base64.b64encode(PNG).decode(), "low"), 85,
                     id="inline-png-low-detail"),
        # By URL the size is unknown: OpenAI's 1024 x 1024 example, 4 tiles.
        pytest.param(image("https://example.com/cat.png"), 765, id="url"),
        # Audio input: a token per 100 ms.
        pytest.param({"type": "input_audio", "input_audio": {
            "data": base64.b64encode(wav(2.5)).decode(), "format": "wav"}}, 25, id="wav-2.5s"),
    ],
)  # fmt: skip
async def test_a_media_part_adds_its_documented_count(
    http: aiohttp.ClientSession, proxy: ServerProcess, part: dict, tokens: int
) -> None:
    without = await estimated_input(http, proxy, [TEXT])
    with_part = await estimated_input(http, proxy, [TEXT, part])
    assert with_part - without == tokens
