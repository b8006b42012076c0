"""accounting.json_fields: top-level fields found from a body's bytes, never nested ones."""

from __future__ import annotations

import orjson
import pytest

from proxy.accounting.json_fields import head_string, tail_fields


@pytest.mark.parametrize(
    ("data", "fields"),
    [
        pytest.param({"a": 1, "usage": {"x": 1}}, {"usage": {"x": 1}}, id="last"),
        pytest.param(
            {"usage": {"x": 1}, "tier": "flex", "meta": {"usage": {"x": 9}}},
            {"usage": {"x": 1}, "tier": "flex", "meta": {"usage": {"x": 9}}},
            id="nested-after-the-real-one",
        ),
        pytest.param(
            {"usage": {"x": 1}, "breakdown": {"models": [{"usage": {"x": 2}}] * 5}},
            {"usage": {"x": 1}, "breakdown": {"models": [{"usage": {"x": 2}}] * 5}},
            id="groq-compound-breakdown",
        ),
        pytest.param({"text": '"usage": {"x": 9}', "n": 1}, None, id="only-in-a-string"),
        pytest.param({"type": "usage", "n": 1}, None, id="a-string-value"),
        pytest.param({"choices": [{"usage": {"x": 1}}]}, None, id="only-nested"),
    ],
)
def test_tail_fields(data: dict, fields: dict | None) -> None:
    found = tail_fields(orjson.dumps(data), "usage")
    assert (None if found is None else found[1]) == fields


def test_tail_fields_before_an_offset_within_a_window() -> None:
    body = orjson.dumps({"model": "m", "pad": "x" * 100, "usage": {}})
    at = body.index(b'"usage"')
    assert tail_fields(body, "model", end=at) == (1, {"model": "m", "pad": "x" * 100, "usage": {}})
    assert tail_fields(body, "model", end=at, window=50) is None


def test_pretty_printed_and_spaced_bodies() -> None:
    body = b'{\n  "id": "x",\n  "usage" :\n  {"prompt_tokens": 1}\n}\n'
    assert tail_fields(body, "usage") == (17, {"usage": {"prompt_tokens": 1}})
    assert head_string(body, "id", limit=100) == "x"


@pytest.mark.parametrize(
    ("body", "model"),
    [
        pytest.param(b'{"id":"c","model":"gpt-4o","choices":[]}', "gpt-4o", id="early"),
        pytest.param(b'{"model" : "a\\"b"}', 'a"b', id="escaped"),
        pytest.param(b'{"meta":{"model":"x"},"model":"y"}', "y", id="nested-first"),
        pytest.param(b'{"model":5}', None, id="not-a-string"),
        pytest.param(b'{"text":"model","x":1}', None, id="a-value"),
        pytest.param(b'{"pad":"' + b"x" * 100 + b'","model":"m"}', None, id="beyond-the-limit"),
    ],
)
def test_head_string(body: bytes, model: str | None) -> None:
    assert head_string(body, "model", limit=64) == model
