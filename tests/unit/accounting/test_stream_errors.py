"""accounting.stream_errors: the status an error event stands for, and who bills it."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.accounting.stream_errors import StreamError, error_of_event, status_of_error


@pytest.mark.parametrize(
    ("error", "status"),
    [
        ({"type": "invalid_request_error", "code": "tool_use_failed", "status_code": 400}, 400),
        ({"code": 400, "message": "Token limit reached"}, 400),  # OpenRouter
        ({"code": "502", "message": "upstream"}, 502),
        ({"type": "insufficient_quota", "code": "insufficient_quota"}, 429),
        ({"code": "rate_limit_exceeded"}, 429),
        ({"type": "rate_limit_error"}, 429),
        ({"type": "server_error"}, 500),
        ({"type": "overloaded_error"}, 529),
        ({"type": "authentication_error"}, 401),
        ({"type": "permission_error"}, 403),
        ({"type": "not_found_error"}, 404),
        ({"code": "context_length_exceeded", "type": "invalid_request_error"}, 400),
        ({"type": "something_new"}, 500),
        ({"status": "failed", "code": 12}, 500),
        ("not an object", 500),
    ],
)
def test_status_of_error(error: Any, status: int) -> None:
    assert status_of_error(error) == status


@pytest.mark.parametrize(
    ("name", "data", "error"),
    [
        pytest.param("error", {"error": {"status_code": 400}}, StreamError(400), id="groq"),
        pytest.param("", {"id": "gen", "error": {"code": 400}, "choices": []}, StreamError(400),
                     id="openrouter-chunk"),
        pytest.param("error", {"type": "error", "error": {"code": "insufficient_quota"}},
                     StreamError(429), id="responses-error"),
        pytest.param("error", {"type": "error", "code": "server_error", "message": "x"},
                     StreamError(500), id="responses-error-flat"),
        pytest.param("response.failed",
                     {"type": "response.failed", "response": {"error": {"code": "server_error"}}},
                     StreamError(500), id="responses-failed"),
        pytest.param("error", "not json", StreamError(500), id="error-event-unreadable"),
        pytest.param("", {"choices": [], "error": None}, None, id="null-error"),
        pytest.param("response.completed", {"type": "response.completed", "response": {}}, None,
                     id="completed"),
        pytest.param("", {"choices": [{"delta": {"content": "error"}}]}, None, id="content"),
    ],
)  # fmt: skip
def test_error_of_event(name: str, data: Any, error: StreamError | None) -> None:
    assert error_of_event(name, data) == error


def test_only_quota_and_rate_limit_failures_go_unbilled() -> None:
    assert not StreamError(429).billed
    assert all(StreamError(status).billed for status in (400, 401, 404, 500, 503, 529))
