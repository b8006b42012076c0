"""A fake of the providers' report APIs on loopback: OpenAI's organization Usage and Costs
API, Anthropic's Admin API usage and cost reports, in their documented shapes (see
tests/fixtures/reports and their .source.md), built from traffic the test says was billed.

It paginates (`limit` buckets per page, capped by `page_buckets`, with an opaque cursor),
checks the admin key (401 in the provider's error shape), answers `group_by` and the id
filters, returns empty buckets for days without traffic, and fails on request: the next
answers can be forced (`fail_next`: 429 with Retry-After, 500, ...). It runs in a thread
with its own event loop, so a proxy process can fetch from it while the test waits.
"""

from __future__ import annotations

import asyncio
import base64
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
from aiohttp import web

from tests.support.procs import free_port

__all__ = [
    "ANTHROPIC_KEY",
    "OPENAI_KEY",
    "Billed",
    "FakeReportAPI",
    "Fault",
    "days_ago",
    "today",
]

DAY_S = 86_400
OPENAI_KEY = "sk-admin-fake-SECRET-4b1d"
ANTHROPIC_KEY = "sk-ant-admin01-fake-SECRET-9e2c"


@dataclass(frozen=True)
class Billed:
    """What the provider served and bills for some requests of one model on one UTC day."""

    day: date
    model: str  # the name the request used (the fake reports its dated snapshot)
    requests: int = 1
    input_tokens: int = 0  # all input, cached and cache writes included
    cached_input_tokens: int = 0
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0
    output_tokens: int = 0
    project_id: str = "proj_proxy"  # also the Anthropic workspace
    api_key_id: str = "key_proxy"
    endpoint: str = "completions"  # or "embeddings" (OpenAI)
    provider: str = "openai"  # whose reports show it: "openai" or "anthropic"


@dataclass
class Fault:
    status: int
    retry_after: str | None = None
    body: bytes = b'{"error": {"message": "Rate limit reached", "type": "rate_limit_error", "param": null, "code": null}}'  # noqa: E501


def _start(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def _day(seconds: int) -> date:
    return datetime.fromtimestamp(seconds, UTC).date()


def _rfc3339(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _cursor(index: int) -> str:
    return "page_" + base64.b64encode(f"bucket-{index}".encode()).decode()


def _index(cursor: str) -> int:
    return int(base64.b64decode(cursor.removeprefix("page_")).decode().split("-")[1])


@dataclass
class FakeReportAPI:
    """`prices`: model → USD per 1M tokens of each kind ("input", "cached_input",
    "cache_write_5m", "cache_write_1h", "output"); `snapshots`: model → the dated name the
    reports use; `covered_until`: no bucket reaches past this time (a report fetched
    before its last day ended)."""

    billed: list[Billed] = field(default_factory=list)
    prices: dict[str, dict[str, str]] = field(default_factory=dict)
    snapshots: dict[str, str] = field(default_factory=dict)
    page_buckets: int = 1
    covered_until: int | None = None
    fail_next: list[Fault] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)  # path?query of every request
    port: int = field(default_factory=free_port)

    def __post_init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- lifecycle (a thread with its own loop)

    def start(self) -> FakeReportAPI:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def serve() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self._serve())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, name="fake-report-api", daemon=True)
        self._thread.start()
        assert ready.wait(10), "the fake report API did not start"
        return self

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_get("/v1/organization/usage/{endpoint}", self._openai_usage)
        app.router.add_get("/v1/organization/costs", self._openai_costs)
        app.router.add_get("/v1/organizations/usage_report/messages", self._anthropic_usage)
        app.router.add_get("/v1/organizations/cost_report", self._anthropic_costs)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        loop = self._loop
        assert self._runner is not None
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(10)
        loop.close()
        self._loop = None

    def __enter__(self) -> FakeReportAPI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- shared

    def requests_to(self, path: str) -> int:
        with self._lock:
            return sum(1 for s in self.seen if s.split("?")[0] == path)

    def _gate(self, request: web.Request, kind: str) -> web.Response | None:
        """Records the request; the forced fault, or a 401 for a wrong key; else None."""
        with self._lock:
            self.seen.append(request.path_qs)
            fault = self.fail_next.pop(0) if self.fail_next else None
        if kind == "openai":
            ok = request.headers.get("Authorization") == f"Bearer {OPENAI_KEY}"
            refusal = {
                "error": {
                    "message": "Incorrect API key provided: sk-admi***.",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "invalid_api_key",
                }
            }
        else:
            ok = request.headers.get("x-api-key") == ANTHROPIC_KEY and bool(
                request.headers.get("anthropic-version")
            )
            refusal = {
                "type": "error",
                "error": {"type": "authentication_error", "message": "invalid x-api-key"},
            }
        if not ok:
            return web.json_response(refusal, status=401, dumps=lambda o: orjson.dumps(o).decode())
        if fault is not None:
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            return web.Response(
                status=fault.status,
                body=fault.body,
                headers=headers,
                content_type="application/json",
            )
        return None

    def _days(self, start: int, end: int, whole_days: bool) -> list[tuple[int, int]]:
        """Bucket spans: usage buckets start at `start` (OpenAI's first bucket does), cost
        buckets at the midnight before; none past `covered_until`."""
        limit = end if self.covered_until is None else min(end, self.covered_until)
        spans = []
        cursor = _start(_day(start)) if whole_days else start
        while cursor < limit:
            following = _start(_day(cursor)) + DAY_S
            spans.append((cursor, min(following, limit) if not whole_days else following))
            cursor = following
        if whole_days and self.covered_until is not None:
            spans = [s for s in spans if s[1] <= self.covered_until]
        return spans

    def _paged(
        self, request: web.Request, spans: list[tuple[int, int]], bucket: Callable[..., dict]
    ) -> web.Response:
        limit = int(request.query.get("limit", "7"))
        size = max(1, min(limit, self.page_buckets))
        first = _index(request.query["page"]) if "page" in request.query else 0
        chosen = spans[first : first + size]
        more = first + size < len(spans)
        page: dict[str, Any] = {
            "data": [bucket(start, end) for start, end in chosen],
            "has_more": more,
            "next_page": _cursor(first + size) if more else None,
        }
        return web.Response(body=orjson.dumps(page), content_type="application/json")

    def _rows(self, request: web.Request, endpoint: str, filters: dict[str, str]) -> list[Billed]:
        wanted = {name: set(request.query.getall(param, [])) for param, name in filters.items()}
        provider = "anthropic" if request.path.startswith("/v1/organizations/") else "openai"
        return [
            b
            for b in self.billed
            if b.endpoint == endpoint
            and b.provider == provider
            and all(not ids or getattr(b, name) in ids for name, ids in wanted.items())
        ]

    def _price(self, model: str, kind: str) -> Decimal:
        return Decimal(self.prices.get(model, {}).get(kind, "0"))

    # --- OpenAI

    async def _openai_usage(self, request: web.Request) -> web.Response:
        refused = self._gate(request, "openai")
        if refused is not None:
            return refused
        endpoint = request.match_info["endpoint"]
        start = int(request.query["start_time"])
        end = int(request.query.get("end_time", str(start + 7 * DAY_S)))
        groups = set(request.query.getall("group_by[]", []))
        rows = self._rows(
            request, endpoint, {"project_ids[]": "project_id", "api_key_ids[]": "api_key_id"}
        )
        kind = f"organization.usage.{endpoint}.result"

        def bucket(s: int, e: int) -> dict:
            results: dict[tuple, dict] = {}
            for b in rows:
                if _day(s) != b.day:
                    continue
                key = tuple(
                    getattr(b, g) if g != "model" else self.snapshots.get(b.model, b.model)
                    for g in sorted(groups)
                )
                result = results.setdefault(key, _openai_result(kind, groups, key))
                result["num_model_requests"] += b.requests
                result["input_tokens"] += b.input_tokens
                if endpoint == "completions":
                    result["output_tokens"] += b.output_tokens
                    result["input_cached_tokens"] += b.cached_input_tokens
                    result["input_cache_write_tokens"] += b.cache_write_5m_tokens
            return {
                "object": "bucket",
                "start_time": s,
                "end_time": e,
                "results": list(results.values()),
            }

        return self._paged(request, self._days(start, end, whole_days=False), bucket)

    async def _openai_costs(self, request: web.Request) -> web.Response:
        refused = self._gate(request, "openai")
        if refused is not None:
            return refused
        start = int(request.query["start_time"])
        end = int(request.query.get("end_time", str(start + 7 * DAY_S)))
        groups = set(request.query.getall("group_by[]", []))
        rows = [
            r
            for e in ("completions", "embeddings")
            for r in self._rows(
                request, e, {"project_ids[]": "project_id", "api_key_ids[]": "api_key_id"}
            )
        ]

        def bucket(s: int, e: int) -> dict:
            amounts: dict[tuple, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
            for b in rows:
                if _day(s) != b.day:
                    continue
                snapshot = self.snapshots.get(b.model, b.model)
                for words, kind, tokens in _openai_charges(b):
                    line = f"{snapshot}, {words}" if "line_item" in groups else None
                    key = (
                        line,
                        b.project_id if "project_id" in groups else None,
                        b.api_key_id if "api_key_id" in groups else None,
                    )
                    amounts[key][0] += tokens * self._price(b.model, kind) / 1_000_000
                    amounts[key][1] += tokens
            results = [
                {
                    "object": "organization.costs.result",
                    "amount": {"value": f"{amount:.39f}", "currency": "usd"},
                    "line_item": line,
                    "project_id": project,
                    "api_key_id": key_id,
                    "quantity": float(quantity) if line else None,
                    "organization_id": "org-fake",
                }
                for (line, project, key_id), (amount, quantity) in amounts.items()
            ]
            return {"object": "bucket", "start_time": s, "end_time": e, "results": results}

        return self._paged(request, self._days(start, end, whole_days=True), bucket)

    # --- Anthropic

    async def _anthropic_usage(self, request: web.Request) -> web.Response:
        refused = self._gate(request, "anthropic")
        if refused is not None:
            return refused
        start = _seconds(request.query["starting_at"])
        end = _seconds(request.query.get("ending_at", _rfc3339(start + 7 * DAY_S)))
        groups = set(request.query.getall("group_by[]", []))
        names = {"workspace_id": "project_id", "api_key_id": "api_key_id", "model": "model"}
        rows = self._rows(
            request, "completions", {"workspace_ids[]": "project_id", "api_key_ids[]": "api_key_id"}
        )

        def bucket(s: int, e: int) -> dict:
            results: dict[tuple, dict] = {}
            for b in rows:
                if _day(s) != b.day:
                    continue
                key = tuple(
                    (self.snapshots.get(b.model, b.model) if g == "model" else getattr(b, names[g]))
                    for g in sorted(groups)
                )
                result = results.setdefault(key, _anthropic_result(groups, key))
                result["uncached_input_tokens"] += (
                    b.input_tokens
                    - b.cached_input_tokens
                    - b.cache_write_5m_tokens
                    - b.cache_write_1h_tokens
                )
                result["cache_read_input_tokens"] += b.cached_input_tokens
                result["cache_creation"]["ephemeral_5m_input_tokens"] += b.cache_write_5m_tokens
                result["cache_creation"]["ephemeral_1h_input_tokens"] += b.cache_write_1h_tokens
                result["output_tokens"] += b.output_tokens
            return {
                "starting_at": _rfc3339(s),
                "ending_at": _rfc3339(e),
                "results": list(results.values()),
            }

        return self._paged(request, self._days(start, end, whole_days=True), bucket)

    async def _anthropic_costs(self, request: web.Request) -> web.Response:
        refused = self._gate(request, "anthropic")
        if refused is not None:
            return refused
        start = _seconds(request.query["starting_at"])
        end = _seconds(request.query.get("ending_at", _rfc3339(start + 7 * DAY_S)))
        groups = set(request.query.getall("group_by[]", []))
        rows = self._rows(request, "completions", {})

        def bucket(s: int, e: int) -> dict:
            cents: dict[tuple, Decimal] = defaultdict(Decimal)
            for b in rows:
                if _day(s) != b.day:
                    continue
                for token_type, kind, tokens in _anthropic_charges(b):
                    described = "description" in groups
                    key = (
                        self.snapshots.get(b.model, b.model) if described else None,
                        token_type if described else None,
                        b.project_id if "workspace_id" in groups else None,
                    )
                    cents[key] += tokens * self._price(b.model, kind) / 1_000_000 * 100
            results = [
                {
                    "amount": f"{amount:f}",
                    "currency": "USD",
                    "model": model,
                    "token_type": token_type,
                    "cost_type": "tokens" if model else None,
                    "description": f"{model} Usage - {token_type}" if model else None,
                    "workspace_id": workspace,
                    "service_tier": "standard" if model else None,
                    "context_window": "0-200k" if model else None,
                    "inference_geo": None,
                }
                for (model, token_type, workspace), amount in cents.items()
            ]
            return {"starting_at": _rfc3339(s), "ending_at": _rfc3339(e), "results": results}

        return self._paged(request, self._days(start, end, whole_days=True), bucket)


def _seconds(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp())


def _openai_result(kind: str, groups: set[str], key: tuple) -> dict:
    values = dict(zip(sorted(groups), key, strict=True))
    result: dict[str, Any] = {"object": kind, "input_tokens": 0, "num_model_requests": 0}
    if kind.endswith("completions.result"):
        result |= {
            "output_tokens": 0,
            "input_cached_tokens": 0,
            "input_cache_write_tokens": 0,
            "input_audio_tokens": 0,
            "output_audio_tokens": 0,
            "batch": None,
            "service_tier": None,
        }
    for name in ("project_id", "user_id", "api_key_id", "model"):
        result[name] = values.get(name)
    return result


def _anthropic_result(groups: set[str], key: tuple) -> dict:
    values = dict(zip(sorted(groups), key, strict=True))
    result: dict[str, Any] = {
        "uncached_input_tokens": 0,
        "cache_creation": {"ephemeral_1h_input_tokens": 0, "ephemeral_5m_input_tokens": 0},
        "cache_read_input_tokens": 0,
        "output_tokens": 0,
        "server_tool_use": {"web_search_requests": 0},
    }
    for name in (
        "model",
        "api_key_id",
        "workspace_id",
        "service_tier",
        "context_window",
        "inference_geo",
        "account_id",
        "service_account_id",
    ):
        result[name] = values.get(name)
    return result


def _openai_charges(b: Billed) -> Iterable[tuple[str, str, int]]:
    uncached = b.input_tokens - b.cached_input_tokens - b.cache_write_5m_tokens
    yield "input", "input", uncached
    if b.endpoint == "completions":
        yield "cached input", "cached_input", b.cached_input_tokens
        if b.cache_write_5m_tokens:
            yield "cache writes", "cache_write_5m", b.cache_write_5m_tokens
        yield "output", "output", b.output_tokens


def _anthropic_charges(b: Billed) -> Iterable[tuple[str, str, int]]:
    yield (
        "uncached_input_tokens",
        "input",
        (
            b.input_tokens
            - b.cached_input_tokens
            - b.cache_write_5m_tokens
            - b.cache_write_1h_tokens
        ),
    )
    yield "cache_read_input_tokens", "cached_input", b.cached_input_tokens
    yield "cache_creation.ephemeral_5m_input_tokens", "cache_write_5m", b.cache_write_5m_tokens
    yield "cache_creation.ephemeral_1h_input_tokens", "cache_write_1h", b.cache_write_1h_tokens
    yield "output_tokens", "output", b.output_tokens


def today() -> date:
    return datetime.now(UTC).date()


def days_ago(n: int) -> date:
    return today() - timedelta(days=n)
