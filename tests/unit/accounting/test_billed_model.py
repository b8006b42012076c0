"""accounting.billed_model: dated snapshots of the billed model match; other models do not."""

from __future__ import annotations

import pytest

from proxy.accounting.billed_model import answered_as_billed


@pytest.mark.parametrize(
    ("billed", "answered"),
    [
        ("gpt-4o", "gpt-4o"),
        ("gpt-4o", "gpt-4o-2024-08-06"),
        ("gpt-4o-mini", "gpt-4o-mini-2024-07-18"),
        ("gpt-4", "gpt-4-0613"),
        ("gpt-3.5-turbo-instruct", "gpt-3.5-turbo-instruct:20230824-v2"),  # recorded
        ("gpt-4.1-nano", "gpt-4.1-nano-2025-04-14"),  # recorded
        ("claude-3-5-sonnet", "claude-3-5-sonnet-20241022"),
        ("claude-sonnet-4", "claude-sonnet-4@20250514"),
        ("gemini-1.5-pro", "gemini-1.5-pro-002"),
        ("GPT-4o", "gpt-4o-2024-08-06"),
        ("gpt-4o", None),
        ("gpt-4o", ""),
    ],
)
def test_snapshots_of_the_billed_model_match(billed: str, answered: str | None) -> None:
    assert answered_as_billed(billed, billed, answered)


@pytest.mark.parametrize(
    ("billed", "answered"),
    [
        ("gpt-4.1-nano", "gpt-4.1"),  # the duplicate-key attack served the expensive one
        ("gpt-4o", "gpt-4o-mini"),
        ("gpt-4o", "gpt-4o-mini-2024-07-18"),
        ("gpt-4", "gpt-4o"),
        ("gpt-4o", "gpt-4o-audio-preview-2024-12-17"),
        ("anthropic/claude-sonnet-4.6", "anthropic/claude-4.6-sonnet-20260217"),  # recorded
    ],
)
def test_other_models_do_not(billed: str, answered: str) -> None:
    assert not answered_as_billed(billed, billed, answered)


def test_the_wire_name_of_a_deployment_matches() -> None:
    assert answered_as_billed("gpt-4o", "prod-gpt4o", "prod-gpt4o")
    assert answered_as_billed("gpt-4o", "prod-gpt4o", "gpt-4o-2024-11-20")
