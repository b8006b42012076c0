"""Prices end to end, through a real proxy and the fake upstream: every dimension of a
request priced, a price on each side of a `from:` date, flex and priority responses at
OpenAI's published prices, an unpriced route under a hard budget, the billing markup in
spend, export and metrics, and the prices through the admin API and the CLI.

Expected figures are computed here from the price literals (Fraction arithmetic, rounded
once), or taken from the providers' price pages, never from the proxy's own output.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path

import aiohttp
import pytest
from openai import AsyncOpenAI

from tests.support.fleet import ADMIN, admin_get, config_path
from tests.support.procs import ServerProcess, costproxy, start_proxy
from tests.support.reloading import Reloadable
from tests.support.stack import ACME_KEY, ADMIN_TOKEN, ENV, GLOBEX_KEY

TODAY = datetime.now(UTC).date()
TOMORROW = TODAY + timedelta(days=1)

# USD per 1M tokens: every dimension apart, odd figures so that a part priced at the wrong
# rate shows; a tier above 5,000 input tokens; a per-request fee.
EVERY = {
    "input": "1.1", "cached_input": "0.13", "cache_write_5m": "1.7", "cache_write_1h": "2.3",
    "input_audio": "3.1", "input_image": "0.7", "output": "4.3", "reasoning": "5.9",
    "output_audio": "7.1", "output_image": "9.7", "per_request": "0.000013",
    "tiers": [{"above_input_tokens": 5000, "input": "2.2", "cached_input": "0.26",
               "output": "8.6"}],
}  # fmt: skip
MARKUP = {"markup_pct": "25", "per_request_usd": "0.001"}


def config(upstream_url: str, directory: Path) -> dict:
    mock = upstream_url + "/v1"
    return {
        "store": {"backend": "sqlite", "sqlite_path": str(directory / "costproxy.db")},
        "admin": {"token": "${T_ADMIN_TOKEN}"},
        "request_log": {"enabled": False},
        "metrics": {"customer_label": "all"},  # the billable spend by customer, below
        "providers": {
            # Named as the catalogue's providers: priced from genai-prices.
            "openai": {
                "base_url": mock,
                "forward_headers": ["x-mock-*"],
                "api_key": "${T_UPSTREAM_KEY}",
            },
            "together": {"base_url": mock, "forward_headers": ["x-mock-*"]},
            "local": {"base_url": mock, "forward_headers": ["x-mock-*"]},
        },
        "models": {
            "every": {"targets": [{"provider": "local", "model": "every-dim"}]},
            "gpt-5": {"targets": [{"provider": "openai", "model": "gpt-5"}]},
            "dated": {"targets": [{"provider": "local", "model": "dated"}]},
            "house": {"targets": [{"provider": "local", "model": "house"}]},
            "llama": {
                "targets": [
                    {"provider": "together", "model": "meta-llama/Llama-3.3-70B-Instruct-Turbo"}
                ]
            },
        },
        "prices": {
            "local/every-dim": EVERY,
            "local/dated": [
                {"input": "1", "output": "1"},
                {"from": TOMORROW.isoformat(), "input": "2", "output": "2"},
            ],
        },
        "keys": [
            {"key": "${T_ACME_KEY}", "customer": "acme"},
            {"key": "${T_GLOBEX_KEY}", "customer": "globex"},
        ],
        "customers": {
            "acme": {
                "budgets": [{"period": "monthly", "limit_usd": "1000", "hard": True}],
                "billing": MARKUP,
            }
        },
    }


@pytest.fixture(scope="module")
def running(
    upstream: ServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Reloadable]:
    directory = tmp_path_factory.mktemp("prices")
    data = config(upstream.url, directory)
    proxy = start_proxy(data, directory, ENV)
    try:
        yield Reloadable(proxy, data)
    finally:
        proxy.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def chat(
    running: Reloadable,
    http: aiohttp.ClientSession,
    model: str,
    key: str = GLOBEX_KEY,
    **headers: str,
) -> tuple[int, dict, dict]:
    async with http.post(
        running.proxy.url + "/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {key}", **headers},
    ) as resp:
        return resp.status, await resp.json(), {k.lower(): v for k, v in resp.headers.items()}


async def record(running: Reloadable, http: aiohttp.ClientSession, request_id: str) -> dict:
    return await admin_get(http, running.proxy, f"/admin/v1/usage/{request_id}")


def nusd(usd: Fraction) -> int:
    return round(usd * 10**9)  # Fraction rounds half to even: once


def usd(nano: int) -> str:
    return f"{nano // 10**9}.{nano % 10**9:09d}"


def price(name: str, tiered: bool = False) -> Fraction:
    if tiered:
        tier = EVERY["tiers"][0]  # type: ignore[index]
        if name in tier:
            return Fraction(tier[name]) / 10**6
    return Fraction(EVERY[name]) / 10**6  # type: ignore[arg-type]


# --- every dimension ----------------------------------------------------------------------------

PARTS = "cache_write_5m=200,cache_write_1h=100,input_audio=150,input_image=50,output_audio=60,output_image=40"  # noqa: E501


def every_dimension_usd() -> Fraction:
    """1,000 input tokens (100 cache reads, 200 + 100 cache writes, 150 audio, 50 image:
    400 plain) and 500 output (50 reasoning, 60 audio, 40 image: 350 plain), + the fee."""
    counts = {"input": 400, "cached_input": 100, "cache_write_5m": 200, "cache_write_1h": 100,
              "input_audio": 150, "input_image": 50, "output": 350, "reasoning": 50,
              "output_audio": 60, "output_image": 40}  # fmt: skip
    return sum(n * price(name) for name, n in counts.items()) + Fraction(EVERY["per_request"])  # type: ignore[arg-type]


async def test_a_request_is_priced_in_every_dimension(
    running: Reloadable, http: aiohttp.ClientSession
) -> None:
    status, answer, headers = await chat(
        running, http, "every", **{"x-mock-usage": "1000,100,500,50", "x-mock-usage-parts": PARTS}
    )
    assert status == 200, answer
    expected = nusd(every_dimension_usd())
    assert headers["x-costproxy-cost-usd"] == usd(expected)
    saved = await record(running, http, headers["x-request-id"])
    assert (saved["cache_write_5m_tokens"], saved["cache_write_1h_tokens"]) == (200, 100)
    assert (saved["input_audio_tokens"], saved["output_image_tokens"]) == (150, 40)
    assert saved["cost_usd"] == usd(expected)
    assert saved["billable_usd"] == usd(expected)  # globex: no markup


async def test_above_the_tier_every_token_costs_the_tier_price(
    running: Reloadable, http: aiohttp.ClientSession
) -> None:
    at_threshold = await chat(running, http, "every", **{"x-mock-usage": "5000,1000,100,0"})
    above = await chat(running, http, "every", **{"x-mock-usage": "5001,1000,100,0"})
    fee = Fraction(EVERY["per_request"])  # type: ignore[arg-type]
    base = 4000 * price("input") + 1000 * price("cached_input") + 100 * price("output") + fee
    tier = (4001 * price("input", True) + 1000 * price("cached_input", True)
            + 100 * price("output", True) + fee)  # fmt: skip
    assert at_threshold[2]["x-costproxy-cost-usd"] == usd(nusd(base))
    assert above[2]["x-costproxy-cost-usd"] == usd(nusd(tier))


# --- service tiers: OpenAI's published gpt-5 prices (openai.com/api/pricing, with the Flex
# and Priority processing pages): standard $1.25 / $0.125 cached / $10 per 1M tokens; flex
# half of it ($0.625 / $0.0625 / $5); priority $2.50 / $0.25 / $20.


@pytest.mark.parametrize(
    ("tier", "prices"),
    [
        ("flex", ("0.625", "0.0625", "5")),
        ("priority", ("2.5", "0.25", "20")),
        ("auto", ("1.25", "0.125", "10")),  # answered as "default": the standard prices
    ],
)
async def test_the_response_service_tier_prices_the_request(
    running: Reloadable, tier: str, prices: tuple[str, str, str]
) -> None:
    client = AsyncOpenAI(base_url=running.proxy.url + "/v1", api_key=GLOBEX_KEY, max_retries=0)
    async with client:
        raw = await client.chat.completions.with_raw_response.create(
            model="gpt-5",
            messages=[{"role": "user", "content": "hi"}],
            service_tier=tier,  # type: ignore[arg-type]
            extra_headers={"x-mock-usage": "100000,20000,3000,1000"},
        )
    reply = raw.parse()
    assert reply.service_tier == ("default" if tier == "auto" else tier)
    i, c, o = (Fraction(p) / 10**6 for p in prices)
    assert raw.headers["x-costproxy-cost-usd"] == usd(nusd(80_000 * i + 20_000 * c + 3_000 * o))


# --- prices on a calendar -----------------------------------------------------------------------


async def test_a_request_is_priced_at_the_price_in_force_when_it_arrived(
    running: Reloadable, http: aiohttp.ClientSession
) -> None:
    usage = {"x-mock-usage": "1000,0,0,0"}
    _, _, before = await chat(running, http, "dated", **usage)  # the new price starts tomorrow
    assert before["x-costproxy-cost-usd"] == "0.001000000"

    def from_today(c: dict) -> None:
        c["prices"]["local/dated"][1]["from"] = TODAY.isoformat()

    running.write(from_today)
    status, answer = await running.post_reload(http)
    assert status == 200, answer
    _, _, after = await chat(running, http, "dated", **usage)  # from today: in force
    assert after["x-costproxy-cost-usd"] == "0.002000000"
    # A record keeps the cost it was priced at.
    assert (await record(running, http, before["x-request-id"]))["cost_usd"] == "0.001000000"


# --- an unpriced route under a hard budget ------------------------------------------------------


async def test_an_unpriced_model_under_a_hard_budget_is_refused(
    running: Reloadable, http: aiohttp.ClientSession
) -> None:
    status, answer, _ = await chat(running, http, "house", key=ACME_KEY)
    assert status == 400
    error = answer["error"]
    assert (error["code"], error["type"], error["param"]) == (
        "unpriced_model_under_budget",
        "invalid_request_error",
        "model",
    )
    assert "'local/house'" in error["message"]
    assert "monthly budget of customer acme ($1000.00)" in error["message"]
    # Without a budget it is served, at an unknown cost.
    status, _, headers = await chat(running, http, "house")
    assert status == 200
    assert headers["x-costproxy-cost-usd"] == "unknown"
    assert (await record(running, http, headers["x-request-id"]))["cost_usd"] is None


# --- what customers are charged -----------------------------------------------------------------


async def test_the_markup_is_in_the_record_spend_export_and_metrics(
    running: Reloadable, http: aiohttp.ClientSession
) -> None:
    headers = {"x-mock-usage": "1000,100,500,50", "x-mock-usage-parts": PARTS}
    ids = []
    for _ in range(3):
        status, answer, sent = await chat(running, http, "every", key=ACME_KEY, **headers)
        assert status == 200, answer
        ids.append(sent["x-request-id"])
    cost = every_dimension_usd()
    # From the exact cost, once: cost x 1.25 + $0.001.
    billable = nusd(cost * Fraction(125, 100) + Fraction(1, 1000))
    for request_id in ids:
        saved = await record(running, http, request_id)
        assert (saved["cost_usd"], saved["billable_usd"]) == (usd(nusd(cost)), usd(billable))

    spend = await admin_get(http, running.proxy, "/admin/v1/spend?customer=acme")
    assert spend["total"]["cost_usd"] == usd(3 * nusd(cost))
    assert spend["total"]["billable_usd"] == usd(3 * billable)

    async with http.get(
        running.proxy.url + "/admin/v1/usage?customer=acme&format=csv", headers=ADMIN
    ) as resp:
        rows = list(csv.DictReader(io.StringIO(await resp.text())))
    exported = {row["request_id"]: row for row in rows}
    assert [exported[i]["billable_usd"] for i in ids] == [usd(billable)] * 3

    async with http.get(running.proxy.url + "/metrics") as resp:
        metrics = await resp.text()
    line = next(
        m for m in metrics.splitlines()
        if m.startswith("costproxy_billable_usd_total{") and 'customer="acme"' in m
    )  # fmt: skip
    assert float(line.rsplit(" ", 1)[1]) == pytest.approx(3 * billable / 1e9)


# --- prices you can see --------------------------------------------------------------------------


async def test_the_admin_api_lists_every_target_with_its_price_and_source(
    running: Reloadable, http: aiohttp.ClientSession
) -> None:
    report = await admin_get(http, running.proxy, "/admin/v1/prices")
    targets = {(t["provider"], t["model"]): t for t in report["targets"]}
    assert report["catalogue"]["package"] == "genai-prices" and report["unpriced"] == 1
    every = targets[("local", "every-dim")]
    assert every["source"] == {"kind": "config", "key": "local/every-dim"}
    assert every["now"]["standard"]["usd_per_mtok"]["output_image"] == "9.7"
    assert every["now"]["standard"]["tiers"][0]["above_input_tokens"] == 5000
    assert every["now"]["standard"]["per_request_usd"] == "0.000013"
    gpt_5 = targets[("openai", "gpt-5")]
    assert gpt_5["source"]["catalogue"] == f"genai-prices {report['catalogue']['version']}"
    assert gpt_5["now"]["variants"]["flex"]["usd_per_mtok"]["input"] == "0.625"
    assert targets[("local", "house")]["priced"] is False

    one = await admin_get(
        http, running.proxy, "/admin/v1/prices/together/meta-llama/Llama-3.3-70B-Instruct-Turbo"
    )
    assert (one["routes"], one["source"]["key"]) == (
        ["llama"],
        "together/meta-llama/Llama-3.3-70B-Instruct-Turbo",
    )
    other = await admin_get(http, running.proxy, "/admin/v1/prices/openai/gpt-4o-mini")
    assert other["routes"] == [] and other["now"]["standard"]["usd_per_mtok"]["input"] == "0.15"

    async with http.get(running.proxy.url + "/admin/v1/prices/nowhere/m", headers=ADMIN) as resp:
        assert resp.status == 404
        assert (await resp.json())["error"]["code"] == "provider_not_found"
    async with http.get(running.proxy.url + "/admin/v1/prices") as resp:
        assert resp.status == 401


async def test_the_cli_lists_unpriced_targets_and_traffic_from_the_proxy_and_the_store(
    running: Reloadable, http: aiohttp.ClientSession
) -> None:
    assert (await chat(running, http, "house"))[0] == 200  # traffic at an unknown cost
    env = {"PATH": os.environ["PATH"], "COSTPROXY_ADMIN_TOKEN": ADMIN_TOKEN}
    remote = costproxy("prices", "unpriced", "--url", running.proxy.url, "--json", env=env)
    assert remote.returncode == 0, remote.stderr
    local = costproxy("prices", "unpriced", "--config", str(config_path(running.proxy)), "--json",
                      env={"PATH": os.environ["PATH"]})  # fmt: skip
    assert local.returncode == 0, local.stderr
    for answer in (json.loads(remote.stdout), json.loads(local.stdout)):
        assert [(t["provider"], t["model"]) for t in answer["targets"]] == [("local", "house")]
        seen = {(m["provider"], m["model"]): m for m in answer["traffic"]["models"]}
        assert list(seen) == [("local", "house")]
        assert seen[("local", "house")]["unpriced_requests"] >= 1

    listed = costproxy("prices", "list", "--url", running.proxy.url, env=env)
    assert listed.returncode == 0, listed.stderr
    assert "config local/every-dim" in listed.stdout and "UNPRICED" in listed.stdout
