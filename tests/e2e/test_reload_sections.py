"""Every config section, changed in the file of a running proxy and reloaded: the proxy then
behaves by the new value, or the reload is refused and names what needs a restart.

One proxy serves the whole module; each test changes its section, checks the behaviour,
and leaves the config as the next test expects it (most restore what they changed).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import aiohttp
import pytest

from proxy.accounting.pricing import parse_usd
from proxy.config import Config
from proxy.reload import RESTART_ONLY, SECTIONS
from tests.support.fleet import ADMIN, admin_get, config_path, dead_url, rewrite_config
from tests.support.procs import ServerProcess, start_proxy
from tests.support.reconcile_stack import ADMIN_KEYS_ENV, openai_report
from tests.support.reloading import Reloadable
from tests.support.report_api import FakeReportAPI
from tests.support.stack import ACME_KEY, ENV, GLOBEX_KEY, METRICS_TOKEN
from tests.support.webhooks import SECRET, Receiver

NEW_KEY = "sk-client-delta-SECRET-reload"
BODY = {"model": "main", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 5}


def initial_config(upstream_url: str, directory: Path) -> dict:
    key = "${T_UPSTREAM_KEY}"
    return {
        "store": {"backend": "sqlite", "sqlite_path": str(directory / "costproxy.db")},
        "admin": {"token": "${T_ADMIN_TOKEN}"},
        "request_log": {"enabled": False},
        "reload": {"watch": False, "interval_s": 0.05},
        "providers": {
            "a": {
                "base_url": upstream_url + "/v1",
                "forward_headers": ["x-mock-*"],
                "api_key": key,
            },
            "down": {"base_url": dead_url(), "forward_headers": ["x-mock-*"], "api_key": key},
        },
        "models": {
            "main": {"targets": [{"provider": "a", "model": "m"}]},
            "broken": {"targets": [{"provider": "down", "model": "m"}], "retries": 0},
        },
        "prices": {"a/m": {"input": "0", "output": "0"}},
        "keys": [
            {"key": "${T_ACME_KEY}", "customer": "acme"},
            {"key": "${T_GLOBEX_KEY}", "customer": "globex"},
        ],
        # A soft budget globex crosses with its first request (alerts only: never refused).
        "customers": {
            "globex": {"budgets": [{"period": "daily", "limit_usd": "0.000001", "hard": False}]}
        },
        "alerts": {"retry_attempts": 1, "retry_base_s": 0.05},
    }


@pytest.fixture(scope="module")
def running(
    upstream: ServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Reloadable]:
    directory = tmp_path_factory.mktemp("sections")
    config = initial_config(upstream.url, directory)
    env = {**ENV, **ADMIN_KEYS_ENV, "T_METRICS_TOKEN": METRICS_TOKEN}
    proxy = start_proxy(config, directory, env)
    try:
        yield Reloadable(proxy, config)
    finally:
        proxy.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def reload(running: Reloadable, http: aiohttp.ClientSession, change) -> tuple[int, dict]:
    running.write(change)
    return await running.post_reload(http)


async def applied(running: Reloadable, http: aiohttp.ClientSession, change) -> dict:
    status, answer = await reload(running, http, change)
    assert status == 200, answer
    return answer


async def refused(running: Reloadable, http: aiohttp.ClientSession, change, name: str) -> None:
    """The reload is refused naming `name`; the file is put back as it was."""
    path = config_path(running.proxy)
    before = path.read_text()
    rewrite_config(running.proxy, change)
    status, answer = await running.post_reload(http)
    assert status == 400, answer
    assert f"{name} changed" in answer["error"]["message"]
    assert "only on restart" in answer["error"]["message"]
    path.write_text(before)
    await applied(running, http, lambda c: None)


async def chat(
    running: Reloadable,
    http: aiohttp.ClientSession,
    key: str = ACME_KEY,
    body: dict | None = None,
    **headers: str,
) -> tuple[int, dict, aiohttp.typedefs.LooseHeaders]:
    async with http.post(
        running.proxy.url + "/v1/chat/completions",
        json=body or BODY,
        headers={"Authorization": f"Bearer {key}", **headers},
    ) as resp:
        return resp.status, await resp.json(), resp.headers


def test_sections_are_the_config_and_restart_only_paths_exist() -> None:
    names = {field.alias or name for name, field in Config.model_fields.items()}
    assert set(SECTIONS) == names
    for path in RESTART_ONLY:
        section, _, field = path.partition(".")
        assert section in names
        if field:
            model = Config.model_fields[section].annotation
            assert field in model.model_fields, path


async def test_server_needs_a_restart(running: Reloadable, http: aiohttp.ClientSession) -> None:
    await refused(running, http, lambda c: c["server"].update(max_body_bytes=1024), "server")


async def test_store_needs_a_restart(running: Reloadable, http: aiohttp.ClientSession) -> None:
    await refused(running, http, lambda c: c["store"].update(usage_log_max=10), "store")


async def test_admin_token_changes_and_its_port_needs_a_restart(
    running: Reloadable, http: aiohttp.ClientSession
) -> None:
    new = "admin-token-after-reload-0123"
    await applied(running, http, lambda c: c["admin"].update(token=new))
    url = running.proxy.url + "/admin/v1/providers"
    async with http.get(url, headers=ADMIN) as resp:
        assert resp.status == 401
    async with http.get(url, headers={"Authorization": f"Bearer {new}"}) as resp:
        assert resp.status == 200
    running.config["admin"]["token"] = "${T_ADMIN_TOKEN}"
    running.write(lambda c: None)
    async with http.post(
        running.proxy.url + "/admin/v1/reload", headers={"Authorization": f"Bearer {new}"}
    ) as resp:
        assert resp.status == 200
    await refused(running, http, lambda c: c["admin"].update(port=1), "admin.port")


async def test_metrics_token_changes_and_customer_labels_need_a_restart(
    running: Reloadable, http: aiohttp.ClientSession
) -> None:
    url = running.proxy.url + "/metrics"
    async with http.get(url) as resp:
        assert resp.status == 200
    await applied(running, http, lambda c: c.update(metrics={"token": "${T_METRICS_TOKEN}"}))
    async with http.get(url) as resp:
        assert resp.status == 401
    async with http.get(url, headers={"Authorization": f"Bearer {METRICS_TOKEN}"}) as resp:
        assert resp.status == 200
    await refused(
        running,
        http,
        lambda c: c["metrics"].update(customer_label="all"),
        "metrics.customer_label",
    )
    await applied(running, http, lambda c: c.pop("metrics"))


async def test_request_log_follows_the_setting(
    running: Reloadable, http: aiohttp.ClientSession
) -> None:
    _, _, quiet = await chat(running, http)
    await applied(running, http, lambda c: c["request_log"].update(enabled=True))
    _, _, logged = await chat(running, http)
    await asyncio.sleep(0.3)  # the log is written every 0.1 s
    logs = running.proxy.logs()
    assert logged["x-request-id"] in logs
    assert quiet["x-request-id"] not in logs


async def test_providers(running: Reloadable, http: aiohttp.ClientSession) -> None:
    good = running.config["providers"]["a"]["base_url"]
    await applied(running, http, lambda c: c["providers"]["a"].update(base_url=dead_url()))
    status, answer, _ = await chat(running, http)
    assert status == 502, answer
    await applied(running, http, lambda c: c["providers"]["a"].update(base_url=good))
    assert (await chat(running, http))[0] == 200


async def test_auth_failures(running: Reloadable, http: aiohttp.ClientSession) -> None:
    """Read at each failure: a lower threshold refuses the next guesser sooner. The
    guesses come from an address of their own (127.0.0.7), so this one stays unblocked."""
    await applied(running, http, lambda c: c.update(auth_failures={"threshold": 2}))
    connector = aiohttp.TCPConnector(local_addr=("127.0.0.7", 0))
    async with aiohttp.ClientSession(connector=connector) as guesser:
        statuses = []
        for _ in range(3):
            async with guesser.post(
                running.proxy.url + "/v1/chat/completions",
                json=BODY,
                headers={"Authorization": "Bearer sk-wrong"},
            ) as resp:
                statuses.append(resp.status)
    assert statuses == [401, 401, 429]
    await applied(running, http, lambda c: c.pop("auth_failures"))


async def test_stack_secrets(running: Reloadable, http: aiohttp.ClientSession) -> None:
    """Checked as the config loads: a published demo secret beside the providers' real
    key is refused, and the running config stays."""
    path = config_path(running.proxy)
    before = path.read_text()
    rewrite_config(running.proxy, lambda c: c.update(stack_secrets={"GRAFANA_PASSWORD": "admin"}))
    status, answer = await running.post_reload(http)
    assert status == 400, answer
    assert "set GRAFANA_PASSWORD to a secret of your own" in answer["error"]["message"]
    path.write_text(before)
    await applied(running, http, lambda c: c.update(stack_secrets={"GRAFANA_PASSWORD": "x" * 20}))
    await applied(running, http, lambda c: c.pop("stack_secrets"))


async def test_provider_headers(running: Reloadable, http: aiohttp.ClientSession) -> None:
    assert "openai-processing-ms" not in (await chat(running, http))[2]
    await applied(
        running,
        http,
        lambda c: c["providers"]["a"].update(return_headers=["openai-processing-ms"]),
    )
    assert (await chat(running, http))[2]["openai-processing-ms"] == "12"
    await applied(running, http, lambda c: c["providers"]["a"].pop("return_headers"))
    assert "openai-processing-ms" not in (await chat(running, http))[2]


async def test_models(running: Reloadable, http: aiohttp.ClientSession) -> None:
    body = {**BODY, "model": "extra"}
    assert (await chat(running, http, body=body))[0] == 404
    await applied(
        running,
        http,
        lambda c: c["models"].update(extra={"targets": [{"provider": "a", "model": "m"}]}),
    )
    status, _, headers = await chat(running, http, body=body)
    assert status == 200 and headers["x-costproxy-upstream-model"] == "m"


async def test_prices(running: Reloadable, http: aiohttp.ClientSession) -> None:
    assert (await chat(running, http))[2]["x-costproxy-cost-usd"] == "0.000000000"
    await applied(
        running, http, lambda c: c["prices"].update({"a/m": {"input": "1000", "output": "0"}})
    )
    _, answer, headers = await chat(running, http)
    prompt = answer["usage"]["prompt_tokens"]
    assert (
        headers["x-costproxy-cost-usd"]
        == f"{prompt * 1000 // 10**6}.{prompt * 1000 % 10**6:06d}000"
    )
    await applied(
        running, http, lambda c: c["prices"].update({"a/m": {"input": "0", "output": "0"}})
    )


async def test_billing(running: Reloadable, http: aiohttp.ClientSession) -> None:
    async def billed() -> tuple[int, int]:
        """(cost, billable) of acme's spend so far, in nano-dollars."""
        spend = await admin_get(http, running.proxy, "/admin/v1/spend?customer=acme")
        return parse_usd(spend["total"]["cost_usd"]), parse_usd(spend["total"]["billable_usd"])

    await applied(
        running, http, lambda c: c["prices"].update({"a/m": {"input": "1000", "output": "0"}})
    )
    before = await billed()
    _, answer, _ = await chat(running, http)
    cost = answer["usage"]["prompt_tokens"] * 1_000_000  # $1000/M: 1,000,000 nUSD a token
    after = await billed()
    assert (after[0] - before[0], after[1] - before[1]) == (cost, cost)  # no markup yet

    await applied(
        running, http, lambda c: c.update(billing={"markup_pct": "50", "per_request_usd": "0.01"})
    )
    _, answer, _ = await chat(running, http)
    cost = answer["usage"]["prompt_tokens"] * 1_000_000
    later = await billed()
    assert (later[0] - after[0], later[1] - after[1]) == (cost, cost * 3 // 2 + 10_000_000)
    await applied(running, http, lambda c: c.pop("billing"))
    await applied(
        running, http, lambda c: c["prices"].update({"a/m": {"input": "0", "output": "0"}})
    )


async def test_keys(running: Reloadable, http: aiohttp.ClientSession) -> None:
    assert (await chat(running, http, key=NEW_KEY))[0] == 401
    await applied(running, http, lambda c: c["keys"].append({"key": NEW_KEY, "customer": "delta"}))
    assert (await chat(running, http, key=NEW_KEY))[0] == 200


async def test_breaker(running: Reloadable, http: aiohttp.ClientSession) -> None:
    async def state_after_one_failure() -> str:
        assert (await chat(running, http, body={**BODY, "model": "broken"}))[0] == 502
        report = await admin_get(http, running.proxy, "/admin/v1/providers")
        down = next(p for p in report["providers"] if p["name"] == "down")
        return down["targets"][0]["breaker"]["state"]

    assert await state_after_one_failure() == "closed"  # default threshold: 5
    await applied(
        running, http, lambda c: c.update(breaker={"failure_threshold": 1, "cooldown_s": 60})
    )
    assert await state_after_one_failure() == "open"


async def test_streams(running: Reloadable, http: aiohttp.ClientSession) -> None:
    async def hang_up_after_one_event() -> dict:
        headers = {
            "Authorization": f"Bearer {ACME_KEY}",
            "x-mock-chunks": "20",
            "x-mock-chunk-delay-ms": "20",
        }
        resp = await http.post(
            running.proxy.url + "/v1/chat/completions",
            json={**BODY, "stream": True},
            headers=headers,
        )
        request_id = resp.headers["x-request-id"]
        await resp.content.readuntil(b"\n\n")
        resp.close()
        for _ in range(200):  # written when the proxy is done with the upstream
            async with http.get(
                f"{running.proxy.url}/admin/v1/usage/{request_id}", headers=ADMIN
            ) as answer:
                if answer.status == 200:
                    return await answer.json()
            await asyncio.sleep(0.02)
        raise AssertionError(f"no record for {request_id}")

    # drain (the default): the rest is read for the provider's usage; close: estimated.
    assert (await hang_up_after_one_event())["usage_source"] == "upstream"
    await applied(running, http, lambda c: c.update(streams={"on_client_disconnect": "close"}))
    assert (await hang_up_after_one_event())["usage_source"] == "estimated"
    await applied(running, http, lambda c: c.pop("streams"))


async def test_reload_watch(running: Reloadable, http: aiohttp.ClientSession) -> None:
    await applied(running, http, lambda c: c["reload"].update(watch=True))
    before = await running.generation(http)
    running.write(
        lambda c: c["models"].update(watched={"targets": [{"provider": "a", "model": "m"}]})
    )
    for _ in range(200):  # no signal, no API call: the watcher notices the file
        if await running.generation(http) > before:
            break
        await asyncio.sleep(0.02)
    assert (await chat(running, http, body={**BODY, "model": "watched"}))[0] == 200
    await applied(running, http, lambda c: c["reload"].update(watch=False))


async def test_what_if(running: Reloadable, http: aiohttp.ClientSession) -> None:
    def add_rule(c: dict) -> None:
        c["prices"]["rival/alt"] = {"input": "1", "output": "1"}
        c["what_if"] = ["a/m -> rival/alt"]

    await applied(running, http, add_rule)
    _, _, headers = await chat(running, http)
    record = await admin_get(http, running.proxy, f"/admin/v1/usage/{headers['x-request-id']}")
    assert "rival/alt" in record["what_if"]


async def test_customers_rate_limits(running: Reloadable, http: aiohttp.ClientSession) -> None:
    assert [(await chat(running, http, key=NEW_KEY))[0] for _ in range(2)] == [200, 200]
    await applied(running, http, lambda c: c["customers"].update(delta={"rpm": 1}))
    statuses = [(await chat(running, http, key=NEW_KEY))[0] for _ in range(2)]
    assert statuses == [200, 429]


async def test_customers_max_in_flight(running: Reloadable, http: aiohttp.ClientSession) -> None:
    await applied(running, http, lambda c: c["customers"]["globex"].update(max_in_flight=1))
    slow = {"x-mock-chunks": "20", "x-mock-chunk-delay-ms": "100"}
    stream = await http.post(
        running.proxy.url + "/v1/chat/completions",
        json={**BODY, "stream": True},
        headers={"Authorization": f"Bearer {GLOBEX_KEY}", **slow},
    )
    try:
        assert stream.status == 200
        await stream.content.readuntil(b"\n\n")  # in flight
        status, answer, _ = await chat(running, http, key=GLOBEX_KEY)
        assert status == 429 and answer["error"]["code"] == "concurrency_limit_exceeded"
    finally:
        stream.close()
    await applied(running, http, lambda c: c["customers"]["globex"].pop("max_in_flight"))


async def test_tags_budgets(running: Reloadable, http: aiohttp.ClientSession) -> None:
    tagged = {"X-Cost-Tags": "feature=story"}
    await applied(
        running, http, lambda c: c["prices"].update({"a/m": {"input": "1", "output": "1"}})
    )
    assert (await chat(running, http, **tagged))[0] == 200
    tiny = [{"period": "daily", "limit_usd": "0.000000001"}]
    await applied(running, http, lambda c: c.update(tags={"feature=story": {"budgets": tiny}}))
    status, answer, _ = await chat(running, http, **tagged)
    assert status == 429 and answer["error"]["code"] == "budget_exceeded"
    assert (await chat(running, http))[0] == 200  # untagged: no budget applies
    await applied(running, http, lambda c: c.pop("tags"))


async def test_global_budget_and_budgeting(
    running: Reloadable, http: aiohttp.ClientSession
) -> None:
    # Priced output, and a global budget between the reservation of a request stating no
    # max tokens under the default (4096 tokens: $0.004096) and under a small default. A
    # budget added mid-day counts the day's spend so far: its limit is that plus $0.001.
    today = datetime.now(UTC).date().isoformat()
    spend = await admin_get(http, running.proxy, f"/admin/v1/spend?from={today}&to={today}")
    limit = Decimal(spend["total"]["cost_usd"]) + Decimal("0.001")

    def priced(c: dict) -> None:
        c["prices"]["a/m"] = {"input": "0", "output": "1"}
        c["global"] = {"budgets": [{"period": "daily", "limit_usd": str(limit)}]}

    await applied(running, http, priced)
    for _ in range(100):  # the reload seeds the new budget in the background
        (budget,) = (await admin_get(http, running.proxy, "/admin/v1/budgets/global"))["budgets"]
        if Decimal(budget["spent_usd"]) == Decimal(spend["total"]["cost_usd"]):
            break
        await asyncio.sleep(0.05)
    unstated = {"model": "main", "messages": [{"role": "user", "content": "hello"}]}
    status, answer, _ = await chat(running, http, body=unstated)
    assert status == 429 and answer["error"]["code"] == "budget_exceeded", answer
    await applied(running, http, lambda c: c.update(budgeting={"default_max_output_tokens": 16}))
    status, answer, _ = await chat(running, http, body=unstated)
    assert status == 200, answer

    # An unpriced model under the hard global budget: refused, unless budgeting allows it.
    await applied(running, http, lambda c: c["prices"].pop("a/m"))
    status, answer, _ = await chat(running, http)
    assert (status, answer["error"]["code"]) == (400, "unpriced_model_under_budget"), answer
    await applied(running, http, lambda c: c["budgeting"].update(unpriced="allow"))
    assert (await chat(running, http))[0] == 200

    await applied(running, http, lambda c: c["global"].update(budgets=[]))
    await applied(running, http, lambda c: c.update(budgeting={}))
    await applied(
        running, http, lambda c: c["prices"].update({"a/m": {"input": "0", "output": "0"}})
    )


async def test_alerts_webhooks(running: Reloadable, http: aiohttp.ClientSession) -> None:
    async with Receiver(fail_first=0) as receiver:
        hook = {"url": receiver.url, "secret": SECRET}
        await applied(running, http, lambda c: c["alerts"].update(webhooks=[hook]))
        await applied(
            running, http, lambda c: c["prices"].update({"a/m": {"input": "1", "output": "1"}})
        )
        assert (await chat(running, http, key=GLOBEX_KEY))[0] == 200  # crosses its soft budget
        for _ in range(200):
            if receiver.accepted:
                break
            await asyncio.sleep(0.02)
        assert receiver.accepted, "no alert reached the webhook added by the reload"
        assert receiver.accepted[0]["scope"] == "customer/globex"


async def test_reconcile(running: Reloadable, http: aiohttp.ClientSession) -> None:
    url = running.proxy.url + "/admin/v1/reconcile/a"
    async with http.get(url, headers=ADMIN) as resp:
        assert resp.status == 404
    with FakeReportAPI() as reports:

        def reconciled(c: dict) -> None:
            c["providers"]["a"]["report"] = openai_report(reports)
            c["reconcile"] = [{"provider": "a", "every": "1h", "lag_days": 0, "days": 1}]

        await applied(running, http, reconciled)
        for _ in range(200):  # the reload starts a round at once, not in a minute
            async with http.get(url, headers=ADMIN) as resp:
                answer = await resp.json()
            if answer["status"] != "pending":
                break
            await asyncio.sleep(0.05)
        # The report is empty: earlier tests' traffic of provider a makes it differ.
        assert answer["status"] in ("matched", "differences"), answer
        assert answer["result"]["provider"] == "a"
        assert reports.requests_to("/v1/organization/costs") == 1
    await applied(running, http, lambda c: c.update(reconcile=[]))
    async with http.get(url, headers=ADMIN) as resp:
        assert resp.status == 404
