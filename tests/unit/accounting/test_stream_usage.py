"""accounting.stream_usage: which events reach the client, and what usage a stream carried."""

from __future__ import annotations

import orjson
import pytest

from proxy.accounting.records import Usage
from proxy.accounting.stream_usage import StreamUsageWatcher


def sse(payload: dict | str, event: str | None = None) -> bytes:
    data = payload if isinstance(payload, str) else orjson.dumps(payload).decode()
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {data}\n\n".encode()


def content_chunk(text: str, **extra: object) -> bytes:
    return sse(
        {
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": {"content": text}}],
            **extra,
        }
    )


USAGE_ONLY = sse(
    {
        "object": "chat.completion.chunk",
        "choices": [],
        "usage": {
            "prompt_tokens": 12,
            "completion_tokens": 3,
            "total_tokens": 15,
            "prompt_tokens_details": {"cached_tokens": 4},
            "completion_tokens_details": {"reasoning_tokens": 1},
        },
    }
)
DONE = b"data: [DONE]\n\n"
CHAT_STREAM = [content_chunk("Hel"), content_chunk("lo"), USAGE_ONLY, DONE]


def watch(
    events: list[bytes], *, endpoint: str = "chat.completions", suppress: bool
) -> tuple[StreamUsageWatcher, list[bool], list[str]]:
    sink: list[str] = []
    watcher = StreamUsageWatcher(endpoint, suppress_usage_chunk=suppress, text_sink=sink.append)
    forwarded = [watcher.observe(event) for event in events]
    return watcher, forwarded, sink


@pytest.mark.parametrize(
    ("suppress", "forwarded"),
    [
        (True, [True, True, False, True]),  # the proxy asked for usage itself: hide its chunk
        (False, [True, True, True, True]),  # the client asked for it: relay it
    ],
)
def test_usage_only_chunk(suppress: bool, forwarded: list[bool]) -> None:
    watcher, actual, _ = watch(CHAT_STREAM, suppress=suppress)
    assert actual == forwarded
    assert watcher.usage == Usage(12, 4, 3, 1)


@pytest.mark.parametrize("suppress", [True, False])
def test_usage_on_a_content_chunk_is_captured_and_always_forwarded(suppress: bool) -> None:
    # Some servers report usage on the last content chunk rather than on a chunk of its own.
    last = content_chunk("!", usage={"prompt_tokens": 2, "completion_tokens": 1})
    watcher, forwarded, _ = watch([content_chunk("Hi"), last, DONE], suppress=suppress)
    assert forwarded == [True, True, True]
    assert watcher.usage == Usage(2, 0, 1, 0)


@pytest.mark.parametrize("spacing", ["compact", "spaced"])
def test_null_usage_chunks_are_forwarded_and_give_no_usage(spacing: str) -> None:
    events = [content_chunk("a", usage=None), content_chunk("b", usage=None), DONE]
    if spacing == "spaced":
        events = [e.replace(b'"usage":null', b'"usage": null') for e in events]
    watcher, forwarded, sink = watch(events, suppress=True)
    assert forwarded == [True, True, True]
    assert watcher.usage is None
    watcher.flush_text()
    assert "".join(sink) == "ab"


def test_escaped_usage_inside_content_is_not_usage() -> None:
    events = [content_chunk('the "usage": {"prompt_tokens": 999} field'), DONE]
    watcher, forwarded, sink = watch(events, suppress=True)
    assert forwarded == [True, True]
    assert watcher.usage is None
    watcher.flush_text()
    assert "".join(sink) == 'the "usage": {"prompt_tokens": 999} field'


RESPONSES_STREAM = [
    sse(
        {"type": "response.created", "response": {"id": "r1", "usage": None}},
        "response.created",
    ),
    sse({"type": "response.output_text.delta", "delta": "Hi"}, "response.output_text.delta"),
    sse({"type": "response.output_text.delta", "delta": " there"}, "response.output_text.delta"),
    sse(
        {
            "type": "response.completed",
            "response": {
                "id": "r1",
                "usage": {
                    "input_tokens": 9,
                    "input_tokens_details": {"cached_tokens": 2},
                    "output_tokens": 7,
                    "output_tokens_details": {"reasoning_tokens": 3},
                    "total_tokens": 16,
                },
            },
        },
        "response.completed",
    ),
]


@pytest.mark.parametrize("suppress", [True, False])
def test_responses_completed_usage_is_captured_and_forwarded(suppress: bool) -> None:
    watcher, forwarded, _ = watch(RESPONSES_STREAM, endpoint="responses", suppress=suppress)
    assert forwarded == [True, True, True, True]
    assert watcher.usage == Usage(9, 2, 7, 3)


def test_without_usage_flush_text_delivers_the_streamed_text() -> None:
    events = [
        content_chunk("Hel"),
        b": keep-alive\n\n",
        content_chunk("lo"),
        b"data: not json\n\n",
        DONE,
    ]
    watcher, forwarded, sink = watch(events, suppress=True)
    assert forwarded == [True] * 5
    assert watcher.usage is None
    watcher.flush_text()
    assert "".join(sink) == "Hello"
    watcher.flush_text()  # nothing is delivered twice
    assert "".join(sink) == "Hello"


def test_responses_without_usage_flush_text_delivers_the_deltas() -> None:
    watcher, _, sink = watch(RESPONSES_STREAM[:3], endpoint="responses", suppress=True)
    assert watcher.usage is None
    watcher.flush_text()
    assert "".join(sink) == "Hi there"


def test_text_past_the_raw_size_limit_is_delivered_whole_and_in_order() -> None:
    pieces = [f"<{i:04d}:" + "x" * 40 + ">" for i in range(2000)]  # ~150 KiB of events
    events = [content_chunk(piece) for piece in pieces] + [DONE]
    assert sum(map(len, events)) > 4 * 32 * 1024
    watcher, forwarded, sink = watch(events, suppress=True)
    assert all(forwarded)
    watcher.flush_text()
    assert "".join(sink) == "".join(pieces)


def test_completions_stream_text() -> None:
    events = [sse({"choices": [{"index": 0, "text": t}]}) for t in ("Once", " upon")] + [DONE]
    watcher, _, sink = watch(events, endpoint="completions", suppress=True)
    watcher.flush_text()
    assert "".join(sink) == "Once upon"


def test_cumulative_usage_in_every_chunk_bills_the_last() -> None:
    # Perplexity repeats a growing usage in every chunk: the last one is the total.
    events = [
        content_chunk(word, usage={"prompt_tokens": 11, "completion_tokens": n})
        for n, word in enumerate(("a", "b", "c"), start=1)
    ]
    watcher, forwarded, _ = watch([*events, DONE], suppress=True)
    watcher.finish()
    assert forwarded == [True] * 4
    assert watcher.usage == Usage(11, 0, 3, 0)


def test_an_error_event_sets_the_streams_error_and_keeps_the_text() -> None:
    error = sse({"error": {"type": "invalid_request_error", "status_code": 400}}, "error")
    watcher, forwarded, sink = watch([content_chunk("Hi"), error], suppress=True)
    watcher.finish()
    assert forwarded == [True, True]
    assert watcher.error is not None and watcher.error.status == 400
    assert watcher.usage is None
    assert "".join(sink) == "Hi"
