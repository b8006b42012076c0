"""accounting.sse: whole events out of arbitrarily chunked bytes, byte for byte, and their data."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.accounting.sse import SSESplitter, event_data


def stream_events(newline: bytes) -> list[bytes]:
    """A realistic stream: chat chunks, a comment, a named multi-line event, a usage chunk."""
    lines = [
        [b'data: {"choices":[{"delta":{"role":"assistant","content":""}}]}'],
        [b": keep-alive"],
        [b'data: {"choices":[{"delta":{"content":"Hel"}}]}'],
        [b"event: response.output_text.delta", b"id: 7", b'data: {"delta":"lo', b'data: !"}'],
        [b'data:{"choices":[{"delta":{"content":"\\n\\n"}}]}'],
        [b'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}'],
        [b"data: [DONE]"],
    ]
    return [newline.join(event) + newline * 2 for event in lines]


NEWLINES = [b"\n", b"\r\n", b"\r"]


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = [0, *sorted(set(cuts)), len(data)]
    return [data[a:b] for a, b in pairwise(points)]


def feed_all(chunks: list[bytes]) -> tuple[list[bytes], bytes]:
    splitter = SSESplitter()
    events = [event for chunk in chunks for event in splitter.feed(chunk)]
    return events, splitter.remainder()


@pytest.mark.parametrize("newline", NEWLINES, ids=["LF", "CRLF", "CR"])
def test_whole_stream_in_one_feed(newline: bytes) -> None:
    expected = stream_events(newline)
    assert feed_all([b"".join(expected)]) == (expected, b"")


@pytest.mark.parametrize("newline", NEWLINES, ids=["LF", "CRLF", "CR"])
def test_one_byte_at_a_time(newline: bytes) -> None:
    expected = stream_events(newline)
    data = b"".join(expected)
    assert feed_all([data[i : i + 1] for i in range(len(data))]) == (expected, b"")


@settings(max_examples=300, deadline=None)
@given(
    newline=st.sampled_from(NEWLINES),
    tail=st.sampled_from([b"", b'data: {"partial":', b"data: x\n", b": c"]),
    data=st.data(),
)
def test_arbitrary_chunk_boundaries_change_nothing(
    newline: bytes, tail: bytes, data: st.DataObject
) -> None:
    expected = stream_events(newline)
    if newline != b"\n" and tail.endswith(b"\n"):
        tail = tail[:-1] + newline
    stream = b"".join(expected) + tail
    cuts = data.draw(st.lists(st.integers(min_value=0, max_value=len(stream)), max_size=40))
    events, remainder = feed_all(split_at(stream, cuts))
    assert events == expected
    assert remainder == tail
    assert b"".join(events) + remainder == stream


def test_incomplete_event_is_held_until_its_blank_line() -> None:
    splitter = SSESplitter()
    assert splitter.feed(b"data: a") == []
    assert splitter.feed(b"bc\n") == []
    assert splitter.feed(b"\ndata: d") == [b"data: abc\n\n"]
    assert splitter.feed(b"\r\n\r\n") == [b"data: d\r\n\r\n"]
    assert splitter.feed(b"") == []


def test_crlf_blank_line_split_across_feeds() -> None:
    splitter = SSESplitter()
    assert splitter.feed(b"data: a\r\n\r") == []
    assert splitter.feed(b"\ndata: b\r\n") == [b"data: a\r\n\r\n"]
    assert splitter.feed(b"\r\n") == [b"data: b\r\n\r\n"]


def test_remainder_returns_the_unterminated_tail_once() -> None:
    splitter = SSESplitter()
    assert splitter.feed(b"data: 1\n\ndata: 2\n") == [b"data: 1\n\n"]
    assert splitter.remainder() == b"data: 2\n"
    assert splitter.remainder() == b""
    assert splitter.feed(b"data: 3\n\n") == [b"data: 3\n\n"]  # the tail is not prepended again


@pytest.mark.parametrize(
    ("event", "data"),
    [
        (b'data: {"a":1}\n\n', b'{"a":1}'),
        (b'data:{"a":1}\n\n', b'{"a":1}'),
        (b"data: [DONE]\n\n", b"[DONE]"),
        (b"data:  two spaces\n\n", b" two spaces"),  # only one space is part of the syntax
        (b"data: trailing  \n\n", b"trailing  "),
        (b"data: x\r\n\r\n", b"x"),
        (b"data: x\r\r", b"x"),
        (b"data: tail", b"tail"),  # a remainder without its blank line
        (b"event: ping\ndata: y\n\n", b"y"),
        (b"data: y\nid: 3\nretry: 10\n\n", b"y"),
        (b"data: a\ndata: b\n\n", b"a\nb"),
        (b"data: a\ndata:b\ndata: c\n\n", b"a\nb\nc"),
        (b"data: a\r\ndata: b\r\n\r\n", b"a\nb"),
        (b"data: a\rdata: b\r\r", b"a\nb"),
        (b"data: a\ndata:\ndata: b\n\n", b"a\n\nb"),
        (b"data:  a\ndata: b \n\n", b" a\nb "),
        (b": comment\n\n", b""),
        (b"id: 1\nretry: 10\n\n", b""),
        (b"event: x\n\n", b""),
        (b"datum: no\n\n", b""),
    ],
)
def test_event_data(event: bytes, data: bytes) -> None:
    assert event_data(event) == data
