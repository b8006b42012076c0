"""Hot reload on a running proxy: by SIGHUP, by the admin API and by file watch, under load.

The config file is rewritten as an operator would; requests in flight must finish on the
config they started with, and no client request may fail across reloads.
"""

from __future__ import annotations

import asyncio
import copy
import random
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import aiohttp
import openai
import pytest
from openai import AsyncOpenAI

from tests.support.fleet import admin_get, rewrite_config
from tests.support.procs import ServerProcess, start_proxy, start_upstream
from tests.support.reloading import Reloadable
from tests.support.stack import ACME_KEY, ENV

MESSAGES = [{"role": "user", "content": "A dragon who counts coins."}]
REPLY = "".join(f" word{i}" for i in range(8))


def base_config(a_url: str, b_url: str, directory: Path) -> dict:
    key = "${T_UPSTREAM_KEY}"
    return {
        "store": {"backend": "sqlite", "sqlite_path": str(directory / "costproxy.db")},
        "admin": {"token": "${T_ADMIN_TOKEN}"},
        "reload": {"watch": False, "interval_s": 0.05},
        "providers": {
            "a": {"base_url": a_url, "forward_headers": ["x-mock-*"], "api_key": key},
            "b": {"base_url": b_url, "forward_headers": ["x-mock-*"], "api_key": key},
            "gone": {"base_url": a_url, "forward_headers": ["x-mock-*"], "api_key": key},
        },
        "models": {
            "main": {"targets": [{"provider": "a", "model": "m"}]},
            "solo": {"targets": [{"provider": "gone", "model": "m"}]},
            "cheap": {
                "strategy": "cheapest",
                "targets": [{"provider": "a", "model": "m1"}, {"provider": "b", "model": "m2"}],
            },
        },
        "prices": {
            "a/m1": {"input": "1", "output": "10"},  # cheap prompts
            "b/m2": {"input": "5", "output": "2"},  # cheap completions
        },
        "keys": [{"key": "${T_ACME_KEY}", "customer": "acme"}],
    }


@pytest.fixture(scope="module")
def setup(
    upstream: ServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Reloadable]:
    b = start_upstream()
    directory = tmp_path_factory.mktemp("reload")
    config = base_config(upstream.url + "/v1", b.url + "/v1", directory)
    proxy = start_proxy(config, directory, ENV)
    try:
        yield Reloadable(proxy, config)
    finally:
        proxy.stop()
        b.stop()


@pytest.fixture
async def client(setup: Reloadable) -> AsyncIterator[AsyncOpenAI]:
    async with AsyncOpenAI(base_url=setup.proxy.url + "/v1", api_key=ACME_KEY, max_retries=0) as c:
        yield c


async def test_a_request_in_flight_finishes_on_the_config_it_started_with(
    setup: Reloadable, client: AsyncOpenAI, http: aiohttp.ClientSession, upstream: ServerProcess
) -> None:
    async with http.delete(upstream.url + "/_mock/requests"):
        pass
    slow = asyncio.create_task(
        client.chat.completions.with_raw_response.create(
            model="solo", messages=MESSAGES, extra_headers={"x-mock-latency-ms": "400"}
        )
    )
    while True:  # until the fake upstream has the request (and sits on it for 400 ms)
        async with http.get(upstream.url + "/_mock/requests") as resp:
            if await resp.json():
                break
        await asyncio.sleep(0.01)

    def drop_solo(config: dict) -> None:
        del config["providers"]["gone"], config["models"]["solo"]

    setup.write(drop_solo)
    status, answer = await setup.post_reload(http)

    assert status == 200, answer
    assert answer["providers"]["removed"] == ["gone"]
    assert answer["providers"]["kept"] == ["a", "b"]
    assert answer["routes"]["removed"] == ["solo"]
    raw = await slow  # its provider left the config, but not before it finished
    assert raw.headers["x-costproxy-provider"] == "gone"
    assert raw.parse().choices[0].message.content == REPLY
    names = {model.id async for model in client.models.list()}
    assert names == {"main", "cheap"}
    async with http.post(
        setup.proxy.url + "/v1/chat/completions",
        json={"model": "solo", "messages": MESSAGES},
        headers={"Authorization": f"Bearer {ACME_KEY}"},
    ) as resp:
        assert resp.status == 404


async def cheapest_pick(client: AsyncOpenAI, prompt: str, max_tokens: int) -> str:
    raw = await client.chat.completions.with_raw_response.create(
        model="cheap", messages=[{"role": "user", "content": prompt}], max_tokens=max_tokens
    )
    return raw.headers["x-costproxy-provider"]


async def test_cheapest_follows_the_price_table_when_the_file_changes(
    setup: Reloadable, client: AsyncOpenAI, http: aiohttp.ClientSession
) -> None:
    long_prompt, short_prompt = "coin " * 2000, "hi"
    # a costs 1 in + 10 out, b 5 in + 2 out ($/1M): a long prompt with a short answer is
    # cheaper on a, a short prompt with a long answer on b.
    assert await cheapest_pick(client, long_prompt, 1) == "a"
    assert await cheapest_pick(client, short_prompt, 1000) == "b"

    setup.write(lambda c: c["reload"].update(watch=True))
    assert (await setup.post_reload(http))[0] == 200
    before = await admin_get(http, setup.proxy, "/admin/v1/providers")

    def swap_prices(config: dict) -> None:
        prices = config["prices"]
        prices["a/m1"], prices["b/m2"] = prices["b/m2"], prices["a/m1"]

    setup.write(swap_prices)  # no signal, no API call: the watch picks it up
    await setup.wait_for_reload(http, before)

    assert await cheapest_pick(client, long_prompt, 1) == "b"
    assert await cheapest_pick(client, short_prompt, 1000) == "a"
    before = await admin_get(http, setup.proxy, "/admin/v1/providers")
    setup.write(lambda c: c["reload"].update(watch=False))
    await setup.wait_for_reload(http, before)


class Load:
    """Clients sending streamed and whole requests through the official SDK, nonstop."""

    def __init__(self, client: AsyncOpenAI, workers: int) -> None:
        self.client = client
        self.failures: list[str] = []
        self.done = 0
        self.providers: list[str] = []
        self._stop = asyncio.Event()
        self._rng = random.Random(4)
        self._tasks = [asyncio.create_task(self._worker()) for _ in range(workers)]

    async def _one(self) -> None:
        latency = str(self._rng.choice([0, 0, 20, 80]))
        headers = {"x-mock-latency-ms": latency}
        if self._rng.random() < 0.5:
            raw = await self.client.chat.completions.with_raw_response.create(
                model="main", messages=MESSAGES, stream=True, extra_headers=headers
            )
            chunks = [chunk async for chunk in raw.parse()]
            text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            finish = chunks[-1].choices[0].finish_reason if chunks[-1].choices else None
            ok = text == REPLY and finish == "stop"
        else:
            raw = await self.client.chat.completions.with_raw_response.create(
                model="main", messages=MESSAGES, extra_headers=headers
            )
            ok = raw.parse().choices[0].message.content == REPLY
        if not ok:
            self.failures.append(f"incomplete answer from {raw.headers['x-costproxy-provider']}")
        self.providers.append(raw.headers["x-costproxy-provider"])

    async def _worker(self) -> None:
        while not self._stop.is_set():
            try:
                await self._one()
            except Exception as exc:  # any failure a client would see is what we count
                self.failures.append(f"{type(exc).__name__}: {exc}")
            self.done += 1

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)


def variant(i: int) -> Callable[[dict], None]:
    """The i-th config an operator moves to: traffic to a, to b, or split; b's pool
    rebuilt on odd steps (its headers change); a provider and route added and removed."""

    def change(config: dict) -> None:
        main = [
            [{"provider": "a", "model": "m"}],
            [{"provider": "b", "model": "m"}],
            [{"provider": "a", "model": "m", "weight": 1}, {"provider": "b", "model": "m"}],
        ][i % 3]
        config["models"]["main"] = {"strategy": "weighted", "targets": main}
        config["providers"]["b"]["headers"] = {"x-config-step": str(i // 2)}
        if i % 2 == 0:
            config["providers"]["extra"] = {
                "base_url": config["providers"]["b"]["base_url"],
                "forward_headers": ["x-mock-*"],
            }
            config["models"]["extra"] = {"targets": [{"provider": "extra", "model": "m"}]}
        else:
            config["providers"].pop("extra", None)
            config["models"].pop("extra", None)

    return change


async def test_reloads_under_load_fail_no_request(
    setup: Reloadable, client: AsyncOpenAI, http: aiohttp.ClientSession
) -> None:
    start_generation = await setup.generation(http)
    load = Load(client, workers=12)
    try:
        for i in range(10):
            await asyncio.sleep(0.1)  # let traffic run on this config
            setup.write(variant(i))
            if i % 2 == 0:
                await setup.sighup(http)
            else:
                status, answer = await setup.post_reload(http)
                assert status == 200, answer

        # Invalid configs while the load runs: each is rejected, the last valid one serves.
        valid = copy.deepcopy(setup.config)
        setup.write(
            lambda c: c["models"]["main"].update(targets=[{"provider": "nope", "model": "m"}])
        )
        status, answer = await setup.post_reload(http)
        assert status == 400
        assert answer["error"]["code"] == "invalid_config"
        assert "target provider 'nope' is not defined" in answer["error"]["message"]

        setup.config = copy.deepcopy(valid)
        setup.write(lambda c: c["store"].update(backend="redis"))
        status, answer = await setup.post_reload(http)
        assert status == 400 and "take effect only on restart" in answer["error"]["message"]

        rewrite_config(setup.proxy, lambda c: c.update(models="{not: [valid"))
        report = await setup.sighup(http, expect_change=False)
        assert report["generation"] == start_generation + 10
        assert "invalid config" in report["reload"]["last_error"]
        await asyncio.sleep(0.2)  # traffic on the last valid config after the rejections

        setup.config = copy.deepcopy(valid)
        setup.write(
            lambda c: c["models"].update(main={"targets": [{"provider": "b", "model": "m"}]})
        )
        status, answer = await setup.post_reload(http)
        assert status == 200, answer
        await asyncio.sleep(0.1)
    finally:
        await load.stop()

    assert load.failures == []
    assert load.done >= 200, load.done
    assert {"a", "b"} <= set(load.providers)
    report = await admin_get(http, setup.proxy, "/admin/v1/providers")
    assert report["generation"] == start_generation + 11
    assert report["reload"]["failed"] >= 3 and report["reload"]["last_error"] is None
    pools = {p["name"]: p["pool_since_generation"] for p in report["providers"]}
    assert pools["a"] == 1  # never changed: the same connection pool all along
    assert pools["b"] > start_generation  # rebuilt when its headers changed
    for _ in range(10):  # every new request follows the final config
        raw = await client.chat.completions.with_raw_response.create(
            model="main", messages=MESSAGES
        )
        assert raw.headers["x-costproxy-provider"] == "b"


async def test_configured_budgets_follow_a_reload(
    setup: Reloadable, client: AsyncOpenAI, http: aiohttp.ClientSession
) -> None:
    budget = {"budgets": [{"period": "monthly", "limit_usd": "0.000000001", "hard": True}]}
    setup.write(lambda config: config.update(customers={"acme": budget}))
    status, _ = await setup.post_reload(http)
    assert status == 200
    with pytest.raises(openai.RateLimitError) as info:
        await client.chat.completions.create(model="cheap", messages=MESSAGES, max_tokens=5)
    assert info.value.body["code"] == "budget_exceeded"

    setup.write(lambda config: config.update(customers={}))
    status, _ = await setup.post_reload(http)
    assert status == 200
    reply = await client.chat.completions.create(model="cheap", messages=MESSAGES, max_tokens=5)
    assert reply.choices[0].message.content == REPLY
