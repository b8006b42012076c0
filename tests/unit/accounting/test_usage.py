"""accounting.usage: where usage is in bodies and stream events, and the delivered text
(the meaning of usage objects of every shape: test_usage_shapes.py)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from proxy.accounting.records import Usage
from proxy.accounting.usage import completion_text, delta_text, event_reading, find_usage
from proxy.accounting.usage_shapes import normalise_usage

CHAT_USAGE = {
    "prompt_tokens": 100,
    "completion_tokens": 20,
    "total_tokens": 120,
    "prompt_tokens_details": {"cached_tokens": 30, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 12, "audio_tokens": 0},
}
RESPONSES_USAGE = {
    "input_tokens": 50,
    "input_tokens_details": {"cached_tokens": 10},
    "output_tokens": 40,
    "output_tokens_details": {"reasoning_tokens": 25},
    "total_tokens": 90,
}


# --- normalise_usage: both OpenAI shapes ----------------------------------------------


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        pytest.param(CHAT_USAGE, Usage(100, 30, 20, 12), id="chat-with-details"),
        pytest.param(
            {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
            Usage(5, 0, 7, 0),
            id="completions",
        ),
        pytest.param({"prompt_tokens": 8, "total_tokens": 8}, Usage(8, 0, 0, 0), id="embeddings"),
        pytest.param(RESPONSES_USAGE, Usage(50, 10, 40, 25), id="responses-with-details"),
        pytest.param({"input_tokens": 5}, Usage(5, 0, 0, 0), id="responses-no-output"),
        pytest.param(
            {"prompt_tokens": 3, "completion_tokens": 4, "prompt_tokens_details": None},
            Usage(3, 0, 4, 0),
            id="details-null",
        ),
        pytest.param(
            {
                "prompt_tokens": 100,
                "completion_tokens": 20,
                "prompt_tokens_details": {"cached_tokens": 200},
                "completion_tokens_details": {"reasoning_tokens": 50},
            },
            Usage(100, 100, 20, 20),
            id="chat-details-clamped-to-totals",
        ),
        pytest.param(
            {
                "input_tokens": 7,
                "output_tokens": 3,
                "input_tokens_details": {"cached_tokens": 8},
                "output_tokens_details": {"reasoning_tokens": 4},
            },
            Usage(7, 7, 3, 3),
            id="responses-details-clamped-to-totals",
        ),
        pytest.param(
            {
                "prompt_tokens": 10,
                "completion_tokens": 10,
                "prompt_tokens_details": {"cached_tokens": "5"},
                "completion_tokens_details": {"reasoning_tokens": True},
            },
            Usage(10, 0, 10, 0),
            id="garbage-details-are-zero",
        ),
        pytest.param(
            {
                "prompt_tokens": 10,
                "completion_tokens": 10,
                "prompt_tokens_details": {"cached_tokens": -3},
                "completion_tokens_details": [1, 2],
            },
            Usage(10, 0, 10, 0),
            id="negative-or-odd-details-are-zero",
        ),
    ],
)
def test_normalise_usage(usage: Any, expected: Usage) -> None:
    assert normalise_usage(usage, "chat.completions") == expected


@pytest.mark.parametrize(
    "usage",
    [
        None,
        [],
        "usage",
        12,
        {},
        {"total_tokens": 10},
        {"completion_tokens": 5},
        {"prompt_tokens": None, "completion_tokens": 5},
        {"prompt_tokens": "10", "completion_tokens": 5},
        {"prompt_tokens": True, "completion_tokens": 5},
        {"prompt_tokens": False, "completion_tokens": 0},
        {"prompt_tokens": -1, "completion_tokens": 5},
        {"prompt_tokens": 1.5, "completion_tokens": 5},
        {"prompt_tokens": 10, "completion_tokens": "5"},
        {"prompt_tokens": 10, "completion_tokens": None},
        {"prompt_tokens": 10, "completion_tokens": -2},
        {"output_tokens": 3},
        {"input_tokens": None, "output_tokens": 3},
        {"input_tokens": 3, "output_tokens": -1},
        {"input_tokens": 3, "output_tokens": True},
        {"input_tokens": "3", "output_tokens": 3},
    ],
)
def test_unusable_usage_is_none_not_zero(usage: Any) -> None:
    assert normalise_usage(usage, "chat.completions") is None


# --- find_usage -----------------------------------------------------------------------------

REAL = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
REAL_USAGE = Usage(10, 0, 5, 0)
DECOY = {"prompt_tokens": 999, "completion_tokens": 999}


def chat_body(content: Any, *, usage_first: bool = False, **extra: Any) -> dict:
    choice = {"index": 0, "message": {"role": "assistant", "content": content}, **extra}
    if usage_first:
        return {"id": "c1", "usage": REAL, "choices": [choice]}
    return {"id": "c1", "object": "chat.completion", "choices": [choice], "usage": REAL}


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(orjson.dumps(chat_body("Hello!")), id="plain"),
        pytest.param(orjson.dumps(chat_body('"usage": {"prompt_tokens": 999}')), id="decoy-before"),
        pytest.param(
            orjson.dumps(chat_body('x "usage": {"prompt_tokens": 999}', usage_first=True)),
            id="escaped-decoy-after",
        ),
        pytest.param(
            orjson.dumps(chat_body('he said "usage', usage_first=True)),
            id="string-ending-in-escaped-quote-usage",
        ),
        pytest.param(
            orjson.dumps(chat_body("usage", usage_first=True, logprobs=DECOY)),
            id="usage-as-a-string-value-then-an-object",
        ),
        pytest.param(
            orjson.dumps(chat_body("x", usage_first=True, logprobs={'he said "usage': DECOY})),
            id="key-ending-in-escaped-quote-usage",
        ),
        pytest.param(
            orjson.dumps(chat_body(["usage", DECOY], usage_first=True)),
            id="usage-as-a-list-item-then-an-object",
        ),
        pytest.param(
            orjson.dumps(
                chat_body(
                    None,
                    usage_first=True,
                    tool_calls=[
                        {
                            "function": {
                                "name": "f",
                                "arguments": orjson.dumps({"usage": DECOY}).decode(),
                            }
                        }
                    ],
                )
            ),
            id="tool-arguments-with-usage",
        ),
        pytest.param(
            b'{"id": "c1", "choices": [],\n  "usage" :\n  {"prompt_tokens": 10, '
            b'"completion_tokens": 5, "note": "}{\\"}"}\n}',
            id="whitespace-and-braces-in-strings",
        ),
        pytest.param(
            orjson.dumps(
                {"object": "list", "data": [{"embedding": [0.5] * 200_000}], "usage": REAL}
            ),
            id="large-embeddings-body",
        ),
        pytest.param(
            orjson.dumps({"choices": [{"text": "u" * 2_000_000}], "usage": REAL}),
            id="large-completion",
        ),
    ],
)
def test_find_usage_reads_the_real_usage(body: bytes) -> None:
    assert find_usage(body, "chat.completions").usage == REAL_USAGE


def test_find_usage_reads_responses_shape() -> None:
    body = orjson.dumps(
        {
            "id": "resp_1",
            "object": "response",
            "output": [{"type": "message", "content": [{"type": "output_text", "text": "Hi"}]}],
            "usage": RESPONSES_USAGE,
            "user": None,
            "metadata": {"purpose": "usage"},
        }
    )
    assert find_usage(body, "responses").usage == Usage(50, 10, 40, 25)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"<html>502 Bad Gateway</html>", id="not-json"),
        pytest.param(b'{"usage": {"prompt_tokens": 1', id="truncated"),
        pytest.param(orjson.dumps({"id": "c1", "choices": []}), id="absent"),
        pytest.param(orjson.dumps({"id": "c1", "usage": None}), id="null"),
        pytest.param(
            orjson.dumps(chat_body("usage")).replace(b'"usage":{', b'"usage_":{'), id="renamed"
        ),
        pytest.param(
            orjson.dumps({"choices": [{"message": {"content": '"usage": {"prompt_tokens": 9}'}}]}),
            id="only-inside-a-string",
        ),
        pytest.param(
            orjson.dumps({"usage": {"prompt_tokens": "10", "completion_tokens": 5}}),
            id="unusable",
        ),
    ],
)
def test_find_usage_without_usable_usage_is_none(body: bytes) -> None:
    assert find_usage(body, "chat.completions").usage is None


# --- event_reading ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"choices": [], "usage": CHAT_USAGE}, Usage(100, 30, 20, 12)),
        ({"choices": [{"delta": {"content": "x"}}], "usage": None}, None),
        ({"choices": [{"delta": {"content": "x"}}]}, None),
        (
            {"type": "response.completed", "response": {"id": "r", "usage": RESPONSES_USAGE}},
            Usage(50, 10, 40, 25),
        ),
        ({"type": "response.created", "response": {"id": "r", "usage": None}}, None),
        ({"type": "response.output_text.delta", "delta": "usage"}, None),
    ],
)
def test_event_reading(event: dict, expected: Usage | None) -> None:
    assert event_reading(event, "responses").usage == expected


# --- delta_text / completion_text -----------------------------------------------------------


def chunk(*deltas: dict) -> dict:
    return {
        "object": "chat.completion.chunk",
        "choices": [{"index": i, "delta": d} for i, d in enumerate(deltas)],
    }


@pytest.mark.parametrize(
    ("endpoint", "event", "text"),
    [
        ("chat.completions", chunk({"content": "Hel"}), "Hel"),
        ("chat.completions", chunk({"role": "assistant", "content": ""}), ""),
        ("chat.completions", chunk({"content": None}), ""),
        ("chat.completions", chunk({"content": "a"}, {"content": "b"}), "ab"),
        ("chat.completions", chunk({"reasoning_content": "think"}), "think"),
        ("chat.completions", chunk({"refusal": "no"}), "no"),
        (
            "chat.completions",
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_1",
                            "function": {"name": "get_weather", "arguments": ""},
                        }
                    ]
                }
            ),
            "get_weather",
        ),
        (
            "chat.completions",
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}),
            '{"city":',
        ),
        ("chat.completions", chunk({"tool_calls": [None, {"function": "x"}]}), ""),
        ("chat.completions", {"choices": [], "usage": CHAT_USAGE}, ""),
        ("chat.completions", {"choices": None}, ""),
        ("chat.completions", {"choices": ["x", 3]}, ""),
        ("completions", {"choices": [{"index": 0, "text": "Hello"}]}, "Hello"),
        ("completions", {"choices": [{"text": "a"}, {"text": None}, {"text": "b"}]}, "ab"),
        ("completions", chunk({"content": "chat-shaped"}), ""),
        ("responses", {"type": "response.output_text.delta", "delta": "Hi"}, "Hi"),
        ("responses", {"type": "response.function_call_arguments.delta", "delta": "{"}, "{"),
        ("responses", {"type": "response.output_text.done", "text": "Hi"}, ""),
        ("responses", {"type": "response.output_text.delta", "delta": 5}, ""),
        ("responses", {"type": "response.completed", "response": {"usage": RESPONSES_USAGE}}, ""),
        ("responses", {"delta": "no type"}, ""),
        ("chat.completions", [1, 2], ""),
        ("responses", None, ""),
    ],
)
def test_delta_text(endpoint: str, event: Any, text: str) -> None:
    assert delta_text(endpoint, event) == text


@pytest.mark.parametrize(
    ("endpoint", "body", "text"),
    [
        (
            "chat.completions",
            {"choices": [{"message": {"role": "assistant", "content": "Hello there"}}]},
            "Hello there",
        ),
        (
            "chat.completions",
            {
                "choices": [
                    {
                        "message": {
                            "content": None,
                            "tool_calls": [
                                {
                                    "function": {
                                        "name": "get_weather",
                                        "arguments": '{"city":"Paris"}',
                                    }
                                }
                            ],
                        }
                    }
                ]
            },
            'get_weather{"city":"Paris"}',
        ),
        (
            "chat.completions",
            {"choices": [{"message": {"content": "a"}}, {"message": {"content": "b"}}]},
            "ab",
        ),
        ("completions", {"choices": [{"text": "abc"}, {"text": "def"}]}, "abcdef"),
        ("embeddings", {"data": [{"embedding": [0.1]}], "usage": {"prompt_tokens": 1}}, ""),
        (
            "responses",
            {
                "output": [
                    {"type": "reasoning", "summary": []},
                    {"type": "message", "content": [{"type": "output_text", "text": "Hi"}, "x"]},
                    {"type": "function_call", "name": "f", "arguments": '{"a":1}'},
                    "junk",
                ]
            },
            'Hi{"a":1}',
        ),
        ("responses", {"output": None}, ""),
        ("chat.completions", ["not", "a", "dict"], ""),
    ],
)
def test_completion_text(endpoint: str, body: Any, text: str) -> None:
    assert completion_text(endpoint, body) == text
