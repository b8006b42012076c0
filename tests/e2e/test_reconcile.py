"""`costproxy reconcile` against a fake of each provider's report API, built from the very
traffic the test sends through a real proxy with the official `openai` SDK: the same
traffic matches with zero differences; traffic around the proxy, a day the report lacks,
an estimated record and a price changed in the report each show up with its explanation.

The fake bills what the fake upstream's answers said (their usage, as the SDK read it) at
list prices, under the dated model names the providers' reports use.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import aiohttp
import anthropic
import orjson
import pytest
from openai import AsyncOpenAI

from tests.support.procs import REPO, ServerProcess, start_proxy
from tests.support.reconcile_stack import (
    ADMIN_KEYS_ENV,
    PRICES,
    SNAPSHOTS,
    anthropic_report,
    billed,
    billed_message,
    openai_report,
)
from tests.support.report_api import OPENAI_KEY, Billed, FakeReportAPI, Fault
from tests.support.stack import ACME_KEY, ADMIN_TOKEN, ENV, UPSTREAM_KEY

MESSAGES = [{"role": "user", "content": "Count the coins of a dragon."}]


def today() -> date:
    return datetime.now(UTC).date()


@dataclass
class Setup:
    proxy: ServerProcess
    fake: FakeReportAPI
    config: Path
    upstream_url: str
    traffic: list[Billed] = field(default_factory=list)  # what the provider billed so far


def config(upstream_url: str, fake: FakeReportAPI, directory: Path) -> dict:
    def provider(report: dict) -> dict:
        return {
            "base_url": upstream_url + "/v1",
            "forward_headers": ["x-mock-*"],
            "api_key": "${T_UPSTREAM_KEY}",
            "report": report,
        }

    def price(name: str) -> dict:
        return PRICES[name]

    return {
        "store": {"backend": "sqlite", "sqlite_path": str(directory / "costproxy.db")},
        "admin": {"token": "${T_ADMIN_TOKEN}"},
        "request_log": {"enabled": False},
        "providers": {
            "openai": provider(openai_report(fake)),
            "est": provider(openai_report(fake, "proj_est")),
            "claude": provider(anthropic_report(fake)),
            # Anthropic's own Messages API (the fake upstream's, at its root).
            "claude-native": {
                "kind": "anthropic",
                "base_url": upstream_url,
                "api_key": "${T_UPSTREAM_KEY}",
                "forward_headers": ["x-mock-*"],
                "report": anthropic_report(fake, "proj_native"),
            },
        },
        "models": {
            "gpt-4o-mini": {"targets": [{"provider": "openai", "model": "gpt-4o-mini"}]},
            "text-embedding-3-small": {
                "targets": [{"provider": "openai", "model": "text-embedding-3-small"}]
            },
            "est-mini": {"targets": [{"provider": "est", "model": "gpt-4o-mini"}]},
            "claude-sonnet-4-5": {
                "targets": [{"provider": "claude", "model": "claude-sonnet-4-5"}]
            },
            "claude-haiku-4-5": {
                "targets": [{"provider": "claude-native", "model": "claude-haiku-4-5"}]
            },
        },
        "prices": {
            "openai/gpt-4o-mini": price("gpt-4o-mini"),
            "openai/text-embedding-3-small": price("text-embedding-3-small"),
            "est/gpt-4o-mini": price("gpt-4o-mini"),
            "claude/claude-sonnet-4-5": price("claude-sonnet-4-5"),
            "claude-native/claude-haiku-4-5": price("claude-haiku-4-5"),
        },
        "keys": [{"key": "${T_ACME_KEY}", "customer": "acme"}],
    }


@pytest.fixture(scope="module")
def setup(upstream: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    directory = tmp_path_factory.mktemp("reconcile")
    fake = FakeReportAPI(prices=dict(PRICES), snapshots=SNAPSHOTS, page_buckets=1).start()
    proxy = start_proxy(config(upstream.url, fake, directory), directory, ENV)
    try:
        yield Setup(proxy, fake, Path(proxy.args[proxy.args.index("--config") + 1]), upstream.url)
    finally:
        proxy.stop()
        fake.stop()


@pytest.fixture
async def client(setup: Setup) -> AsyncIterator[AsyncOpenAI]:
    async with AsyncOpenAI(base_url=setup.proxy.url + "/v1", api_key=ACME_KEY, max_retries=0) as c:
        yield c


async def settled(setup: Setup) -> None:
    """The spend API waits for the proxy's pending writes: after it, the store has them."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            setup.proxy.url + "/admin/v1/spend",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        ) as resp,
    ):
        assert resp.status == 200


def reconcile(setup: Setup, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**ENV, **ADMIN_KEYS_ENV, "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", "proxy", "reconcile", "--config", str(setup.config), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def window() -> list[str]:
    return ["--from", (today() - timedelta(days=1)).isoformat(), "--to", today().isoformat()]


def as_json(result: subprocess.CompletedProcess[str]) -> dict:
    assert result.returncode in (0, 1), result.stderr
    return orjson.loads(result.stdout)


async def send_traffic(setup: Setup, client: AsyncOpenAI) -> None:
    """Plain and streamed chats (one with cached tokens) and an embedding, through the proxy;
    the fake provider bills what each answer said it used."""
    day = today()
    for usage, stream in (("1200,200,300,0", False), ("800,0,120,0", True), ("64,0,8,0", False)):
        if stream:
            chunks = await client.chat.completions.create(
                model="gpt-4o-mini", messages=MESSAGES, stream=True,
                stream_options={"include_usage": True}, extra_headers={"x-mock-usage": usage},
            )  # fmt: skip
            last = None
            async for chunk in chunks:
                last = chunk
            assert last is not None and last.usage is not None
            setup.traffic.append(billed(day, "gpt-4o-mini", last.usage))
        else:
            reply = await client.chat.completions.create(
                model="gpt-4o-mini", messages=MESSAGES, extra_headers={"x-mock-usage": usage}
            )
            setup.traffic.append(billed(day, "gpt-4o-mini", reply.usage))
    embedding = await client.embeddings.create(model="text-embedding-3-small", input="coins")
    setup.traffic.append(
        billed(day, "text-embedding-3-small", embedding.usage, endpoint="embeddings")
    )
    reply = await client.chat.completions.create(
        model="claude-sonnet-4-5",
        messages=MESSAGES,
        extra_headers={"x-mock-usage": "2000,500,250,0"},
    )
    setup.traffic.append(billed(day, "claude-sonnet-4-5", reply.usage, provider="anthropic"))
    # A request that fails upstream: the provider answers it with an error and bills nothing.
    with pytest.raises(Exception, match="500"):
        await client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, extra_headers={"x-mock-status": "500"}
        )
    setup.fake.billed = list(setup.traffic)
    await settled(setup)


async def test_the_same_traffic_matches_with_zero_differences(setup: Setup, client) -> None:
    await send_traffic(setup, client)
    setup.fake.fail_next = [Fault(429, retry_after="1"), Fault(500)]
    setup.fake.seen.clear()
    result = reconcile(setup, "--provider", "openai", *window(), "--fetch", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    answer = orjson.loads(result.stdout)
    assert answer["matched"] is True
    assert [(r["day"], r["model"], r["report_models"]) for r in answer["rows"]] == [
        (today().isoformat(), "gpt-4o-mini", ["gpt-4o-mini-2024-07-18"]),
        (today().isoformat(), "text-embedding-3-small", ["text-embedding-3-small"]),
    ]
    mini = answer["rows"][0]
    # 3 answered requests (the failed one is not billed): 2,064 input of which 200 cached,
    # 428 output. 1,864 × 0.15 + 200 × 0.075 + 428 × 0.6 = 279.6 + 15 + 256.8 = 551.4 per 1M.
    assert mini["proxy"] == mini["provider"] == {
        "requests": 3, "input_tokens": 2064, "cached_input_tokens": 200, "cache_write_tokens": 0,
        "output_tokens": 428, "cost_usd": "0.000551400",
    }  # fmt: skip
    for row in [*answer["rows"], answer["totals"]]:
        assert set(row["difference"].values()) == {0, "0.000000000"}, row
    assert answer["days_not_covered"] == [] and answer["notes"] == []
    # Both days in pages of one bucket; the 429 and the 500 were retried.
    assert setup.fake.requests_to("/v1/organization/usage/completions") == 2 + 2
    assert setup.fake.requests_to("/v1/organization/costs") == 2
    assert "page=page_" in " ".join(setup.fake.seen)


async def test_anthropic_report_matches(setup: Setup) -> None:
    result = reconcile(setup, "--provider", "claude", *window(), "--fetch", "--json")
    answer = as_json(result)
    assert answer["matched"] is True, answer
    (row,) = answer["rows"]
    assert (row["model"], row["report_models"]) == (
        "claude-sonnet-4-5",
        ["claude-sonnet-4-5-20250929"],
    )
    # 1,500 × 3 + 500 × 0.3 + 250 × 15 = 4,500 + 150 + 3,750 = 8,400 per 1M; no request counts.
    assert row["provider"] == {
        "requests": None, "input_tokens": 2000, "cached_input_tokens": 500,
        "cache_write_tokens": 0, "output_tokens": 250, "cost_usd": "0.008400000",
    }  # fmt: skip
    assert row["proxy"]["cost_usd"] == "0.008400000" and row["proxy"]["requests"] == 1


async def test_files_saved_from_the_api_give_the_same_answer(setup: Setup, tmp_path: Path) -> None:
    """The pages as the API returns them, saved one per file: what a user without --fetch has."""
    start = int(datetime(*(today() - timedelta(days=1)).timetuple()[:3], tzinfo=UTC).timestamp())
    # As the config's report says: grouped by model and project, only the proxy's project.
    query = [("start_time", str(start)), ("end_time", str(start + 2 * 86400)), ("limit", "31"),
             ("group_by[]", "project_id"), ("project_ids[]", "proj_proxy")]  # fmt: skip
    files: dict[str, list[str]] = {"--usage-file": [], "--costs-file": []}
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {OPENAI_KEY}"}) as http:
        for flag, path, group in (
            ("--usage-file", "usage/completions", "model"),
            ("--usage-file", "usage/embeddings", "model"),
            ("--costs-file", "costs", "line_item"),
        ):
            page: dict = {"next_page": None}
            while True:
                params = [*query, ("group_by[]", group)]
                if page["next_page"]:
                    params.append(("page", page["next_page"]))
                async with http.get(f"{setup.fake.url}/v1/organization/{path}", params=params) as r:
                    body = await r.read()
                target = tmp_path / f"{path.replace('/', '-')}-{len(files[flag])}.json"
                target.write_bytes(body)
                files[flag].append(str(target))
                page = orjson.loads(body)
                if not page["has_more"]:
                    break
    args = [arg for flag, paths in files.items() for path in paths for arg in (flag, path)]
    answer = as_json(reconcile(setup, "--provider", "openai", *window(), *args, "--json"))
    assert answer["matched"] is True
    fetched = as_json(reconcile(setup, "--provider", "openai", *window(), "--fetch", "--json"))
    assert answer == fetched


async def test_the_table_and_the_exit_status(setup: Setup) -> None:
    result = reconcile(setup, "--provider", "openai", *window(), "--fetch")
    assert result.returncode == 0, result.stderr
    assert "MATCHED: every figure is within the tolerance" in result.stdout
    assert f"{today().isoformat()}  gpt-4o-mini" in result.stdout
    for secret in (OPENAI_KEY, UPSTREAM_KEY, ACME_KEY):
        assert secret not in result.stdout + result.stderr


async def test_traffic_around_the_proxy(setup: Setup) -> None:
    # The same provider key used by another client, for a model no route sends there.
    async with AsyncOpenAI(base_url=setup.upstream_url + "/v1", api_key=UPSTREAM_KEY,
                           max_retries=0) as direct:  # fmt: skip
        reply = await direct.chat.completions.create(
            model="gpt-4.1-nano", messages=MESSAGES, extra_headers={"x-mock-usage": "100,0,40,0"}
        )
    setup.fake.billed = [*setup.traffic, billed(today(), "gpt-4.1-nano", reply.usage)]
    try:
        result = reconcile(setup, "--provider", "openai", *window(), "--fetch", "--json")
    finally:
        setup.fake.billed = list(setup.traffic)
    assert result.returncode == 1
    answer = orjson.loads(result.stdout)
    (row,) = [r for r in answer["rows"] if not r["within_tolerance"]]
    assert row["model"] == "gpt-4.1-nano-2025-04-14"
    # 100 × 0.1 + 40 × 0.4 = 26 per 1M.
    assert row["difference"] == {"requests": 1, "input_tokens": 100, "cached_input_tokens": 0,
                                 "cache_write_tokens": 0, "output_tokens": 40,
                                 "cost_usd": "0.000026000"}  # fmt: skip
    assert [e["code"] for e in row["explained"]] == ["not_through_proxy"]
    assert answer["totals"]["difference"]["cost_usd"] == "0.000026000"


async def test_a_day_the_report_lacks(setup: Setup) -> None:
    # A report fetched before today's data was there: it has no bucket for today.
    setup.fake.covered_until = int(datetime(*today().timetuple()[:3], tzinfo=UTC).timestamp())
    try:
        result = reconcile(setup, "--provider", "openai", *window(), "--fetch", "--json")
    finally:
        setup.fake.covered_until = None
    assert result.returncode == 1
    answer = orjson.loads(result.stdout)
    day = today().isoformat()
    assert answer["days_not_covered"] == [
        {"day": day, "why": f"the usage report has no bucket for {day}; "
                            f"the cost report has no bucket for {day}"}
    ]  # fmt: skip
    mini = answer["rows"][0]
    assert mini["difference"]["requests"] == -3 and mini["provider"]["requests"] == 0
    assert [e["code"] for e in mini["explained"]] == ["day_not_covered", "day_not_covered"]


async def test_an_estimated_record(setup: Setup, client: AsyncOpenAI) -> None:
    # The upstream sends no usage: the proxy counts the tokens itself. The provider bills
    # what it counted: the fake upstream's rule, a quarter of the messages' JSON rounded up,
    # and its 8 reply words.
    reply = await client.chat.completions.create(
        model="est-mini", messages=MESSAGES, extra_headers={"x-mock-no-usage": "1"}
    )
    assert reply.usage is None
    prompt = -(-len(orjson.dumps(MESSAGES)) // 4)
    setup.fake.billed = [*setup.traffic, Billed(today(), "gpt-4o-mini", 1, prompt, 0, 0, 0, 8,
                                                project_id="proj_est")]  # fmt: skip
    await settled(setup)
    try:
        result = reconcile(setup, "--provider", "est", *window(), "--fetch", "--json")
    finally:
        setup.fake.billed = list(setup.traffic)
    assert result.returncode == 1
    (row,) = orjson.loads(result.stdout)["rows"]
    assert row["provider"]["input_tokens"] == prompt
    assert row["difference"]["input_tokens"] != 0  # the proxy's count is not the provider's
    assert [e["code"] for e in row["explained"]] == ["estimated_usage"]
    assert row["explained"][0]["message"].startswith("1 of the proxy's requests have estimated")


async def test_a_price_changed_in_the_report(setup: Setup) -> None:
    setup.fake.prices = {**PRICES, "gpt-4o-mini": {**PRICES["gpt-4o-mini"], "output": "0.66"}}
    try:
        result = reconcile(setup, "--provider", "openai", *window(), "--fetch")
    finally:
        setup.fake.prices = dict(PRICES)
    assert result.returncode == 1
    assert (
        "price_mismatch: the price of gpt-4o-mini looks out of date: the bill implies $0.66 per "
        "1M output tokens, the table says $0.6"
    ) in result.stdout
    assert "DIFFERENCES: 1 of 2 rows outside the tolerance." in result.stdout
    # The bill is 428 × $0.06 per 1M = $0.00002568 more, 4.4% of it: within a tolerance of
    # 5% the figures match (exit 0), and the price, 10% off, is still pointed out.
    setup.fake.prices = {**PRICES, "gpt-4o-mini": {**PRICES["gpt-4o-mini"], "output": "0.66"}}
    try:
        tolerant = reconcile(setup, "--provider", "openai", *window(), "--fetch",
                             "--tolerance-pct", "tokens=0,cost=5")  # fmt: skip
    finally:
        setup.fake.prices = dict(PRICES)
    assert tolerant.returncode == 0, tolerant.stdout
    assert "the bill implies $0.66 per 1M output tokens" in tolerant.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--provider", "nope", "--from", "2026-01-01", "--to", "2026-01-02", "--fetch"],
         "no provider 'nope' in the config"),
        (["--provider", "openai", "--from", "2026-01-02", "--to", "2026-01-01", "--fetch"],
         "is before --from"),
        (["--provider", "openai", "--from", "yesterday", "--to", "2026-01-01", "--fetch"],
         "is not a date"),
        (["--provider", "openai", "--from", "2026-01-01", "--to", "2026-01-01"],
         "give the report as --usage-file/--costs-file, or --fetch it"),
        (["--provider", "openai", "--from", "2026-01-01", "--to", "2026-01-01", "--usage-file",
          "/nonexistent.json"], "/nonexistent.json: cannot read"),
        (["--provider", "openai", "--from", "2026-01-01", "--to", "2026-01-01", "--fetch",
          "--tolerance-pct", "lots"], "is not a percentage"),
        (["--provider", "openai"], "the following arguments are required: --from, --to"),
    ],
)  # fmt: skip
def test_usage_errors_exit_2(setup: Setup, args: list[str], message: str) -> None:
    result = reconcile(setup, *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stdout == ""


def test_an_error_answer_saved_as_a_report_exits_2(setup: Setup, tmp_path: Path) -> None:
    fixture = REPO / "tests/fixtures/reports/openai/error_403_missing_scope_bare_string.json"
    result = reconcile(setup, "--provider", "openai", "--from", "2026-01-01", "--to",
                       "2026-01-01", "--usage-file", str(fixture))  # fmt: skip
    assert result.returncode == 2
    assert (
        "this is an error answer, not a report: You have insufficient permissions" in result.stderr
    )


async def test_messages_api_traffic_reconciles_with_its_cache_writes(setup: Setup) -> None:
    """Anthropic's own API through the proxy (a 1-hour cache write, then a read, and a
    5-minute write): Anthropic's usage and cost reports of the same traffic match the
    proxy's records, cache writes by lifetime included."""
    day, mine = today(), []
    async with anthropic.AsyncAnthropic(
        base_url=setup.proxy.url, api_key=ACME_KEY, max_retries=0
    ) as client:
        for text, ttl in (("Manual A. " * 50, "1h"), ("Manual A. " * 50, "1h"), ("B. " * 80, "5m")):
            system = [
                {"type": "text", "text": text, "cache_control": {"type": "ephemeral", "ttl": ttl}}
            ]
            message = await client.messages.create(
                model="claude-haiku-4-5",
                max_tokens=32,
                system=system,
                messages=MESSAGES,  # type: ignore[arg-type]
            )
            mine.append(billed_message(day, "claude-haiku-4-5", message.usage, "proj_native"))
    assert [b.cache_write_1h_tokens > 0 for b in mine] == [True, False, False]
    assert mine[1].cached_input_tokens > 0 and mine[2].cache_write_5m_tokens > 0
    setup.fake.billed = [*setup.fake.billed, *mine]
    await settled(setup)
    answer = as_json(
        reconcile(setup, "--provider", "claude-native", *window(), "--fetch", "--json")
    )
    assert answer["matched"] is True, answer
    (row,) = answer["rows"]
    assert (row["model"], row["report_models"]) == (
        "claude-haiku-4-5",
        ["claude-haiku-4-5-20251001"],
    )
    writes = sum(b.cache_write_5m_tokens + b.cache_write_1h_tokens for b in mine)
    assert row["proxy"]["cache_write_tokens"] == row["provider"]["cache_write_tokens"] == writes
    assert row["proxy"]["input_tokens"] == sum(b.input_tokens for b in mine)
    assert row["proxy"]["cost_usd"] == row["provider"]["cost_usd"] != "0.000000000"
