"""Fetching a provider's usage and cost reports from its admin API, every page of them.

One GET per page, with the admin key; a 429 or 5xx is retried after its `Retry-After` (or
a growing pause), a network error likewise; redirects are never followed (the key must not
travel to another host). Errors become `ReportFetchError`, whose message never holds the key.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import orjson

from proxy.config import ReportConfig
from proxy.reconcile.coverage import DAY_S, day_start
from proxy.reconcile.reports.pages import error_message

__all__ = ["DEFAULT_BASE_URLS", "ReportFetchError", "fetch_report", "report_requests"]

DEFAULT_BASE_URLS = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
}
_ANTHROPIC_VERSION = "2023-06-01"
_MAX_PAGES = 1000  # a cursor that never ends is a fault, not a long report
_ATTEMPTS = 6
_MAX_WAIT_S = 60.0

Sleep = Callable[[float], Awaitable[None]]


class ReportFetchError(Exception):
    """The report could not be fetched; the message says why (and never holds the key)."""


@dataclass(frozen=True, slots=True)
class ReportRequest:
    section: str  # "usage" or "costs"
    path: str
    params: tuple[tuple[str, str], ...]


def _openai(report: ReportConfig, from_day: date, to_day: date) -> list[ReportRequest]:
    start = day_start(from_day)
    window = [("start_time", str(start)), ("end_time", str(day_start(to_day) + DAY_S))]
    window.append(("bucket_width", "1d"))
    filters = [("project_ids[]", p) for p in report.project_ids]
    filters += [("api_key_ids[]", k) for k in report.api_key_ids]
    groups = [("group_by[]", "project_id")] if report.project_ids else []
    groups += [("group_by[]", "api_key_id")] if report.api_key_ids else []
    usage = (*window, ("limit", "31"), ("group_by[]", "model"), *groups, *filters)
    costs = (*window, ("limit", "180"), ("group_by[]", "line_item"), *groups, *filters)
    return [
        ReportRequest("usage", "/organization/usage/completions", usage),
        ReportRequest("usage", "/organization/usage/embeddings", usage),
        ReportRequest("costs", "/organization/costs", costs),
    ]


def _rfc3339(day: date) -> str:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _anthropic(report: ReportConfig, from_day: date, to_day: date) -> list[ReportRequest]:
    window = [("starting_at", _rfc3339(from_day)), ("ending_at", _rfc3339(to_day + timedelta(1)))]
    window += [("bucket_width", "1d"), ("limit", "31")]
    workspaces = [("group_by[]", "workspace_id")] if report.project_ids else []
    usage = [*window, ("group_by[]", "model"), *workspaces]
    usage += [("group_by[]", "api_key_id")] if report.api_key_ids else []
    usage += [("workspace_ids[]", w) for w in report.project_ids]
    usage += [("api_key_ids[]", k) for k in report.api_key_ids]
    # The cost report filters by nothing: rows of other workspaces are left out after.
    costs = [*window, ("group_by[]", "description"), *workspaces]
    return [
        ReportRequest("usage", "/v1/organizations/usage_report/messages", tuple(usage)),
        ReportRequest("costs", "/v1/organizations/cost_report", tuple(costs)),
    ]


def report_requests(report: ReportConfig, from_day: date, to_day: date) -> list[ReportRequest]:
    """The GETs (first pages) that fetch the reports of [from_day, to_day], UTC days."""
    if report.kind == "openai":
        return _openai(report, from_day, to_day)
    return _anthropic(report, from_day, to_day)


def _headers(kind: str, key: str) -> dict[str, str]:
    if kind == "anthropic":
        return {"x-api-key": key, "anthropic-version": _ANTHROPIC_VERSION}
    return {"Authorization": f"Bearer {key}"}


def _retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header: seconds, or an HTTP date."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (moment - now).total_seconds())


async def fetch_report(
    session: aiohttp.ClientSession,
    report: ReportConfig,
    admin_key: str,
    from_day: date,
    to_day: date,
    *,
    sleep: Sleep = asyncio.sleep,
) -> tuple[list[Any], list[Any]]:
    """(usage pages, cost pages) of [from_day, to_day], each page as the API returned it."""
    base = report.base_url or DEFAULT_BASE_URLS[report.kind]
    fetcher = _Fetcher(session, _headers(report.kind, admin_key), admin_key, report, sleep)
    usage: list[Any] = []
    costs: list[Any] = []
    for request in report_requests(report, from_day, to_day):
        pages = await fetcher.pages(base + request.path, request.params)
        (usage if request.section == "usage" else costs).extend(pages)
    return usage, costs


class _Fetcher:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        headers: dict[str, str],
        key: str,
        report: ReportConfig,
        sleep: Sleep,
    ) -> None:
        self._session = session
        self._headers = headers
        self._key = key
        self._report = report
        self._sleep = sleep

    def _safe(self, text: str) -> str:
        return text.replace(self._key, "[admin key]") if self._key else text

    async def pages(self, url: str, params: tuple[tuple[str, str], ...]) -> list[Any]:
        pages: list[Any] = []
        cursors: set[str] = set()
        cursor: str | None = None
        while True:
            query = [*params, ("page", cursor)] if cursor else list(params)
            page = await self._get(url, query)
            pages.append(page)
            following = page.get("next_page")
            if not page.get("has_more") or not isinstance(following, str) or not following:
                return pages
            if following in cursors or len(pages) >= _MAX_PAGES:
                raise ReportFetchError(f"{url}: the pages do not end (cursor {following!r})")
            cursors.add(following)
            cursor = following

    async def _get(self, url: str, query: list[tuple[str, str]]) -> dict[str, Any]:
        timeout = aiohttp.ClientTimeout(total=self._report.timeout_s)
        for attempt in range(_ATTEMPTS):
            last = attempt == _ATTEMPTS - 1
            pause = min(_MAX_WAIT_S, 0.5 * 2**attempt)
            try:
                async with self._session.get(
                    url, params=query, headers=self._headers, allow_redirects=False,
                    timeout=timeout,
                ) as resp:  # fmt: skip
                    body = await resp.read()
                    status, headers = resp.status, resp.headers
            except (aiohttp.ClientError, TimeoutError) as exc:
                if last:
                    raise ReportFetchError(
                        f"{url}: could not reach the report API ({type(exc).__name__})"
                    ) from None
                await self._sleep(pause)
                continue
            if status == 200:
                return self._json(url, body)
            message = self._message(body)
            if status == 429 or status >= 500:
                wait = _retry_after(headers.get("Retry-After"), datetime.now(UTC))
                if wait is not None and wait > _MAX_WAIT_S:
                    raise ReportFetchError(
                        f"{url}: rate limited; the provider asks to retry after {wait:g}s"
                    )
                if last:
                    raise ReportFetchError(f"{url}: HTTP {status} after {_ATTEMPTS} attempts"
                                           f"{message}")  # fmt: skip
                await self._sleep(pause if wait is None else wait)
                continue
            raise ReportFetchError(self._refusal(url, status, headers, message))
        raise AssertionError("unreachable")  # the loop returns or raises

    def _json(self, url: str, body: bytes) -> dict[str, Any]:
        try:
            page = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise ReportFetchError(f"{url}: the answer is not JSON") from None
        if not isinstance(page, dict):
            raise ReportFetchError(f"{url}: the answer is not a page object")
        return page

    def _message(self, body: bytes) -> str:
        try:
            message = error_message(orjson.loads(body))
        except orjson.JSONDecodeError:
            message = None
        return f": {self._safe(message)}" if message else ""

    def _refusal(self, url: str, status: int, headers: Any, message: str) -> str:
        if 300 <= status < 400:
            return (
                f"{url}: HTTP {status} redirects to {headers.get('Location')!r}; not followed "
                "with the admin key (set the report's base_url to the final address)"
            )
        if status in (401, 403):
            need = (
                "an OpenAI admin key (sk-admin-...) with the api.usage.read scope"
                if self._report.kind == "openai"
                else "an Anthropic admin key (sk-ant-admin...)"
            )
            return (
                f"{url}: HTTP {status}, the provider refused the key in "
                f"{self._report.admin_key_env}{message}. The reports need {need}."
            )
        if status == 404:
            return (
                f"{url}: HTTP 404{message} (check the report's base_url; the provider's "
                "report may also be unavailable for a while)"
            )
        return f"{url}: HTTP {status}{message}"
