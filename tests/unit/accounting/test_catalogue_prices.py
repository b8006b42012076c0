"""Catalogue prices, checked against genai-prices' own calculation (their Decimal result for
the same usage, rounded once to the nano-dollar, must equal ours) and, for a few, against
figures computed by hand from the providers' published price pages.

Every dimension and every tier boundary appears at least once: 53 cases, 36 catalogue models
of 13 providers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Context, Decimal, localcontext

import pytest
from genai_prices import Usage as CatalogueUsage
from genai_prices.data import providers
from genai_prices.data_snapshot import DataSnapshot

from proxy.accounting.config_prices import date_ms
from proxy.accounting.price_book import PriceBook, ResolvedPrice
from proxy.accounting.pricing import BATCH, STANDARD, PriceContext, cost_nusd
from proxy.accounting.records import Usage

# Our own snapshot of the bundled data: no process-global state, no auto-update.
LIBRARY = DataSnapshot(providers=providers, from_auto_update=False)
BOOK = PriceBook({})
NOON = datetime(2026, 12, 1, 12, tzinfo=UTC)


@dataclass(frozen=True)
class Case:
    namespace: str  # as a costproxy provider would be named
    model: str
    usage: Usage
    at: datetime = NOON
    context: PriceContext = STANDARD
    note: str = ""

    @property
    def id(self) -> str:
        return f"{self.namespace}/{self.model} {self.note}".strip()


def u(
    input: int = 0, cached: int = 0, output: int = 0, reasoning: int = 0, **parts: object
) -> Usage:
    return Usage(input, cached, output, reasoning, **parts)  # type: ignore[arg-type]


CASES = [
    # OpenAI: cache reads, web searches, service tiers (with their start date), batch, the
    # 272K tier of GPT-5.4, audio, image and reasoning tokens.
    Case("openai", "gpt-4o-2024-08-06", u(1000, 0, 100), note="dated snapshot"),
    Case("openai", "gpt-4o", u(1200, 1024, 300), note="cache read"),
    Case("openai", "gpt-4o", u(1200, 1024, 300, service_tier="priority"), note="priority"),
    Case(
        "openai",
        "gpt-4o",
        u(1200, 1024, 300, service_tier="priority"),
        at=datetime(2026, 10, 11, 23, 59, tzinfo=UTC),
        note="priority before its start date",
    ),
    Case("openai", "gpt-4o", u(1200, 1024, 300, service_tier="flex"), note="no flex price"),
    Case("openai", "gpt-4o", u(1200, 1024, 300), context=BATCH, note="batch"),
    Case("openai", "gpt-4o-mini", u(5000, 0, 800, web_search_requests=2), note="web search"),
    Case("openai", "gpt-5", u(10**6, 0, 10**6, 900_000, service_tier="flex"), note="flex"),
    Case("openai", "gpt-5", u(10**6, 200_000, 10**6, service_tier="priority"), note="priority"),
    Case("openai", "gpt-5-mini", u(40_000, 30_000, 2_000, 1_500), note="reasoning"),
    Case("openai", "gpt-5.4", u(272_000, 10_000, 1_000), note="272K: base"),
    Case("openai", "gpt-5.4", u(272_001, 10_000, 1_000), note="272K + 1: tier"),
    Case(
        "openai",
        "gpt-audio",
        u(2_000, 0, 1_500, input_audio_tokens=1_200, output_audio_tokens=1_000),
        note="audio in and out",
    ),
    Case(
        "openai",
        "gpt-4o-realtime-preview",
        u(3_000, 1_000, 700, output_audio_tokens=500),
        note="realtime audio out",
    ),
    Case(
        "openai",
        "gpt-image-1",
        u(1_500, 0, 4_160, input_image_tokens=1_000, output_image_tokens=4_160),
        note="image in and out",
    ),
    Case("openai", "o3", u(10_000, 0, 20_000, 18_000), note="o-series"),
    # Anthropic: 5-minute and 1-hour cache writes, cache reads, web searches, the 200K tier.
    Case("anthropic", "claude-sonnet-4-5-20250929", u(200_000, 0, 1_000), note="200K: base"),
    Case("anthropic", "claude-sonnet-4-5-20250929", u(200_001, 0, 1_000), note="200K + 1"),
    Case("anthropic", "claude-sonnet-4-5", u(200_001, 150_000, 1_000), note="tier by total"),
    Case(
        "anthropic",
        "claude-sonnet-4-5",
        u(
            3_050,
            2_000,
            300,
            cache_write_5m_tokens=600,
            cache_write_1h_tokens=400,
            web_search_requests=2,
        ),
        note="every input part",
    ),
    Case(
        "anthropic",
        "claude-sonnet-4-5",
        u(250_000, 0, 2_000, cache_write_5m_tokens=60_000, cache_write_1h_tokens=40_000),
        note="cache writes in the tier",
    ),
    Case(
        "anthropic",
        "claude-haiku-4-5-20251001",
        u(10_000, 0, 500, cache_write_1h_tokens=8_000),
        note="1h write",
    ),
    Case(
        "claude",
        "claude-opus-4-1-20250805",
        u(10_000, 4_000, 500, cache_write_5m_tokens=3_000),
        note="by alias",
    ),
    Case(
        "anthropic",
        "claude-sonnet-4-6",
        u(10_000, 0, 1_000),
        at=datetime(2026, 3, 12, 23, tzinfo=UTC),
        note="before a price change",
    ),
    Case(
        "anthropic",
        "claude-sonnet-4-6",
        u(10_000, 0, 1_000),
        at=datetime(2026, 3, 13, 0, tzinfo=UTC),
        note="from a price change",
    ),
    # Google: the 200K tier, audio input, cache reads, batch.
    Case("gemini", "gemini-2.5-pro", u(200_000, 0, 1_000), note="200K: base"),
    Case("gemini", "gemini-2.5-pro", u(200_001, 50_000, 1_000), note="200K + 1, cached"),
    Case("google", "gemini-2.5-pro", u(10**6, 0, 10**6), context=BATCH, note="batch"),
    Case(
        "google",
        "gemini-2.5-flash",
        u(10_000, 2_000, 700, input_audio_tokens=3_000),
        note="audio in",
    ),
    Case(
        "vertex",
        "gemini-2.0-flash",
        u(10_000, 0, 500, input_audio_tokens=9_000, web_search_requests=1),
        note="audio in, grounding",
    ),
    Case(
        "google",
        "gemini-2.5-flash-image",
        u(100, 0, 1_290, output_image_tokens=1_290),
        note="image out",
    ),
    # Groq, DeepSeek (peak and off-peak hours), Mistral, Together, xAI (a >= 200K tier
    # encoded as > 199,999), Perplexity (request fee, reasoning priced apart).
    Case("groq", "llama-3.3-70b-versatile", u(3_000, 0, 400)),
    Case("groq", "openai/gpt-oss-120b", u(3_000, 2_048, 400, 300), note="cached, reasoning"),
    Case("deepseek", "deepseek-chat", u(10**6, 100_000, 10**6), note="12:00 UTC"),
    Case(
        "deepseek",
        "deepseek-chat",
        u(10**6, 100_000, 10**6),
        at=datetime(2026, 12, 1, 0, 29, 59, tzinfo=UTC),
        note="00:29:59 UTC off-peak",
    ),
    Case(
        "deepseek",
        "deepseek-chat",
        u(10**6, 100_000, 10**6),
        at=datetime(2026, 12, 1, 16, 30, tzinfo=UTC),
        note="16:30 UTC off-peak",
    ),
    Case("deepseek", "deepseek-reasoner", u(5_000, 0, 9_000, 8_000)),
    Case("mistral", "mistral-large-latest", u(9_999, 0, 333)),
    Case("mistralai", "mistral-small-latest", u(9_999, 0, 333), context=BATCH, note="batch"),
    Case("together", "meta-llama/Llama-3.3-70B-Instruct-Turbo", u(1_234, 0, 567)),
    Case("together_ai", "deepseek-ai/DeepSeek-V4.1-Flash", u(50_000, 40_000, 2_000)),
    Case("xai", "grok-4.20", u(199_999, 0, 1_000), note="199,999: base"),
    Case("xai", "grok-4.20", u(200_000, 0, 1_000), note="200,000: tier"),
    Case("grok", "grok-3-mini", u(800, 0, 1_600, 1_400)),
    Case("perplexity", "sonar", u(1_000, 0, 1_000), note="request fee"),
    Case(
        "perplexity",
        "sonar-deep-research",
        u(30, 0, 5_000, 4_000, web_search_requests=7),
        note="reasoning priced apart, searches",
    ),
    # Aggregators and clouds: OpenRouter, Fireworks, Azure (OpenAI's models by fallback:
    # no service-tier prices, as the library), AWS Bedrock (regional +10%).
    Case("openrouter", "anthropic/claude-sonnet-4.5", u(200_001, 0, 100), note="tier"),
    Case("openrouter", "google/gemini-2.5-pro", u(5_000, 0, 100, cache_write_5m_tokens=4_000)),
    Case("fireworks", "accounts/fireworks/models/gpt-oss-120b", u(7_000, 6_000, 300)),
    Case("azure", "gpt-4o", u(1_000, 0, 100, service_tier="priority"), note="by fallback"),
    Case("azure_openai", "o3-2025-04-16", u(1_000, 500, 100)),
    Case(
        "bedrock",
        "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
        u(1_000, 100, 1_000, cache_write_5m_tokens=200),
    ),
    Case("aws", "amazon.nova-pro-v1:0", u(1_000, 0, 1_000)),
]


def their_usage(usage: Usage) -> CatalogueUsage:
    """Our usage in genai-prices' terms: totals including their parts, cache writes as a
    total with its 1-hour share, and the joins of parts stated empty (our parts are
    disjoint: a cache read is not also counted as an audio or image token)."""
    writes = usage.cache_write_5m_tokens + usage.cache_write_1h_tokens
    values = {
        "input_tokens": usage.input_tokens,
        "cache_read_tokens": usage.cached_input_tokens,
        "cache_write_tokens": writes,
        "cache_write_1h_tokens": usage.cache_write_1h_tokens,
        "input_audio_tokens": usage.input_audio_tokens,
        "input_image_tokens": usage.input_image_tokens,
        "cache_audio_read_tokens": 0,
        "cache_image_read_tokens": 0,
        "output_tokens": usage.output_tokens,
        "output_reasoning_tokens": usage.reasoning_tokens,
        "output_audio_tokens": usage.output_audio_tokens,
        "output_image_tokens": usage.output_image_tokens,
        "web_searches": usage.web_search_requests,
    }
    return CatalogueUsage(**{k: v for k, v in values.items() if v or k.startswith("cache_")})


def their_price_nusd(case: Case, provider_id: str) -> int:
    context = None
    if case.context.batch:
        context = {"processing": "batch"}
    elif case.usage.service_tier:
        context = {"service_tier": case.usage.service_tier}
    with localcontext(Context(prec=60)):
        usd = LIBRARY.calc(
            their_usage(case.usage), case.model, provider_id, None, case.at, context
        ).total_price
        nusd = (usd * 10**9).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
    return int(nusd)


def ours(case: Case) -> int:
    answer = BOOK.resolve(case.namespace, case.model)
    assert isinstance(answer, ResolvedPrice), answer
    when_ms = int(case.at.timestamp() * 1000)
    return cost_nusd(case.usage, answer.spec, when_ms, case.context)


def test_the_table_covers_enough_models_and_providers() -> None:
    keys = {BOOK.resolve(c.namespace, c.model).source.key for c in CASES}  # type: ignore[union-attr]
    assert len(keys) >= 20
    assert len({key.split("/")[0] for key in keys}) >= 6


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_our_cost_equals_the_library_rounded_once(case: Case) -> None:
    answer = BOOK.resolve(case.namespace, case.model)
    assert isinstance(answer, ResolvedPrice)
    assert answer.source.kind == "catalogue" and not answer.source.inexact
    assert answer.source.catalogue is not None
    assert ours(case) == their_price_nusd(case, answer.source.catalogue.provider_id)


# Figures computed by hand from the providers' published prices (USD per 1M tokens).
HAND = [
    # openai.com/api/pricing: gpt-4o $2.50 input, $1.25 cached input, $10 output.
    # 176 × 2.50 + 1,024 × 1.25 + 300 × 10 = 440 + 1,280 + 3,000 µ$
    (Case("openai", "gpt-4o", u(1200, 1024, 300)), 4_720_000),
    # docs.anthropic.com/en/docs/about-claude/pricing: Sonnet 4.5 $3 input, $3.75 5-minute
    # cache write, $6 1-hour cache write, $0.30 cache hit, $15 output; web search $10 per
    # 1,000. 50 × 3 + 600 × 3.75 + 400 × 6 + 2,000 × 0.30 + 300 × 15 = 9,900 µ$ + $0.02
    (
        Case(
            "anthropic",
            "claude-sonnet-4-5",
            u(
                3_050,
                2_000,
                300,
                cache_write_5m_tokens=600,
                cache_write_1h_tokens=400,
                web_search_requests=2,
            ),
        ),
        29_900_000,
    ),
    # Long context (same page): above 200K input tokens $6 input and $22.50 output, for the
    # whole request: 200,001 × 6 + 1,000 × 22.50 = 1,200,006 + 22,500 µ$
    (Case("anthropic", "claude-sonnet-4-5", u(200_001, 0, 1_000)), 1_222_506_000),
    # ai.google.dev/gemini-api/docs/pricing: Gemini 2.5 Pro $1.25 / $10 up to 200K prompt
    # tokens, $2.50 / $15 above: 200,001 × 2.50 + 1,000 × 15 = 500,002.5 + 15,000 µ$
    (Case("gemini", "gemini-2.5-pro", u(200_001, 0, 1_000)), 515_002_500),
    # platform.openai.com/docs/guides/flex-processing: gpt-5 flex at half price,
    # $0.625 input and $5 output: 1M each = $5.625
    (Case("openai", "gpt-5", u(10**6, 0, 10**6, service_tier="flex")), 5_625_000_000),
]


@pytest.mark.parametrize(("case", "nusd"), HAND, ids=[c.id for c, _ in HAND])
def test_hand_computed_figures_from_published_prices(case: Case, nusd: int) -> None:
    assert ours(case) == nusd


def test_a_price_with_more_decimals_than_a_femto_dollar_is_rounded_and_reported() -> None:
    # huggingface_together lists Qwen3-VL-8B input at 0.18000000000000002 $/M (a float
    # artefact): kept as 180,000,000 fUSD per token, and said so.
    answer = BOOK.resolve("huggingface_together", "Qwen/Qwen3-VL-8B-Instruct")
    assert isinstance(answer, ResolvedPrice)
    assert answer.spec.rates(date_ms(date(2026, 12, 1))).base.input == 180_000_000
    assert answer.source.inexact == ("input: 0.18000000000000002 -> 0.18",)
