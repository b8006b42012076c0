"""What the reconciliation tests share: the admin keys of the fake report APIs, the config
of a provider's report, and the provider's view of traffic (what it billed)."""

from __future__ import annotations

from datetime import date
from typing import Any

from tests.support.report_api import ANTHROPIC_KEY, OPENAI_KEY, Billed, FakeReportAPI

__all__ = [
    "ADMIN_KEYS_ENV",
    "PRICES",
    "SNAPSHOTS",
    "anthropic_report",
    "billed",
    "billed_message",
    "openai_report",
]

# The admin keys, as the config names them (report.admin_key_env).
ADMIN_KEYS_ENV = {"T_OPENAI_ADMIN_KEY": OPENAI_KEY, "T_ANTHROPIC_ADMIN_KEY": ANTHROPIC_KEY}

# List prices in USD per 1M tokens, as both the proxy's config and the fake provider bill
# them (a test that changes the provider's price changes the fake's copy).
PRICES: dict[str, dict[str, str]] = {
    "gpt-4o-mini": {"input": "0.15", "cached_input": "0.075", "output": "0.6"},
    "text-embedding-3-small": {"input": "0.02", "output": "0"},
    "claude-sonnet-4-5": {"input": "3", "cached_input": "0.3", "output": "15"},
    "claude-haiku-4-5": {
        "input": "1",
        "cached_input": "0.1",
        "cache_write_5m": "1.25",
        "cache_write_1h": "2",
        "output": "5",
    },
    "gpt-4.1-nano": {"input": "0.1", "cached_input": "0.025", "output": "0.4"},
}
# The dated names the reports use for the names the config routes to.
SNAPSHOTS = {
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "claude-sonnet-4-5": "claude-sonnet-4-5-20250929",
    "claude-haiku-4-5": "claude-haiku-4-5-20251001",
    "gpt-4.1-nano": "gpt-4.1-nano-2025-04-14",
}


def openai_report(fake: FakeReportAPI, project: str = "proj_proxy") -> dict[str, Any]:
    return {
        "kind": "openai",
        "admin_key_env": "T_OPENAI_ADMIN_KEY",
        "base_url": fake.url + "/v1",
        "project_ids": [project],
    }


def anthropic_report(fake: FakeReportAPI, workspace: str = "proj_proxy") -> dict[str, Any]:
    return {
        "kind": "anthropic",
        "admin_key_env": "T_ANTHROPIC_ADMIN_KEY",
        "base_url": fake.url,
        "project_ids": [workspace],
    }


def billed(
    day: date,
    model: str,
    usage: Any,
    project: str = "proj_proxy",
    endpoint: str = "completions",
    provider: str = "openai",
) -> Billed:
    """What the provider bills for one answer, from the usage the answer carried (an
    `openai` SDK usage object: prompt_tokens include the cached ones)."""
    details = getattr(usage, "prompt_tokens_details", None)
    cached = (details.cached_tokens or 0) if details is not None else 0
    completion = getattr(usage, "completion_tokens", 0) or 0
    return Billed(
        day,
        model,
        requests=1,
        input_tokens=usage.prompt_tokens,
        cached_input_tokens=cached,
        output_tokens=completion,
        project_id=project,
        endpoint=endpoint,
        provider=provider,
    )


def billed_message(day: date, model: str, usage: Any, project: str) -> Billed:
    """What Anthropic bills for one Messages API answer, from the usage it carried (an
    `anthropic` SDK usage object: input_tokens exclude cache reads and writes)."""
    split = usage.cache_creation
    write_1h = split.ephemeral_1h_input_tokens if split is not None else 0
    writes = usage.cache_creation_input_tokens or 0
    read = usage.cache_read_input_tokens or 0
    return Billed(
        day,
        model,
        requests=1,
        input_tokens=usage.input_tokens + read + writes,
        cached_input_tokens=read,
        cache_write_5m_tokens=writes - write_1h,
        cache_write_1h_tokens=write_1h,
        output_tokens=usage.output_tokens,
        project_id=project,
        provider="anthropic",
    )
