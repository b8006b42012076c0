"""The request log in-process: one JSON line per request, fields as documented, no text."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import orjson
import pytest

from proxy.accounting.records import UsageRecord
from proxy.observability.request_log import (
    LOGGER_NAME,
    RequestLog,
    flush_request_log,
    send_request_log_to,
)

RECORD = UsageRecord(
    request_id="req_abc",
    ts_ms=1_700_000_000_000,
    customer="acme",
    route="story",
    provider="openai",
    model="cheap-model",
    endpoint="chat.completions",
    status=200,
    input_tokens=100,
    cached_input_tokens=40,
    output_tokens=20,
    reasoning_tokens=5,
    cost_nusd=1_234_567,
    end_user="player-1",
    tags=("feature=story",),
    key_id="backend",
    latency_ms=12.5,
    ttft_ms=3.25,
)


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    logger = logging.getLogger(LOGGER_NAME)
    saved = logger.handlers[:], logger.propagate, logger.level
    stream = io.StringIO()
    send_request_log_to(stream)
    logger.setLevel(logging.INFO)
    yield stream
    logger.handlers[:], logger.propagate = saved[0], saved[1]
    logger.setLevel(saved[2])


def _entries(stream: io.StringIO) -> list[dict]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


def test_a_routed_request_is_one_json_line(lines: io.StringIO):
    RequestLog(enabled=True).routed(RECORD, 0.000321, ())
    (entry,) = _entries(lines)
    assert entry == {
        "request_id": "req_abc",
        "ts_ms": 1_700_000_000_000,
        "customer": "acme",
        "end_user": "player-1",
        "tags": ["feature=story"],
        "key_id": "backend",
        "endpoint": "chat.completions",
        "route": "story",
        "model": "cheap-model",
        "provider": "openai",
        "status": 200,
        "input_tokens": 100,
        "cached_input_tokens": 40,
        "output_tokens": 20,
        "reasoning_tokens": 5,
        "usage_source": "upstream",
        "cost_usd": "0.001234567",
        "latency_ms": 12.5,
        "ttft_ms": 3.25,
        "overhead_ms": 0.321,
        "attempts": 1,
        "upstream_errors": [],
    }


def test_unpriced_and_rejected(lines: io.StringIO):
    log = RequestLog(enabled=True)
    log.routed(
        UsageRecord("req_x", 0, "acme", "m", "openai", "m", "embeddings", 502), 0, ("timeout",) * 2
    )
    log.rejected(1_700_000_000_000, "chat.completions", 401, "invalid_api_key", 0.0001234)
    routed, rejected = _entries(lines)
    assert routed["cost_usd"] is None
    assert routed["upstream_errors"] == ["timeout", "timeout"]
    assert rejected == {
        "request_id": None,
        "ts_ms": 1_700_000_000_000,
        "customer": None,
        "endpoint": "chat.completions",
        "route": None,
        "model": "none",
        "provider": "none",
        "status": 401,
        "error": "invalid_api_key",
        "latency_ms": 0.123,
    }


def test_disabled_in_config_or_by_level_writes_nothing(lines: io.StringIO):
    RequestLog(enabled=False).routed(RECORD, 0, ())
    RequestLog(enabled=False).rejected(0, "chat.completions", 401, "invalid_api_key", 0)
    logging.getLogger(LOGGER_NAME).setLevel(logging.WARNING)
    RequestLog(enabled=True).routed(RECORD, 0, ())
    assert lines.getvalue() == ""


def test_lines_are_bare_json_not_the_root_format(lines: io.StringIO):
    RequestLog(enabled=True).routed(RECORD, 0, ())
    assert lines.getvalue().startswith('{"request_id":"req_abc"')
    assert lines.getvalue().count("\n") == 1


def test_a_file_gets_whole_lines_in_batches_when_flushed(tmp_path):
    logger = logging.getLogger(LOGGER_NAME)
    saved = logger.handlers[:], logger.propagate, logger.level
    path = tmp_path / "requests.log"
    with path.open("w") as file:
        try:
            send_request_log_to(file)
            logger.setLevel(logging.INFO)
            log = RequestLog(enabled=True)
            for _ in range(3):
                log.routed(RECORD, 0.0001, ())
            assert path.read_text() == ""  # buffered: no write system call per request
            flush_request_log()
            lines = path.read_text().splitlines()
        finally:
            logger.handlers[:], logger.propagate = saved[0], saved[1]
            logger.setLevel(saved[2])
    assert [orjson.loads(line)["request_id"] for line in lines] == ["req_abc"] * 3
