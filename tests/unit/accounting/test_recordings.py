"""Every recorded provider response, read by the accounting layer alone (no processes):
the usage found equals what the provider bills, as derived by hand in the recording's
`expected` (the end-to-end replay of the same recordings is tests/e2e/test_recordings.py)."""

from __future__ import annotations

import pytest

from proxy.accounting.records import Usage
from proxy.accounting.sse import SSESplitter
from proxy.accounting.stream_usage import StreamUsageWatcher
from proxy.accounting.usage import find_usage
from tests.support.recordings import Recording, billed_figures, expected_figures, recordings

WHOLE = [r for r in recordings() if not r.stream and r.status == 200]
STREAMS = [r for r in recordings() if r.stream]


def ids(items: list[Recording]) -> list[str]:
    return [item.name for item in items]


@pytest.mark.parametrize("item", WHOLE, ids=ids(WHOLE))
def test_a_whole_answer_is_read_as_the_provider_bills_it(item: Recording) -> None:
    usage = find_usage(item.body, item.endpoint).usage
    assert usage is not None
    assert billed_figures(usage, 200) == expected_figures(item)


def watch(item: Recording, *, suppress: bool = False) -> tuple[StreamUsageWatcher, list[str]]:
    delivered: list[str] = []
    watcher = StreamUsageWatcher(
        item.endpoint, suppress_usage_chunk=suppress, text_sink=delivered.append
    )
    splitter = SSESplitter()
    # Fed in uneven pieces, as a network delivers them.
    for start in range(0, len(item.body), 977):
        for event in splitter.feed(item.body[start : start + 977]):
            watcher.observe(event)
    tail = splitter.remainder()
    if tail:
        watcher.observe(tail)
    watcher.finish()
    return watcher, delivered


@pytest.mark.parametrize("item", STREAMS, ids=ids(STREAMS))
def test_a_stream_is_read_as_the_provider_bills_it(item: Recording) -> None:
    watcher, delivered = watch(item)
    status = 200 if watcher.error is None else watcher.error.status
    assert status == item.expected["status"]
    if not item.counts_known:
        # No usage at all: the estimate counts what was delivered, reasoning included.
        assert watcher.usage is None
        assert watcher.error is not None and watcher.error.billed
        assert "".join(delivered).strip()
        return
    usage = watcher.usage
    if usage is None:  # a failure the provider does not bill: nothing, as it says
        assert watcher.error is not None and not watcher.error.billed
        usage = Usage(service_tier=watcher.service_tier)
    assert billed_figures(usage, status) == expected_figures(item)


@pytest.mark.parametrize("item", STREAMS, ids=ids(STREAMS))
def test_every_event_of_a_stream_is_forwarded_when_the_client_asked_for_usage(
    item: Recording,
) -> None:
    sink: list[str] = []
    watcher = StreamUsageWatcher(item.endpoint, suppress_usage_chunk=False, text_sink=sink.append)
    events = SSESplitter().feed(item.body)
    assert all(watcher.observe(event) for event in events)
