"""Fetching the reports from a fake of each provider's admin API on loopback: every page,
a rate limit and a server error retried, a refused key and a redirect never followed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import date
from urllib.parse import parse_qsl, urlsplit

import aiohttp
import pytest
from aiohttp import web

from proxy.config import ReportConfig
from proxy.reconcile.fetch import ReportFetchError, fetch_report
from proxy.reconcile.reports import parse_report
from tests.support.procs import free_port
from tests.support.report_api import ANTHROPIC_KEY, OPENAI_KEY, Billed, FakeReportAPI, Fault

D1, D2, D3 = date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 3)
BILLED = [
    Billed(D1, "gpt-4o-mini", 3, 300, 100, 0, 0, 30),
    Billed(D3, "gpt-4o-mini", 2, 200, 0, 0, 0, 20, project_id="proj_other"),
    Billed(D3, "text-embedding-3-small", 1, 8, endpoint="embeddings"),
]
PRICES = {"gpt-4o-mini": {"input": "0.15", "cached_input": "0.075", "output": "0.6"}}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeReportAPI]:
    api = FakeReportAPI(billed=BILLED, prices=PRICES,
                        snapshots={"gpt-4o-mini": "gpt-4o-mini-2024-07-18"})  # fmt: skip
    with api:
        yield api


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as http:
        yield http


class Pauses(list[float]):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


def openai_report(fake: FakeReportAPI, **kw: object) -> ReportConfig:
    return ReportConfig.model_validate(
        {"kind": "openai", "admin_key_env": "OPENAI_ADMIN_KEY", "base_url": fake.url + "/v1", **kw}
    )


async def test_every_page_of_every_openai_report(fake: FakeReportAPI, session) -> None:
    fake.seen.clear()
    usage, costs = await fetch_report(session, openai_report(fake), OPENAI_KEY, D1, D3)
    # One bucket per page: three days are three pages of each report.
    assert len(usage) == 6 and len(costs) == 3
    first = urlsplit(fake.seen[0])
    assert first.path == "/v1/organization/usage/completions"
    assert parse_qsl(first.query) == [
        ("start_time", "1772323200"), ("end_time", "1772582400"), ("bucket_width", "1d"),
        ("limit", "31"), ("group_by[]", "model"),
    ]  # fmt: skip
    assert "page=page_" in fake.seen[1]  # the cursor of the first answer, passed back
    report = parse_report("openai", usage, costs)
    assert [(u.day, u.model, u.requests, u.input_tokens) for u in report.usage] == [
        (D1, "gpt-4o-mini-2024-07-18", 3, 300),
        (D3, "gpt-4o-mini-2024-07-18", 2, 200),
        (D3, "text-embedding-3-small", 1, 8),
    ]
    # 200 × 0.15 + 100 × 0.075 + 30 × 0.6 = 30 + 7.5 + 18 = 55.5 per 1M.
    assert sum(c.amount_usd for c in report.costs if c.day == D1) * 10**6 == 55.5
    assert report.costs[0].label == "gpt-4o-mini-2024-07-18, input"


async def test_the_project_mapping_filters_and_groups(fake: FakeReportAPI, session) -> None:
    fake.seen.clear()
    config = openai_report(fake, project_ids=["proj_proxy"])
    usage, costs = await fetch_report(session, config, OPENAI_KEY, D1, D3)
    query = parse_qsl(urlsplit(fake.seen[0]).query)
    assert ("group_by[]", "project_id") in query and ("project_ids[]", "proj_proxy") in query
    report = parse_report("openai", usage, costs)
    # The gpt-4o-mini traffic of proj_other on D3 is left out.
    assert [(u.day, u.model, u.project_id) for u in report.usage] == [
        (D1, "gpt-4o-mini-2024-07-18", "proj_proxy"),
        (D3, "text-embedding-3-small", "proj_proxy"),
    ]


async def test_a_rate_limit_and_a_server_error_are_retried(fake: FakeReportAPI, session) -> None:
    fake.fail_next = [Fault(429, retry_after="1"), Fault(500), Fault(503, retry_after="2")]
    pauses = Pauses()
    usage, _ = await fetch_report(session, openai_report(fake), OPENAI_KEY, D1, D1, sleep=pauses)
    assert pauses == [1.0, 1.0, 2.0]  # Retry-After, else 0.5 s doubling per attempt
    assert len(usage) == 2


async def test_a_long_rate_limit_is_not_waited_for(fake: FakeReportAPI, session) -> None:
    fake.fail_next = [Fault(429, retry_after="3600")]
    with pytest.raises(
        ReportFetchError, match="rate limited; the provider asks to retry after 3600s"
    ):
        await fetch_report(session, openai_report(fake), OPENAI_KEY, D1, D1, sleep=Pauses())


async def test_errors_that_persist_end_the_fetch(fake: FakeReportAPI, session) -> None:
    fake.fail_next = [Fault(500)] * 6
    with pytest.raises(ReportFetchError, match="HTTP 500 after 6 attempts: Rate limit reached"):
        await fetch_report(session, openai_report(fake), OPENAI_KEY, D1, D1, sleep=Pauses())
    assert fake.fail_next == []


async def test_a_refused_key_says_what_is_needed(fake: FakeReportAPI, session) -> None:
    wrong = "sk-proj-not-an-admin-key-SECRET"
    with pytest.raises(ReportFetchError) as caught:
        await fetch_report(session, openai_report(fake), wrong, D1, D1, sleep=Pauses())
    message = str(caught.value)
    assert "HTTP 401, the provider refused the key in OPENAI_ADMIN_KEY" in message
    assert "Incorrect API key provided" in message
    assert "an OpenAI admin key (sk-admin-...) with the api.usage.read scope" in message
    assert wrong not in message


async def test_anthropic_reports(fake: FakeReportAPI, session) -> None:
    fake.seen.clear()
    fake.billed = [replace(b, provider="anthropic") for b in BILLED]
    config = ReportConfig(kind="anthropic", admin_key_env="ANTHROPIC_ADMIN_KEY",
                          base_url=fake.url, api_key_ids=["key_proxy"])  # fmt: skip
    usage, costs = await fetch_report(session, config, ANTHROPIC_KEY, D1, D2)
    first = urlsplit(fake.seen[0])
    assert first.path == "/v1/organizations/usage_report/messages"
    assert parse_qsl(first.query) == [
        ("starting_at", "2026-03-01T00:00:00Z"), ("ending_at", "2026-03-03T00:00:00Z"),
        ("bucket_width", "1d"), ("limit", "31"), ("group_by[]", "model"),
        ("group_by[]", "api_key_id"), ("api_key_ids[]", "key_proxy"),
    ]  # fmt: skip
    report = parse_report("anthropic", usage, costs)
    (row,) = report.usage
    assert (row.day, row.input_tokens, row.cached_input_tokens, row.requests) == (
        D1,
        300,
        100,
        None,
    )
    assert sum(c.amount_usd for c in report.costs) * 10**6 == 55.5  # cents turned into dollars
    with pytest.raises(ReportFetchError, match="an Anthropic admin key"):
        await fetch_report(session, config, OPENAI_KEY, D1, D2, sleep=Pauses())
    fake.billed = BILLED


async def test_a_redirect_is_not_followed_with_the_key(session) -> None:
    reached: list[dict[str, str]] = []

    async def elsewhere(request: web.Request) -> web.Response:
        reached.append(dict(request.headers))
        return web.json_response({"data": [], "has_more": False, "next_page": None})

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPFound(f"http://127.0.0.1:{other_port}/elsewhere")

    app = web.Application()
    app.router.add_get("/elsewhere", elsewhere)
    app.router.add_get("/{tail:.*}", moved)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port, other_port = free_port(), free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await web.TCPSite(runner, "127.0.0.1", other_port).start()
    try:
        config = ReportConfig(kind="openai", admin_key_env="K", base_url=f"http://127.0.0.1:{port}")
        with pytest.raises(ReportFetchError, match=r"HTTP 302 redirects to .*not followed"):
            await fetch_report(session, config, OPENAI_KEY, D1, D1, sleep=Pauses())
    finally:
        await runner.cleanup()
    assert reached == []


async def test_an_unreachable_api(session) -> None:
    config = ReportConfig(
        kind="openai", admin_key_env="K", base_url=f"http://127.0.0.1:{free_port()}"
    )
    pauses = Pauses()
    with pytest.raises(ReportFetchError, match="could not reach the report API"):
        await fetch_report(session, config, OPENAI_KEY, D1, D1, sleep=pauses)
    assert pauses == [0.5, 1.0, 2.0, 4.0, 8.0]
