"""The admin API on each store: export, OpenAPI (checked by schemathesis), no secret kept,
the CLI, and the admin API on its own port."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import aiohttp
import orjson
import pytest
import yaml

from proxy.accounting.records import UsageRecord
from proxy.config import parse_config
from proxy.store.factory import make_store
from tests.support.money import nusd
from tests.support.procs import REPO, ServerProcess, free_port, start_proxy
from tests.support.stack import ADMIN_TOKEN, ENV, Stack, base_config

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
# Three UTC days ending today.
TODAY = datetime.now(UTC).date()
DAYS = [(TODAY - timedelta(days=n)).isoformat() for n in (2, 1, 0)]
DAY0_MS = int(datetime.combine(TODAY - timedelta(days=2), time(), UTC).timestamp()) * 1000
RECORDS = 10_000


def stack_config(stack: Stack) -> tuple[Path, dict]:
    path = Path(stack.proxy.args[stack.proxy.args.index("--config") + 1])
    return path, yaml.safe_load(path.read_text())


async def seed(stack: Stack, customer: str, count: int) -> int:
    """`count` records over three UTC days, written straight to the proxy's store."""
    _, raw = stack_config(stack)
    store = make_store(parse_config(raw, env=ENV).store)
    now_in_day = datetime.now(UTC).timestamp() * 1000 % 86_400_000
    now_in_day = int(now_in_day) - 1000
    await store.open()
    total = 0
    try:
        records = [
            UsageRecord(
                request_id=f"req_seed_{customer}_{i}",
                ts_ms=DAY0_MS + i * ((2 * 86_400_000 + now_in_day) // count),
                customer=customer,
                route="gpt-4o-mini",
                provider="openai",
                model="gpt-4o-mini",
                endpoint="chat.completions",
                status=200,
                input_tokens=100 + i % 17,
                output_tokens=i % 31,
                cost_nusd=None if i % 101 == 0 else 1_000_003 * (i % 97) + 7,
                tags=("team=a", "env=prod") if i % 3 else (),
                end_user=f'user,"{i % 5}"',  # CSV quoting is exercised
            )
            for i in range(count)
        ]
        for start in range(0, count, 500):
            await asyncio.gather(*(store.record_usage(r) for r in records[start : start + 500]))
        total = sum(r.cost_nusd or 0 for r in records)
    finally:
        await store.close()
    return total


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def test_export_streams_10k_records_with_totals_equal_to_spend(
    stack: Stack, http: aiohttp.ClientSession
):
    customer = f"export-{uuid.uuid4().hex[:6]}"
    expected = await seed(stack, customer, RECORDS)
    spend = await stack.spend(http, customer=customer, **{"from": DAYS[0], "to": DAYS[2]})
    assert nusd(spend["total"]["cost_usd"]) == expected
    assert stack.proxy.process is not None
    pid = stack.proxy.process.pid
    params = {"customer": customer, "from": DAYS[0], "to": DAYS[2]}
    for fmt in ("jsonl", "csv"):
        before = peak = rss_kib(pid)
        chunks, data = 0, bytearray()
        async with http.get(
            stack.url + "/admin/v1/usage", params={**params, "format": fmt}, headers=ADMIN
        ) as resp:
            assert resp.status == 200
            assert resp.headers["Transfer-Encoding"] == "chunked"
            assert "Content-Length" not in resp.headers
            async for chunk in resp.content.iter_chunked(64 * 1024):
                chunks += 1
                data += chunk
                peak = max(peak, rss_kib(pid))
        growth_mib = (peak - before) / 1024
        print(
            f"{stack.backend} {fmt}: {len(data)} bytes, {chunks} chunks, RSS +{growth_mib:.1f} MiB"
        )
        assert chunks >= 10
        assert growth_mib < 0.5 * len(data) / 2**20 + 8, "the export was not streamed"
        if fmt == "jsonl":
            rows = [orjson.loads(line) for line in data.splitlines()]
            costs = [nusd(row["cost_usd"]) or 0 for row in rows]
        else:
            rows = list(csv.DictReader(io.StringIO(data.decode())))
            costs = [nusd(row["cost_usd"] or None) or 0 for row in rows]
            assert {row["end_user"] for row in rows} == {f'user,"{i}"' for i in range(5)}
        assert len(rows) == RECORDS
        assert sum(costs) == expected


async def test_no_secret_in_list_log_or_store(stack: Stack, http: aiohttp.ClientSession):
    async with http.post(
        stack.url + "/admin/v1/keys", json={"customer": "secretive"}, headers=ADMIN
    ) as resp:
        secret = (await resp.json())["key"]
        key_id = (await resp.json())["id"]
    async with http.post(
        f"{stack.url}/admin/v1/keys/{key_id}/rotate", json={"grace_s": 60}, headers=ADMIN
    ) as resp:
        rotated = (await resp.json())["key"]
    for key in (secret, rotated):
        async with http.post(
            stack.url + "/v1/chat/completions",
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]},
            headers={"Authorization": f"Bearer {key}"},
        ) as resp:
            assert resp.status == 200
    async with http.get(stack.url + "/admin/v1/keys?customer=secretive", headers=ADMIN) as resp:
        listed = await resp.text()
    await asyncio.sleep(0.2)
    if stack.backend == "sqlite":
        path = Path(stack_config(stack)[1]["store"]["sqlite_path"])
        stored = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    else:
        redis_url = stack_config(stack)[1]["store"]["redis_url"]
        port = redis_url.rsplit(":", 1)[1].split("/")[0]
        cli = ["redis-cli", "-p", port]
        subprocess.run(
            [*cli, "CONFIG", "SET", "rdbcompression", "no"], check=True, capture_output=True
        )
        subprocess.run([*cli, "SAVE"], check=True, capture_output=True)
        directory = subprocess.run(
            [*cli, "CONFIG", "GET", "dir"], check=True, capture_output=True, text=True
        ).stdout.split()[1]
        stored = (Path(directory) / "dump.rdb").read_bytes()
    assert key_id.encode() in stored  # the dump holds the keys …
    for key in (secret, rotated):  # … but not their secrets
        assert key.encode() not in stored
        assert key not in listed
        assert key not in stack.proxy.logs()


# The document and handlers are the same on both stores: one run suffices.
@pytest.mark.parametrize("stack", ["sqlite"], indirect=True)
async def test_schemathesis_finds_no_500_and_no_undocumented_status(stack: Stack):
    result = await asyncio.to_thread(
        subprocess.run,
        [
            str(Path(sys.executable).with_name("schemathesis")),
            "run",
            stack.url + "/admin/v1/openapi.json",
            "--header",
            f"Authorization: Bearer {ADMIN_TOKEN}",
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance",
            "--max-examples",
            "25",
            "--seed",
            "7",
            "--workers",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


def costproxy(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "proxy", *args],
        cwd=REPO,
        env={**os.environ, **ENV, "COSTPROXY_ADMIN_TOKEN": ADMIN_TOKEN},
        capture_output=True,
        text=True,
        timeout=60,
    )


# The CLI's two modes (over HTTP, straight from the store) do not depend on the backend.
@pytest.mark.parametrize("stack", ["sqlite"], indirect=True)
async def test_cli_keys_over_http_customers_and_export_straight_from_the_store(
    stack: Stack, http: aiohttp.ClientSession, tmp_path: Path
):
    config_path, _ = stack_config(stack)
    created = await asyncio.to_thread(
        costproxy, "keys", "create", "--url", stack.url, "--customer", "cli-co", "--rpm", "100"
    )
    assert created.returncode == 0, created.stderr
    key = orjson.loads(created.stdout)
    async with http.post(
        stack.url + "/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]},
        headers={"Authorization": f"Bearer {key['key']}"},
    ) as resp:
        assert resp.status == 200
    listed = await asyncio.to_thread(
        costproxy, "keys", "list", "--config", str(config_path), "--customer", "cli-co"
    )
    assert [k["id"] for k in orjson.loads(listed.stdout)["keys"]] == [key["id"]]
    assert key["key"] not in listed.stdout
    put = await asyncio.to_thread(
        costproxy, "customers", "put", "cli-co", "--config", str(config_path),
        "--name", "CLI Co", "--metadata", "plan=gold", "--tpm", "5000",
    )  # fmt: skip
    assert put.returncode == 0, put.stderr
    got = await asyncio.to_thread(costproxy, "customers", "get", "cli-co", "--url", stack.url)
    customer = orjson.loads(got.stdout)
    assert (customer["name"], customer["metadata"], customer["tpm"]) == (
        "CLI Co",
        {"plan": "gold"},
        5000,
    )
    assert customer["spend_this_month"]["requests"] == 1
    out = tmp_path / "usage.csv"
    exported = await asyncio.to_thread(
        costproxy, "export", "--config", str(config_path), "--customer", "cli-co",
        "--format", "csv", "--output", str(out),
    )  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(rows) == 1 and rows[0]["key_id"] == key["id"]
    assert rows[0]["cost_usd"] == customer["spend_this_month"]["cost_usd"]
    report = await asyncio.to_thread(
        costproxy, "report", "--config", str(config_path), "--customer", "cli-co",
        "--format", "csv",
    )  # fmt: skip
    cost = customer["spend_this_month"]["cost_usd"]
    assert report.stdout.splitlines()[1].startswith(f"{cost},{cost},1,")  # billable: no markup
    revoked = await asyncio.to_thread(costproxy, "keys", "revoke", key["id"], "--url", stack.url)
    assert revoked.returncode == 0, revoked.stderr
    again = await asyncio.to_thread(costproxy, "keys", "revoke", key["id"], "--url", stack.url)
    assert again.returncode == 1 and "No key" in again.stderr


async def test_admin_api_on_its_own_port(
    upstream: ServerProcess, tmp_path: Path, http: aiohttp.ClientSession
):
    admin_port = free_port()
    config = base_config(upstream.url, {"backend": "sqlite", "sqlite_path": str(tmp_path / "a.db")})
    config["admin"] = {**config["admin"], "host": "127.0.0.1", "port": admin_port}
    proxy = start_proxy(config, tmp_path, ENV)
    admin_url = f"http://127.0.0.1:{admin_port}"
    try:
        async with http.get(proxy.url + "/admin/v1/keys", headers=ADMIN) as resp:
            assert resp.status == 404
        async with http.get(admin_url + "/admin/v1/keys", headers=ADMIN) as resp:
            assert resp.status == 200
        async with http.post(
            admin_url + "/v1/chat/completions",
            json={"model": "gpt-4o-mini", "messages": []},
            headers={"Authorization": f"Bearer {ENV['T_ACME_KEY']}"},
        ) as resp:
            assert resp.status == 404
        # A customer key is never an admin token.
        async with http.get(
            admin_url + "/admin/v1/keys", headers={"Authorization": f"Bearer {ENV['T_ACME_KEY']}"}
        ) as resp:
            assert resp.status == 401
    finally:
        proxy.stop()
