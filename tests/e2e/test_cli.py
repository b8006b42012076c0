"""The command line as a new user meets it: the quickstart and the commands run beside it,
busy ports, and where the admin token may go."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from aiohttp import web
from anthropic import Anthropic
from openai import OpenAI

from tests.support.procs import REPO, ServerProcess, costproxy, free_port

QUICKSTART = str(REPO / "config/quickstart.yaml")


def clean_env(home: Path) -> dict[str, str]:
    """The environment of a user who set nothing."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENAI_", "ANTHROPIC_", "COSTPROXY_"))
    }
    return {**env, "HOME": str(home), "PYTHONUNBUFFERED": "1"}


@pytest.fixture
def quickstart(tmp_path: Path) -> Iterator[ServerProcess]:
    port, fake_port = free_port(), free_port()
    server = ServerProcess(
        ["quickstart", "--config", QUICKSTART, "--port", str(port), "--fake-port", str(fake_port)],
        port=port,
        health_path="/healthz",
        env=clean_env(tmp_path),
        cwd=tmp_path,  # ./data (store, admin token, where it listens) lands here
    ).start()
    yield server
    server.stop()


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`costproxy ARGS` with nothing set, from `cwd`, as the README has the user type it."""
    return costproxy(*args, cwd=cwd, env=clean_env(cwd))


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def test_the_first_hour(quickstart: ServerProcess, tmp_path: Path):
    """Quickstart, a request, then a report, a budget, a key and an export with no flags
    at all; then the same report straight from the store once the quickstart stopped."""
    banner = quickstart.logs()
    assert f"listening on {quickstart.url}/v1" in banner
    assert "sk-demo-acme (customer acme)" in banner
    assert "admin token:  in data/admin-token" in banner
    token_file = tmp_path / "data" / "admin-token"
    assert f"export COSTPROXY_URL={quickstart.url} COSTPROXY_ADMIN_TOKEN=$(cat {token_file})" in (
        banner
    )
    for name in ("admin-token", "quickstart.json"):
        assert (tmp_path / "data" / name).stat().st_mode & 0o777 == 0o600

    with OpenAI(base_url=quickstart.url + "/v1", api_key="sk-demo-acme", max_retries=0) as client:
        reply = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
    # gpt-4o-mini from the catalogue (OpenAI's list price): $0.15 / $0.60 per 1M → 150 / 600
    # nano-dollars a token; no billing markup: billable = cost.
    nusd = reply.usage.prompt_tokens * 150 + reply.usage.completion_tokens * 600
    cost = f"0.{nusd:09d}"

    lines = ok(run(tmp_path, "report", "--group-by", "customer,model")).splitlines()
    assert lines[1].split()[:4] == ["customer", "model", "cost_usd", "billable_usd"]
    acme = next(line.split() for line in lines if line.startswith("acme"))
    assert acme[:5] == ["acme", "gpt-4o-mini", cost, cost, "1"]

    # A budget set mid-month counts what acme spent this month already.
    table = ok(run(tmp_path, "budgets", "set", "acme", "--monthly", "500", "--alert-at", "50,100"))
    row = table.splitlines()[2].split()
    assert row[:6] == ["customer/acme", "runtime", "monthly", "500.00", "True", "50,100"]
    assert row[6] == cost.rstrip("0")

    keys = orjson.loads(ok(run(tmp_path, "keys", "list")))["keys"]
    assert {(k["id"], k["source"]) for k in keys} >= {("demo-acme", "config")}
    assert all("sk-demo" not in orjson.dumps(k).decode() for k in keys)
    created = orjson.loads(ok(run(tmp_path, "keys", "create", "--customer", "acme")))
    revoked = ok(run(tmp_path, "keys", "revoke", created["id"]))
    assert revoked.startswith(f"revoked {created['id']}")
    customers = orjson.loads(ok(run(tmp_path, "customers", "list")))["customers"]
    acme_row = next(c for c in customers if c["id"] == "acme")
    assert acme_row["source"] == "config"
    assert acme_row["spend_this_month"]["cost_usd"] == cost

    ok(run(tmp_path, "export", "--customer", "acme", "--format", "csv", "-o", "acme.csv"))
    (record,) = csv.DictReader(io.StringIO((tmp_path / "acme.csv").read_text()))
    assert record["cost_usd"] == cost
    moment = datetime.fromtimestamp(int(record["ts_ms"]) // 1000, UTC)
    assert record["time"] == moment.strftime("%Y-%m-%dT%H:%M:%SZ")

    token = token_file.read_text().strip()
    assert quickstart.stop() == 0
    assert token not in quickstart.logs().split("admin token:")[0]
    after = ok(run(tmp_path, "report", "--group-by", "customer,model")).splitlines()
    assert next(line.split() for line in after if line.startswith("acme"))[:4] == acme[:4]


def test_the_quickstart_serves_claude_on_the_messages_api(
    quickstart: ServerProcess, tmp_path: Path
):
    """Without ANTHROPIC_API_KEY the Claude routes answer from the fake upstream's Messages
    API, billed at Anthropic's list price."""
    banner = quickstart.logs()
    assert "Claude:       the bundled fake upstream's Messages API at" in banner
    with Anthropic(base_url=quickstart.url, api_key="sk-demo-acme", max_retries=0) as claude:
        message = claude.messages.create(
            model="claude-haiku-4-5", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
        )
    assert message.content[0].text
    # Claude Haiku 4.5 at Anthropic's list price, $1 / $5 per 1M: 1,000 / 5,000 a token.
    nusd = message.usage.input_tokens * 1000 + message.usage.output_tokens * 5000
    lines = ok(run(tmp_path, "report", "--group-by", "customer,model")).splitlines()
    acme = next(line.split() for line in lines if line.startswith("acme"))
    assert acme[:5] == ["acme", "claude-haiku-4-5", f"0.{nusd:09d}", f"0.{nusd:09d}", "1"]


def test_commands_take_their_target_on_the_subcommand(quickstart: ServerProcess, tmp_path: Path):
    """--url with --admin-token-file, and COSTPROXY_URL with COSTPROXY_ADMIN_TOKEN, from a
    directory with no data/ of its own."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    token_file = str(tmp_path / "data" / "admin-token")
    by_flags = run(elsewhere, "budgets", "list", "--url", quickstart.url,
                   "--admin-token-file", token_file)  # fmt: skip
    assert "no budgets" in ok(by_flags)
    env = {**clean_env(elsewhere), "COSTPROXY_URL": quickstart.url + "/v1",
           "COSTPROXY_ADMIN_TOKEN": Path(token_file).read_text().strip()}  # fmt: skip
    by_env = costproxy("report", "--format", "json", cwd=elsewhere, env=env)
    assert orjson.loads(ok(by_env))["total"]["requests"] == 0
    nothing = run(elsewhere, "report")
    assert nothing.returncode == 1
    assert "give --url (or set COSTPROXY_URL)" in nothing.stderr


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["quickstart", "-c", QUICKSTART, "--port", "{busy}", "--fake-port", "{free}"], "--port"),
        (
            ["quickstart", "-c", QUICKSTART, "--port", "{free}", "--fake-port", "{busy}"],
            "--fake-port",
        ),
        (["mock-upstream", "--port", "{busy}"], "--port"),
    ],
)
def test_a_busy_port_is_one_line_and_exit_2(
    tmp_path: Path, busy_port: int, args: list[str], option: str
):
    argv = [a.format(busy=busy_port, free=free_port()) for a in args]
    result = run(tmp_path, *argv)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"costproxy: port {busy_port} on 127.0.0.1 is already in use (another costproxy, or "
        f"another server); stop it or choose another port with {option}"
    ]


def test_serve_on_a_busy_port_names_the_config_option(tmp_path: Path, busy_port: int):
    config = tmp_path / "c.yaml"
    config.write_text(
        f"server: {{port: {free_port()}}}\nadmin: {{port: {busy_port}}}\n"
        "providers: {p: {base_url: 'http://127.0.0.1:1/v1'}}\n"
        "models: {m: {targets: [{provider: p, model: m}]}}\n"
        f"store: {{sqlite_path: '{tmp_path}/c.db'}}\n"
    )
    result = run(tmp_path, "serve", "--config", str(config))
    assert result.returncode == 2
    assert "choose another port with admin.port in the config" in result.stderr
    assert "Traceback" not in result.stderr


async def serve(handler) -> tuple[web.AppRunner, int]:
    """`handler` for every GET path, on a free loopback port."""
    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, port


async def test_the_admin_token_never_follows_a_redirect(tmp_path: Path):
    """A proxy address that redirects elsewhere gets the token; the elsewhere never does."""
    seen: list[str | None] = []

    async def elsewhere(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization"))
        return web.json_response({"budgets": []})

    sink, sink_port = await serve(elsewhere)

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect(f"http://127.0.0.1:{sink_port}{request.path}")

    front, front_port = await serve(redirect)
    try:
        env = {**clean_env(tmp_path), "COSTPROXY_ADMIN_TOKEN": "secret-admin-token-xyz"}
        argv = [sys.executable, "-m", "proxy", "budgets", "list",
                "--url", f"http://127.0.0.1:{front_port}"]  # fmt: skip
        result = await asyncio.to_thread(
            subprocess.run, argv, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
    finally:
        await front.cleanup()
        await sink.cleanup()
    assert result.returncode == 1
    assert "does not follow redirects with the admin token" in result.stderr
    assert seen == []
