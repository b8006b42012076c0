"""accounting.usage_shapes: one table per rule, each row a shape a provider sends (the
recordings that show each shape in full: test_recordings.py), and rows of providers
that do not follow the shape, which the rule must leave alone."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.accounting.records import Usage
from proxy.accounting.usage_shapes import cost_to_nusd, normalise_usage


def chat(prompt: int, completion: int, total: int | None = None, **extra: Any) -> dict:
    usage: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion, **extra}
    if total is not None:
        usage["total_tokens"] = total
    return usage


# Rule 5: tokens outside the prompt and completion counts, told by the total.
@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        pytest.param(
            chat(12, 1, 241, completion_tokens_details={"reasoning_tokens": 228}),
            Usage(12, 0, 229, 228),
            id="xai-reasoning-outside-completion",
        ),
        pytest.param(
            chat(21, 0, 81, completion_tokens_details={"reasoning_tokens": 60}),
            Usage(21, 0, 60, 60),
            id="gateway-gemini-thoughts-only-in-reasoning",
        ),
        pytest.param(chat(35, 12, 109), Usage(35, 0, 74, 62), id="gemini-thinking-only-in-total"),
        pytest.param(
            chat(35, 30, 109, completion_tokens_details={"reasoning_tokens": 20}),
            Usage(35, 0, 74, 64),
            id="hidden-output-beside-reported-reasoning",
        ),
        pytest.param(
            chat(100, 20, 270, cache_read_input_tokens=50, cache_creation_input_tokens=100),
            Usage(250, 50, 20, 0, cache_write_5m_tokens=100),
            id="anthropic-fields-prompt-excludes-cache",
        ),
        pytest.param(
            chat(250, 20, 270, cache_read_input_tokens=50, cache_creation_input_tokens=100),
            Usage(250, 50, 20, 0, cache_write_5m_tokens=100),
            id="anthropic-fields-prompt-includes-cache",
        ),
        pytest.param(
            chat(
                100,
                20,
                280,
                cache_read_input_tokens=50,
                cache_creation_input_tokens=100,
                completion_tokens_details={"reasoning_tokens": 10},
            ),
            Usage(250, 50, 30, 10, cache_write_5m_tokens=100),
            id="anthropic-fields-and-reasoning-outside",
        ),
        pytest.param(
            chat(
                100,
                20,
                270,
                cache_read_input_tokens=0,
                cache_creation_input_tokens=150,
                cache_creation={"ephemeral_5m_input_tokens": 50, "ephemeral_1h_input_tokens": 100},
            ),
            Usage(250, 0, 20, 0, cache_write_5m_tokens=50, cache_write_1h_tokens=100),
            id="anthropic-cache-lifetimes",
        ),
        # Providers that do not have the shape: nothing moves.
        pytest.param(
            chat(8, 82, 90, completion_tokens_details={"reasoning_tokens": 64}),
            Usage(8, 0, 82, 64),
            id="openai-reasoning-inside-completion",
        ),
        pytest.param(chat(10, 5, 12), Usage(10, 0, 5, 0), id="total-below-the-counts-is-ignored"),
        pytest.param(
            chat(10, 5, completion_tokens_details={"reasoning_tokens": 9}),
            Usage(10, 0, 5, 5),
            id="without-a-total-nothing-moves",
        ),
        pytest.param(
            {
                "input_tokens": 1941,
                "output_tokens": 583,
                "total_tokens": 2524,
                "output_tokens_details": {"reasoning_tokens": 380},
            },
            Usage(1941, 0, 583, 380),
            id="responses-shape-total-matches",
        ),
    ],
)
def test_tokens_outside_the_counts(usage: dict, expected: Usage) -> None:
    assert normalise_usage(usage, "chat.completions") == expected


# Rules 2 and 3: where input and cached input hide.
@pytest.mark.parametrize(
    ("usage", "endpoint", "expected"),
    [
        pytest.param({"total_tokens": 3}, "embeddings", Usage(3), id="voyage-total-only"),
        pytest.param({"total_tokens": 3}, "chat.completions", None, id="total-only-chat-unknown"),
        pytest.param(
            {"prompt_tokens": 4, "total_tokens": 4}, "embeddings", Usage(4), id="openai-embeddings"
        ),
        pytest.param(
            chat(563, 116, 679, prompt_cache_hit_tokens=512, prompt_cache_miss_tokens=51),
            "chat.completions",
            Usage(563, 512, 116, 0),
            id="deepseek-hit-miss",
        ),
        pytest.param(
            {"completion_tokens": 8, "prompt_cache_hit_tokens": 2, "prompt_cache_miss_tokens": 8},
            "chat.completions",
            Usage(10, 2, 8, 0),
            id="deepseek-hit-miss-without-prompt-tokens",
        ),
        pytest.param(
            chat(20, 5, prompt_tokens_details={"cached_tokens": 6}, prompt_cache_hit_tokens=6),
            "chat.completions",
            Usage(20, 6, 5, 0),
            id="deepseek-mirrors-details",
        ),
        pytest.param(
            chat(4, 197, 201, cached_tokens=2),
            "chat.completions",
            Usage(4, 2, 197, 0),
            id="top-level-cached-tokens",
        ),
        pytest.param(
            chat(3214, 100, prompt_tokens_details={"cache_write_tokens": 3211, "cached_tokens": 0}),
            "chat.completions",
            Usage(3214, 0, 100, 0, cache_write_5m_tokens=3211),
            id="openrouter-cache-write",
        ),
        pytest.param(
            chat(
                3329, 53, prompt_tokens_details={"cache_write_tokens": 115, "cached_tokens": 3211}
            ),
            "chat.completions",
            Usage(3329, 3211, 53, 0, cache_write_5m_tokens=115),
            id="openrouter-cache-read-and-write",
        ),
        pytest.param(
            chat(10, 1, prompt_tokens_details={"cache_creation_tokens": 7}),
            "chat.completions",
            Usage(10, 0, 1, 0, cache_write_5m_tokens=7),
            id="litellm-cache-creation-tokens",
        ),
        pytest.param(
            {
                "input_tokens": 4020,
                "output_tokens": 5,
                "input_tokens_details": {"cache_write_tokens": 4012, "cached_tokens": 0},
            },
            "responses",
            Usage(4020, 0, 5, 0, cache_write_5m_tokens=4012),
            id="responses-cache-write",
        ),
        pytest.param(
            chat(10, 1, prompt_tokens_details={"cache_write_tokens": 9, "cached_tokens": 8}),
            "chat.completions",
            Usage(10, 8, 1, 0, cache_write_5m_tokens=2),
            id="writes-clamped-to-what-reads-leave",
        ),
    ],
)
def test_input_and_cache_counts(usage: dict, endpoint: str, expected: Usage | None) -> None:
    assert normalise_usage(usage, endpoint) == expected


# Rule 6: audio and image parts.
@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        pytest.param(
            chat(64, 9, 73, prompt_tokens_details={"audio_tokens": 44, "cached_tokens": 0}),
            Usage(64, 0, 9, 0, input_audio_tokens=44),
            id="openai-audio-in",
        ),
        pytest.param(
            chat(20, 300, 320, completion_tokens_details={"audio_tokens": 280}),
            Usage(20, 0, 300, 0, output_audio_tokens=280),
            id="openai-audio-out",
        ),
        pytest.param(
            chat(900, 10, 910, prompt_tokens_details={"image_tokens": 765}),
            Usage(900, 0, 10, 0, input_image_tokens=765),
            id="xai-image-in",
        ),
        pytest.param(
            chat(5, 1300, 1305, completion_tokens_details={"image_tokens": 1290}),
            Usage(5, 0, 1300, 0, output_image_tokens=1290),
            id="openrouter-image-out",
        ),
        pytest.param(
            chat(5, 2, 7, prompt_tokens_details={"audio_tokens": 50, "image_tokens": True}),
            Usage(5, 0, 2, 0, input_audio_tokens=5),
            id="parts-clamped-garbage-ignored",
        ),
    ],
)
def test_audio_and_image_parts(usage: dict, expected: Usage) -> None:
    assert normalise_usage(usage, "chat.completions") == expected


# Rules 7 and 8: the provider's own cost, the service tier.
@pytest.mark.parametrize(
    ("value", "nusd"),
    [
        pytest.param(0.00219855, 2_198_550, id="openrouter-cost"),
        pytest.param(1.13e-05, 11_300, id="exponent-notation"),
        pytest.param(0, 0, id="byok-zero"),
        pytest.param("0.00183", 1_830_000, id="decimal-string"),
        pytest.param(12.5, 12_500_000_000, id="dollars"),
        pytest.param(0.0000000125, 12, id="ten-decimals-half-to-even-down"),
        pytest.param(0.0000000135, 14, id="ten-decimals-half-to-even-up"),
        pytest.param("0.0000000015", 2, id="string-half-to-even-up"),
        pytest.param(-0.5, None, id="negative"),
        pytest.param(True, None, id="bool"),
        pytest.param("n/a", None, id="not-a-number"),
        pytest.param("NaN", None, id="nan"),
        pytest.param(None, None, id="null"),
        pytest.param({"usd": 1}, None, id="object"),
    ],
)
def test_cost_to_nusd(value: Any, nusd: int | None) -> None:
    assert cost_to_nusd(value) == nusd


def test_cost_and_tier_reach_the_usage() -> None:
    usage = normalise_usage(chat(550, 12, 562, cost=0.00183), "chat.completions", "priority")
    assert usage == Usage(550, 0, 12, 0, service_tier="priority", provider_cost_nusd=1_830_000)
    assert normalise_usage(chat(1, 1), "chat.completions").provider_cost_nusd is None


@pytest.mark.parametrize("tier", [None, 3, "", "x" * 65, ["default"]])
def test_a_tier_that_is_not_a_name_is_dropped(tier: Any) -> None:
    assert normalise_usage(chat(1, 1), "chat.completions", tier).service_tier is None
