"""pipeline.request: the body sent upstream names exactly one model, the target's."""

from __future__ import annotations

import orjson
import pytest

from proxy.pipeline.request import has_duplicate_model, upstream_body
from tests.support.bodies import top_level_values


@pytest.mark.parametrize(
    ("raw", "duplicate"),
    [
        (b'{"model": "a", "messages": []}', False),
        (b'{"model": "a", "model": "b", "messages": []}', True),
        (b'{"messages": [], "model": "a", "x": 1, "model": "b"}', True),
        # Nested "model" keys (a tool schema, metadata) are not the request's model.
        (b'{"model": "a", "tools": [{"parameters": {"properties": {"model": {}}}}]}', False),
        (b'{"model": "a", "metadata": {"model": "x", "model": "y"}}', False),
        (b'{"model": "a", "messages": [{"content": "say \\"model\\" twice: \\"model\\""}]}',
         False),
        (b'{"model": "a", "note": "model"}', False),
    ],
)  # fmt: skip
def test_has_duplicate_model(raw: bytes, duplicate: bool) -> None:
    assert has_duplicate_model(raw) is duplicate


def test_a_duplicate_goes_upstream_once_as_the_target() -> None:
    raw = b'{"model": "gpt-4.1", "model": "cheap", "messages": []}'
    payload = orjson.loads(raw)  # the last key wins: "cheap", which was routed and billed
    body, injected = upstream_body(raw, payload, "chat.completions", "cheap", duplicate_model=True)
    assert (top_level_values(body, "model"), injected) == (["cheap"], False)


def test_an_unchanged_body_goes_upstream_as_sent() -> None:
    raw = b'{ "model":"m",  "messages":[] }'
    payload = orjson.loads(raw)
    body, _ = upstream_body(raw, payload, "chat.completions", "m", duplicate_model=False)
    assert body is raw


def test_a_rewritten_model_and_injected_usage() -> None:
    raw = b'{"model": "alias", "messages": [], "stream": true}'
    body, injected = upstream_body(
        raw, orjson.loads(raw), "chat.completions", "real", duplicate_model=False
    )
    assert injected is True
    assert orjson.loads(body) == {
        "model": "real",
        "messages": [],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
