"""docs/anthropic.md says what runs: every shell and Python block in it runs as written
against the quickstart config served in front of the fake upstream (its port replaces
8080; the store and `data/admin-token` are the test's own), and every config example is
a valid config that routes and prices as the page says."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from proxy.accounting.pricing import cost_nusd
from proxy.accounting.records import Usage
from proxy.config import parse_config
from proxy.state import build_snapshot
from tests.support.procs import REPO, ServerProcess, start_proxy
from tests.support.stack import ADMIN_TOKEN, ENV

DOC = (REPO / "docs" / "anthropic.md").read_text()
# (language, text) of every block that runs: none is marked `docs-test: skip` here.
BLOCKS = re.findall(r"```(sh|python)\n(.*?)```", DOC, re.DOTALL)
YAML = [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", DOC, re.DOTALL)]
DOCUMENTED_PORT = "127.0.0.1:8080"


@pytest.fixture(scope="module")
def served(
    upstream: ServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path]]:
    """The quickstart config with both APIs on the fake upstream: (address, its cwd)."""
    directory = tmp_path_factory.mktemp("docs-anthropic")
    (directory / "data").mkdir()
    (directory / "data" / "admin-token").write_text(ADMIN_TOKEN + "\n")
    (directory / "config").symlink_to(REPO / "config")
    config = yaml.safe_load((REPO / "config" / "quickstart.yaml").read_text())
    config["store"]["sqlite_path"] = str(directory / "data" / "costproxy.db")
    env = {
        **ENV,
        "COSTPROXY_ADMIN_TOKEN": ADMIN_TOKEN,
        "COSTPROXY_UPSTREAM_URL": upstream.url + "/v1",
        "COSTPROXY_ANTHROPIC_URL": upstream.url,
    }
    proxy = start_proxy(config, directory, env)
    try:
        yield proxy.url.removeprefix("http://"), directory
    finally:
        proxy.stop()


def test_the_page_has_its_blocks() -> None:
    assert "docs-test: skip" not in DOC
    assert [language for language, _ in BLOCKS] == ["python", "python", "sh", "sh", "sh"]
    assert len(YAML) == 2


def run(language: str, text: str, served: tuple[str, Path]) -> subprocess.CompletedProcess[str]:
    address, cwd = served
    text = text.replace(DOCUMENTED_PORT, address)
    venv_bin = str(Path(sys.executable).parent)  # python, costproxy
    env = {
        "PATH": os.pathsep.join([venv_bin, "/usr/bin", "/bin"]),
        "HOME": str(cwd),
        "PYTHONPATH": str(REPO),
    }
    command = (
        ["bash", "-c", f"set -euo pipefail\n{text}"]
        if language == "sh"
        else [
            sys.executable,
            "-c",
            text,
        ]
    )
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    ("language", "text"), BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))]
)
def test_every_block_runs_as_written(language: str, text: str, served: tuple[str, Path]) -> None:
    result = run(language, text, served)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() and "Traceback" not in result.stderr
    if "cache_control" in text:  # the manual is written once, then read
        (first, second) = [line.split() for line in result.stdout.strip().splitlines()]
        assert int(first[1]) > 0 and int(first[2]) == 0
        assert int(second[1]) == 0 and int(second[2]) == int(first[1])
        assert Decimal(second[0]) < Decimal(first[0])


def test_the_config_examples_route_and_price_as_written() -> None:
    base, prices = YAML
    config = parse_config(
        {**base, **prices, "admin": {"token": ADMIN_TOKEN}},
        env={"ANTHROPIC_API_KEY": "sk-ant-example"},
    )
    route = build_snapshot(config).routes["claude-sonnet-4-5"]
    assert route.api == "anthropic"
    sonnet, haiku = route.targets
    assert haiku.price is not None  # from the catalogue
    assert sonnet.price is not None
    usage = Usage(
        input_tokens=1_000_000 + 2_000_000 + 3_000_000 + 4_000_000,
        cached_input_tokens=2_000_000,
        cache_write_5m_tokens=3_000_000,
        cache_write_1h_tokens=4_000_000,
        output_tokens=1_000_000,
        web_search_requests=1000,
    )
    # $2.70 + 2 x $0.27 + 3 x $3.375 + 4 x $5.40 + $13.50 + 1,000 x $0.009, as written.
    assert cost_nusd(usage, sonnet.price, 0) == 2_700_000_000 + 540_000_000 + 10_125_000_000 + (
        21_600_000_000 + 13_500_000_000 + 9_000_000_000
    )
