"""accounting.anthropic_usage and anthropic_stream: Anthropic's usage, as Anthropic bills
it, in the record's terms (input holds every prompt token). One table per rule; the rows
cite the documentation or the recording they come from (the recordings in full:
test_anthropic_recordings.py)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from proxy.accounting.anthropic_stream import MessageStreamWatcher
from proxy.accounting.anthropic_usage import (
    UsageFold,
    block_text,
    delta_text,
    message_text,
    normalise_message_usage,
)
from proxy.accounting.records import Usage


def usage(uncached: int, output: int, **extra: Any) -> dict[str, Any]:
    return {"input_tokens": uncached, "output_tokens": output, **extra}


# input = input_tokens + cache reads + cache writes (docs: prompt caching, "Tracking cache
# performance"); the split by lifetime from `cache_creation`, the rest 5m (default TTL).
@pytest.mark.parametrize(
    ("reported", "expected"),
    [
        pytest.param(usage(43, 321), Usage(43, 0, 321), id="plain"),
        pytest.param(
            usage(3, 406, cache_read_input_tokens=1111, cache_creation_input_tokens=0),
            Usage(1114, 1111, 406),
            id="cache-read-plain_cache_read",
        ),
        pytest.param(
            usage(3, 33, cache_read_input_tokens=1111, cache_creation_input_tokens=418),
            Usage(1532, 1111, 33, cache_write_5m_tokens=418),
            id="write-without-split-is-5m",
        ),
        pytest.param(
            usage(
                3,
                33,
                cache_read_input_tokens=1111,
                cache_creation_input_tokens=418,
                cache_creation={"ephemeral_5m_input_tokens": 418, "ephemeral_1h_input_tokens": 0},
            ),
            Usage(1532, 1111, 33, cache_write_5m_tokens=418),
            id="write-5m-split",
        ),
        pytest.param(
            usage(
                8,
                68,
                cache_read_input_tokens=31105,
                cache_creation_input_tokens=275,
                cache_creation={"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 275},
            ),
            Usage(31388, 31105, 68, cache_write_1h_tokens=275),
            id="write-1h-stream_cache_write_1h",
        ),
        pytest.param(
            usage(
                10,
                1,
                cache_creation_input_tokens=300,
                cache_creation={"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 200},
            ),
            Usage(310, 0, 1, cache_write_5m_tokens=100, cache_write_1h_tokens=200),
            id="mixed-lifetimes",
        ),
        pytest.param(
            usage(
                6,
                198,
                cache_read_input_tokens=6289,
                cache_creation_input_tokens=3337,
                cache_creation={"ephemeral_5m_input_tokens": 3068, "ephemeral_1h_input_tokens": 0},
            ),
            Usage(9632, 6289, 198, cache_write_5m_tokens=3337),
            id="split-short-of-the-writes-rest-is-5m",
        ),
        pytest.param(
            usage(
                1,
                1,
                cache_creation_input_tokens=300,
                cache_creation={"ephemeral_1h_input_tokens": 500},
            ),
            Usage(301, 0, 1, cache_write_1h_tokens=300),
            id="split-over-the-writes-is-cut-to-them",
        ),
        pytest.param(
            usage(1, 2, cache_read_input_tokens=None, cache_creation_input_tokens=None),
            Usage(1, 0, 2),
            id="null-cache-counts",
        ),
        pytest.param(
            usage(8984, 520, server_tool_use={"web_search_requests": 1, "web_fetch_requests": 0}),
            Usage(8984, 0, 520, web_search_requests=1),
            id="web-search-plain_web_search",
        ),
        pytest.param(
            usage(598, 92, output_tokens_details={"thinking_tokens": 44}),
            Usage(598, 0, 92, 44),
            id="thinking-is-reasoning-within-output",
        ),
        pytest.param(
            usage(5, 7, service_tier="priority", inference_geo="us"),
            Usage(5, 0, 7, service_tier="priority"),
            id="service-tier",
        ),
        # docs: compaction, "Understanding usage": the top level is the final message
        # iteration; the compaction step is billed too.
        pytest.param(
            usage(
                23000,
                1000,
                iterations=[
                    {"type": "compaction", "input_tokens": 180000, "output_tokens": 3500},
                    {"type": "message", "input_tokens": 23000, "output_tokens": 1000},
                ],
            ),
            Usage(203000, 0, 4500),
            id="compaction-iteration-added",
        ),
        # A model fallback: the top level mirrors the final (served) iteration; the
        # declined attempt's billing is not documented (see docs/anthropic.md).
        pytest.param(
            usage(
                10,
                5,
                iterations=[
                    {"type": "message", "input_tokens": 100, "output_tokens": 0},
                    {"type": "fallback_message", "input_tokens": 10, "output_tokens": 5},
                ],
            ),
            Usage(10, 0, 5),
            id="fallback-iterations-are-the-top-level",
        ),
        pytest.param(usage(1, 1, iterations=5), Usage(1, 0, 1), id="iterations-not-a-list"),
        pytest.param(
            usage(
                8,
                68,
                cache_read_input_tokens=31105,
                iterations=[
                    {
                        "type": "message",
                        "input_tokens": 8,
                        "output_tokens": 68,
                        "cache_read_input_tokens": 31105,
                    }
                ],
            ),
            Usage(31113, 31105, 68),
            id="message-iteration-is-the-top-level",
        ),
    ],
)
def test_usage_is_normalised_to_the_record(reported: dict, expected: Usage) -> None:
    assert normalise_message_usage(reported) == expected


@pytest.mark.parametrize(
    "reported",
    [
        None,
        [],
        {"output_tokens": 5},
        {"input_tokens": 5},
        {"input_tokens": True, "output_tokens": 1},
        {"input_tokens": -1, "output_tokens": 1},
        {"input_tokens": "5", "output_tokens": 1},
    ],
)
def test_usage_without_usable_counts_is_none(reported: Any) -> None:
    # None: the caller estimates; a missing count is never billed as zero.
    assert normalise_message_usage(reported) is None


def start(message_usage: dict, model: str = "claude-x") -> dict:
    return {"type": "message_start", "message": {"model": model, "usage": message_usage}}


def delta(delta_usage: dict) -> dict:
    return {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": delta_usage}


SPLIT_1H = {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 275}


# Streams: each field from the last event that has it, a message_delta's over a
# message_start's whatever their order (message_delta usage is cumulative: docs,
# streaming; SDK MessageDeltaUsage).
@pytest.mark.parametrize(
    ("events", "expected"),
    [
        pytest.param(
            [start(usage(17, 1)), delta({"output_tokens": 10})],
            Usage(17, 0, 10),
            id="older-delta-output-only",
        ),
        pytest.param(
            [
                start(usage(2039, 1)),
                delta(usage(10423, 341, server_tool_use={"web_search_requests": 1})),
            ],
            Usage(10423, 0, 341, web_search_requests=1),
            id="delta-overrides-input-stream_web_search",
        ),
        pytest.param(
            [
                start(
                    usage(
                        8,
                        2,
                        cache_read_input_tokens=31105,
                        cache_creation_input_tokens=275,
                        cache_creation=SPLIT_1H,
                    )
                ),
                delta(usage(8, 68, cache_read_input_tokens=31105, cache_creation_input_tokens=275)),
            ],
            Usage(31388, 31105, 68, cache_write_1h_tokens=275),
            id="split-only-in-start-stream_cache_write_1h",
        ),
        pytest.param(
            [
                start(
                    usage(
                        2,
                        69,
                        cache_creation_input_tokens=3068,
                        cache_creation={"ephemeral_5m_input_tokens": 3068},
                    )
                ),
                delta(
                    usage(6, 198, cache_read_input_tokens=6289, cache_creation_input_tokens=3337)
                ),
            ],
            Usage(9632, 6289, 198, cache_write_5m_tokens=3337),
            id="uncovered-writes-are-5m",
        ),
        pytest.param(
            [start(usage(5, 1)), delta({"output_tokens": 4}), delta({"output_tokens": 9})],
            Usage(5, 0, 9),
            id="two-deltas-last-wins",
        ),
        pytest.param(
            [delta(usage(50, 9)), start(usage(5, 1))],
            Usage(50, 0, 9),
            id="delta-before-start-still-wins",
        ),
    ],
)
def test_a_stream_folds_to_its_final_usage(events: list[dict], expected: Usage) -> None:
    fold = UsageFold()
    for event in events:
        fold.event(event)
    assert fold.final and fold.started
    assert fold.model == "claude-x"
    assert fold.usage() == expected


def test_a_stream_without_delta_is_not_final() -> None:
    fold = UsageFold()
    fold.event({"type": "ping"})
    assert not fold.started and fold.usage() is None
    fold.event(start(usage(5, 1)))
    assert fold.started and not fold.final
    assert fold.usage() == Usage(5, 0, 1)


def sse(event: dict) -> bytes:
    return b"event: " + event["type"].encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"


def text_delta(text: str) -> dict:
    return {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "text_delta", "text": text},
    }


OVERLOADED = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}


def watch(events: list[bytes]) -> tuple[MessageStreamWatcher, list[str]]:
    delivered: list[str] = []
    watcher = MessageStreamWatcher(text_sink=delivered.append)
    for event in events:
        assert watcher.observe(event) is True  # nothing is ever held back
    watcher.finish()
    return watcher, delivered


def test_a_whole_stream_gives_its_usage_and_model() -> None:
    watcher, delivered = watch(
        [
            sse(start(usage(5, 1), "claude-y")),
            sse(text_delta("hi")),
            sse(delta({"output_tokens": 3})),
        ]
    )
    assert watcher.usage == Usage(5, 0, 3)
    assert watcher.partial is None and watcher.error is None
    assert watcher.model == "claude-y"
    assert delivered == []  # final usage: no text needed for an estimate


def test_an_error_after_message_start_is_billed_from_what_was_said() -> None:
    watcher, delivered = watch(
        [
            sse(start(usage(40, 1, cache_read_input_tokens=60))),
            sse(text_delta("Hello")),
            sse(text_delta(" there")),
            sse(OVERLOADED),
        ]
    )
    assert watcher.usage is None
    assert watcher.partial == Usage(100, 60, 1)  # exact input side, provisional output
    assert watcher.error is not None and watcher.error.status == 529 and watcher.error.billed
    assert "".join(delivered) == "Hello there"


def test_an_error_before_message_start_bills_nothing() -> None:
    # The Helicone-captured overload: the stream's first and only event.
    watcher, _ = watch([sse(OVERLOADED)])
    assert watcher.usage is None and watcher.partial is None
    assert watcher.error is not None and watcher.error.status == 529
    assert not watcher.error.billed


def test_a_stream_without_event_lines_is_read_too() -> None:
    bare = [
        b"data: " + orjson.dumps(start(usage(5, 1))) + b"\n\n",
        b"data: " + orjson.dumps(delta({"output_tokens": 2})) + b"\n\n",
    ]
    watcher, _ = watch(bare)
    assert watcher.usage == Usage(5, 0, 2)


def test_content_mentioning_usage_or_error_is_not_read_as_such() -> None:
    tricky = text_delta('the "usage" and "error" keys')
    watcher, _ = watch([sse(start(usage(5, 1))), sse(tricky), sse(delta({"output_tokens": 2}))])
    assert watcher.usage == Usage(5, 0, 2) and watcher.error is None


@pytest.mark.parametrize(
    ("event", "text"),
    [
        (text_delta("hi"), "hi"),
        (
            {"type": "content_block_delta", "delta": {"type": "thinking_delta", "thinking": "hm"}},
            "hm",
        ),
        (
            {
                "type": "content_block_delta",
                "delta": {"type": "input_json_delta", "partial_json": '{"a'},
            },
            '{"a',
        ),
        (
            {"type": "content_block_delta", "delta": {"type": "signature_delta", "signature": "x"}},
            "",
        ),
        ({"type": "content_block_start", "content_block": {"type": "text", "text": ""}}, ""),
        (None, ""),
    ],
)
def test_delta_text(event: Any, text: str) -> None:
    assert delta_text(event) == text


def test_message_text_counts_text_thinking_and_tool_input() -> None:
    body = {
        "content": [
            {"type": "thinking", "thinking": "Let me see. ", "signature": "sig"},
            {"type": "text", "text": "Calling a tool."},
            {"type": "tool_use", "id": "t1", "name": "f", "input": {"city": "Paris"}},
            {"type": "redacted_thinking", "data": "opaque"},
        ]
    }
    assert message_text(body) == 'Let me see. Calling a tool.{"city":"Paris"}'
    assert block_text("text") == "" and message_text([]) == ""
