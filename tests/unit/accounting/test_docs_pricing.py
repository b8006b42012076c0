"""docs/pricing.md's config examples are valid configs that price as the page says (its
shell commands run as written in tests/e2e/test_docs.py, with every docs page)."""

from __future__ import annotations

import re
from datetime import date

import yaml

from proxy.accounting.config_prices import date_ms
from proxy.accounting.pricing import cost_nusd
from proxy.accounting.records import Usage
from proxy.config import parse_config
from proxy.state import build_snapshot
from tests.support.procs import REPO

DOC = (REPO / "docs" / "pricing.md").read_text()
YAML = [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", DOC, re.DOTALL)]


def test_the_page_has_examples() -> None:
    assert len(YAML) == 3


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
