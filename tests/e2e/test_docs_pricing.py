"""docs/pricing.md says what runs: every shell command in it runs as written (the ones that
ask a running proxy, against a proxy served for this test: its port replaces 8080), and
every config example is a valid config that prices as the page says."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import yaml

from proxy.accounting.config_prices import date_ms
from proxy.accounting.pricing import cost_nusd
from proxy.accounting.records import Usage
from proxy.config import parse_config
from proxy.state import build_snapshot
from tests.support.procs import REPO, ServerProcess, start_proxy
from tests.support.stack import ADMIN_TOKEN, ENV

DOC = (REPO / "docs" / "pricing.md").read_text()
SHELL = [
    line
    for block in re.findall(r"```sh\n(.*?)```", DOC, re.DOTALL)
    for line in block.splitlines()
    if line.strip()
]
YAML = [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", DOC, re.DOTALL)]
DOCUMENTED_PORT = "127.0.0.1:8080"


@pytest.fixture(scope="module")
def served(upstream: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The quickstart config, served against the fake upstream; its URL."""
    directory = tmp_path_factory.mktemp("docs-pricing")
    config = yaml.safe_load((REPO / "config" / "quickstart.yaml").read_text())
    config["store"]["sqlite_path"] = str(directory / "costproxy.db")
    env = {**ENV, "COSTPROXY_ADMIN_TOKEN": ADMIN_TOKEN,
           "COSTPROXY_UPSTREAM_URL": upstream.url + "/v1"}  # fmt: skip
    proxy = start_proxy(config, directory, env)
    try:
        yield proxy.url.removeprefix("http://")
    finally:
        proxy.stop()


def test_the_page_has_commands_and_examples() -> None:
    assert len(SHELL) >= 7 and len(YAML) == 3


@pytest.mark.parametrize("command", SHELL)
def test_every_command_runs_as_written(command: str, served: str, tmp_path: Path) -> None:
    # From a checkout: config/ as in the repository, data/ (the store) of the test's own.
    (tmp_path / "config").symlink_to(REPO / "config")
    env = {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"]),
        "HOME": str(tmp_path),
        "PYTHONPATH": str(REPO),
        "COSTPROXY_ADMIN_TOKEN": ADMIN_TOKEN,
    }
    result = subprocess.run(
        ["bash", "-c", f"set -euo pipefail; {command.replace(DOCUMENTED_PORT, served)}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip()
    assert "Traceback" not in result.stderr


def test_the_override_example_prices_as_written() -> None:
    example = YAML[0]
    config = parse_config(
        {
            "providers": {
                "openai": {"base_url": "https://api.openai.com/v1"},
                "local": {"base_url": "http://127.0.0.1:9/v1"},
            },
            "models": {
                "gpt-4.1": {"targets": [{"provider": "openai", "model": "gpt-4.1-2025-04-14"}]},
                "llama": {"targets": [{"provider": "local", "model": "llama-3.3-70b"}]},
            },
            **example,
        },
        env={},
    )
    routes = build_snapshot(config).routes
    gpt, llama = routes["gpt-4.1"].targets[0].price, routes["llama"].targets[0].price
    assert gpt is not None and llama is not None
    usage = Usage(100_000, 20_000, 100_000)
    before, after = date_ms(date(2026, 12, 31)), date_ms(date(2027, 1, 1))
    # 80k × $2 + 20k × $0.50 + 100k × $8; from 2027: × $1.60, $0.40, $6.40
    assert cost_nusd(usage, gpt, before) == 970_000_000
    assert cost_nusd(usage, gpt, after) == 776_000_000
    assert cost_nusd(Usage(1000, 0, 0, web_search_requests=2), gpt, after) == 21_600_000
    long = Usage(200_001, 0, 1_000)  # every token at the tier: 200,001 × $3.20 + 1,000 × $9.60
    assert cost_nusd(long, gpt, after) == 649_603_200
    # flex names its own input and output prices: flat, whatever the prompt's size
    flex = Usage(1_000_000, 0, 1_000_000, service_tier="flex")
    assert cost_nusd(flex, gpt, after) == 4_000_000_000
    assert cost_nusd(usage, llama, after) == 0


def test_the_budgeting_and_billing_examples_are_valid() -> None:
    base = {
        "providers": {"p": {"base_url": "http://127.0.0.1:9/v1"}},
        "models": {"m": {"targets": [{"provider": "p", "model": "m"}]}},
    }
    assert parse_config({**base, **YAML[1]}, env={}).budgeting.unpriced == "allow"
    billing = parse_config({**base, **YAML[2]}, env={})
    assert str(billing.billing.markup_pct) == "20"
    acme = billing.customers["acme"].billing
    assert acme is not None and str(acme.per_request_usd) == "0.0005"
