"""Every recorded Messages API answer (tests/fixtures/recordings/anthropic), read by the
Messages API's usage rules alone (no processes): the usage found is what Anthropic
bills, as derived by hand in each recording's `expected`. The end-to-end replay of the
same recordings through a real proxy: tests/e2e/test_anthropic_recordings.py."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.accounting.records import Usage
from proxy.accounting.sse import SSESplitter
from proxy.apis import ANTHROPIC
from tests.support.recordings import Recording, anthropic_recordings

ALL = anthropic_recordings()
WHOLE = [r for r in ALL if not r.stream]
STREAMS = [r for r in ALL if r.stream]


def ids(items: list[Recording]) -> list[str]:
    return [item.name for item in items]


def figures(usage: Usage | None) -> dict[str, int]:
    """A Usage in the terms of a recording's `expected` (nothing billed: all zero)."""
    usage = usage or Usage()
    return {
        "input_tokens": usage.input_tokens,
        "cache_read_tokens": usage.cached_input_tokens,
        "cache_write_5m_tokens": usage.cache_write_5m_tokens,
        "cache_write_1h_tokens": usage.cache_write_1h_tokens,
        "output_tokens": usage.output_tokens,
        "web_search_requests": usage.web_search_requests,
    }


def expected_tokens(item: Recording) -> dict[str, Any]:
    return {k: item.expected[k] for k in figures(None)}


def test_the_recordings_are_all_here() -> None:
    assert len(ALL) == 19 and len(STREAMS) == 10


@pytest.mark.parametrize("item", WHOLE, ids=ids(WHOLE))
def test_a_whole_answer_is_read_as_anthropic_bills_it(item: Recording) -> None:
    reading = ANTHROPIC.read_body(item.body, "messages")
    if item.expected.get("billable") is False:
        # Errors carry no usage; count_tokens' {"input_tokens": N} is an estimate, free.
        assert reading.usage is None
        return
    assert figures(reading.usage) == expected_tokens(item)
    assert reading.model == item.meta["model"]


def watch(item: Recording) -> tuple[Any, list[str]]:
    delivered: list[str] = []
    watcher = ANTHROPIC.stream_watcher(
        "messages", suppress_usage_chunk=False, text_sink=delivered.append
    )
    splitter = SSESplitter()
    for start in range(0, len(item.body), 977):  # uneven pieces, as a network delivers
        for event in splitter.feed(item.body[start : start + 977]):
            assert watcher.observe(event)
    tail = splitter.remainder()
    if tail:
        watcher.observe(tail)
    watcher.finish()
    return watcher, delivered


@pytest.mark.parametrize("item", STREAMS, ids=ids(STREAMS))
def test_a_stream_is_read_as_anthropic_bills_it(item: Recording) -> None:
    watcher, _ = watch(item)
    if item.expected.get("billable") is False:
        # An `error` event before message_start: the provider never began, nothing billed;
        # recorded with the status the error stands for (overloaded_error: 529).
        assert watcher.usage is None and watcher.partial is None
        assert watcher.error is not None and not watcher.error.billed
        assert (
            watcher.error.status
            == 529
            == {"overloaded_error": 529}[item.expected["stream_error_type"]]
        )
        return
    assert watcher.error is None
    assert figures(watcher.usage) == expected_tokens(item)
    assert watcher.model == item.meta["model"]
