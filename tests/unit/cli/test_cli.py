"""The `costproxy` command as a user runs it: check-config, quickstart, report."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest
from anthropic import Anthropic
from openai import OpenAI

from tests.support.procs import REPO, ServerProcess, costproxy, free_port


def test_check_config_accepts_the_shipped_example():
    env = {
        "PATH": "/usr/bin:/bin",
        "COSTPROXY_ADMIN_TOKEN": "x" * 20,
        "OPENAI_API_KEY": "sk-test",
        "ACME_KEY": "sk-acme",
        "BACKEND_KEY": "sk-backend",
    }
    result = costproxy("check-config", "config/costproxy.yaml", env=env)
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("providers: {}\nmodels: {}\n", "providers"),
        (
            "providers: {p: {base_url: 'http://x'}}\n"
            "models: {m: {targets: [{provider: q, model: m}]}}\n",
            "target provider 'q' is not defined",
        ),
        ("providers: {p: {base_url: '${NOPE_NOT_SET}'}}\nmodels: {}\n", "NOPE_NOT_SET is not set"),
        ("providers: [\n", "not valid YAML"),
        ("server: {port: 80, colour: red}\n", "server.colour"),
    ],
)
def test_check_config_rejects_and_names_the_problem(tmp_path: Path, text: str, message: str):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    result = costproxy("check-config", str(path))
    assert result.returncode == 1
    assert str(path) in result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_quickstart_serves_the_fake_upstream_and_report_prints_spend(tmp_path: Path):
    """The README's first-run path: no provider key → fake upstream; then a spend report."""
    port, fake_port = free_port(), free_port()
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "HOME": str(tmp_path)}
    config = str(REPO / "config/quickstart.yaml")
    server = ServerProcess(
        ["quickstart", "--config", config, "--port", str(port), "--fake-port", str(fake_port)],
        port=port,
        health_path="/healthz",
        env=env,
        cwd=tmp_path,  # ./data (store and admin token) lands here
    ).start()
    try:
        assert "routing the OpenAI models to the bundled fake upstream" in server.logs()
        assert "routing the Claude models to the bundled fake upstream" in server.logs()
        with OpenAI(base_url=server.url + "/v1", api_key="sk-demo-acme", max_retries=0) as client:
            reply = client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
            )
        assert reply.choices[0].message.content
        with Anthropic(base_url=server.url, api_key="sk-demo-acme", max_retries=0) as claude:
            message = claude.messages.create(
                model="claude-haiku-4-5",
                max_tokens=64,
                messages=[{"role": "user", "content": "hi"}],
            )
        assert message.content[0].text
        token = (tmp_path / "data" / "admin-token").read_text().strip()
        request = urllib.request.Request(
            server.url + "/admin/v1/spend?customer=acme",
            headers={"Authorization": f"Bearer {token}"},
        )
        with urllib.request.urlopen(request) as resp:
            assert b'"requests":2' in resp.read()
    finally:
        assert server.stop() == 0
    assert token not in server.logs()

    report = costproxy(
        "report", "--config", config, "--group-by", "customer,model",
        cwd=tmp_path, env={**env, "COSTPROXY_ADMIN_TOKEN": token},
    )  # fmt: skip
    assert report.returncode == 0, report.stderr
    lines = report.stdout.splitlines()
    assert lines[1].split() == ["customer", "model", "cost_usd", "billable_usd", "requests",
                                "unpriced_requests", "input_tokens", "cached_input_tokens",
                                "output_tokens", "reasoning_tokens"]  # fmt: skip
    acme = {row[1]: row for line in lines if (row := line.split())[0] == "acme"}
    assert acme["gpt-4o-mini"][4] == acme["claude-haiku-4-5"][4] == "1"
    # gpt-4o-mini from the catalogue (OpenAI's list price): $0.15 / $0.60 per 1M → 150 / 600
    # nano-dollars a token; no billing markup: billable = cost.
    nusd = reply.usage.prompt_tokens * 150 + reply.usage.completion_tokens * 600
    assert acme["gpt-4o-mini"][2] == acme["gpt-4o-mini"][3] == f"0.{nusd:09d}"
    # Claude Haiku 4.5 at Anthropic's list price, $1 / $5 per 1M: 1,000 / 5,000 a token.
    nusd = message.usage.input_tokens * 1000 + message.usage.output_tokens * 5000
    assert acme["claude-haiku-4-5"][2] == f"0.{nusd:09d}"
