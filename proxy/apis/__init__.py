"""The client APIs the proxy serves, and their endpoints: each endpoint names its API
(dialect), which the request path asks whatever differs between APIs."""

from __future__ import annotations

from proxy.apis.anthropic import ANTHROPIC
from proxy.apis.base import Api, Endpoint, StreamWatcher
from proxy.apis.openai import OPENAI

__all__ = ["ANTHROPIC", "ENDPOINTS", "OPENAI", "Api", "Endpoint", "StreamWatcher", "api_for_path"]

ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("chat.completions", "/v1/chat/completions", OPENAI),
    Endpoint("completions", "/v1/completions", OPENAI),
    Endpoint("embeddings", "/v1/embeddings", OPENAI),
    Endpoint("responses", "/v1/responses", OPENAI),
    Endpoint("messages", "/v1/messages", ANTHROPIC),
    Endpoint("messages.count_tokens", "/v1/messages/count_tokens", ANTHROPIC, billed=False),
)
_MESSAGES_PATH = "/v1/messages"


def api_for_path(path: str) -> Api:
    """The API whose error shape a path answers in (unknown paths under Anthropic's
    `/v1/messages` too, so that its clients can read the 404)."""
    if path == _MESSAGES_PATH or path.startswith(_MESSAGES_PATH + "/"):
        return ANTHROPIC
    return OPENAI
