"""The OpenAI-compatible API: chat, completions, embeddings and responses endpoints."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from multidict import MultiMapping

from proxy.accounting.pricing import STANDARD, PriceContext
from proxy.accounting.stream_usage import StreamUsageWatcher
from proxy.accounting.usage import Reading, completion_text, find_usage, parsed_reading
from proxy.apis.base import Api, StreamWatcher
from proxy.pipeline.request import check_payload

__all__ = ["OPENAI", "OpenAIApi"]


class OpenAIApi(Api):
    name = "openai"

    def check_payload(self, endpoint: str, payload: dict[str, Any]) -> None:
        check_payload(endpoint, payload)

    def end_user(self, payload: Mapping[str, Any]) -> object:
        return payload.get("user")

    def read_body(self, body: bytes, endpoint: str) -> Reading:
        return find_usage(body, endpoint)

    def read_parsed(self, parsed: Any, endpoint: str) -> Reading:
        return parsed_reading(parsed, endpoint)

    def completion_text(self, endpoint: str, parsed: Any) -> str:
        return completion_text(endpoint, parsed)

    def stream_watcher(
        self, endpoint: str, *, suppress_usage_chunk: bool, text_sink: Callable[[str], None]
    ) -> StreamWatcher:
        return StreamUsageWatcher(
            endpoint, suppress_usage_chunk=suppress_usage_chunk, text_sink=text_sink
        )

    def error_body(
        self, status: int, message: str, type_: str, code: str, param: str | None
    ) -> dict[str, Any]:
        return {"error": {"message": message, "type": type_, "param": param, "code": code}}

    def price_context(self, upstream_headers: MultiMapping[str]) -> PriceContext:
        return STANDARD


OPENAI = OpenAIApi()
