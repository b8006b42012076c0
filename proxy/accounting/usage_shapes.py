"""A provider's usage object, whatever its shape, as what the provider bills. Pure: no I/O.

The target is OpenAI's meaning of the counts (see `Usage`): input holds every prompt
token, output every token billed as output. Each rule below names the providers whose
responses need it; `docs/usage.md` lists them with the recordings that test them.
Every rule is written so that a usage object that does not have its shape is left as
OpenAI would mean it: a rule applies only when the numbers themselves show it must.

1. Both OpenAI shapes: `prompt_tokens`/`completion_tokens` with `*_tokens_details`
   (chat, completions, embeddings) and `input_tokens`/`output_tokens` (Responses).
2. Embeddings with `total_tokens` only (Voyage AI): all of it is input.
3. Cache hits under DeepSeek's names (`prompt_cache_hit_tokens`/`_miss_tokens`;
   DeepSeek, SiliconFlow), and `cached_tokens` at the top level (Together via the
   Hugging Face router).
4. Cache writes: `cache_write_tokens` in the input details (OpenRouter, OpenAI),
   `cache_creation_tokens` there (LiteLLM), `cache_creation_input_tokens` at the top
   level with `cache_creation.ephemeral_{5m,1h}_input_tokens` (Anthropic's fields as
   gateways pass them on). A write without a lifetime counts as a 5-minute write.
5. Tokens outside the counts, told by `total_tokens`: when the total exceeds prompt +
   completion, the excess is
   - cache reads and writes under Anthropic's names, when it equals them (Anthropic's
     `input_tokens` excludes the cache; gateways passing it on as `prompt_tokens`);
   - otherwise output the provider bills: reasoning outside `completion_tokens` (xAI
     chat: completion 1, reasoning 228, total 241) or thinking that appears in the total
     alone (Gemini's OpenAI-compatible endpoint: 35 + 12 < 109).
   OpenAI's own totals are always prompt + completion, so the rule never fires there;
   without a total nothing is moved (parts larger than their count are clamped to it).
6. Audio and image parts (`audio_tokens`, `image_tokens` in either details object).
7. The provider's own cost, `usage.cost` (OpenRouter), to the nano-dollar.
8. The response's `service_tier`.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any

from proxy.accounting.records import Usage

__all__ = ["cost_to_nusd", "normalise_usage"]

_NANO = Decimal(1_000_000_000)
_SERVICE_TIER_MAX = 64  # a label, not a document: longer values are not a tier name


def _int(value: Any) -> int | None:
    # `type(...) is int`: a bool is an int subclass, and a "true" token count is garbage.
    return value if type(value) is int and value >= 0 else None


def _dict(value: Any) -> Mapping[str, Any]:
    return value if type(value) is dict else _EMPTY


_EMPTY: Mapping[str, Any] = MappingProxyType({})


def _first(*values: Any) -> int | None:
    for value in values:
        if type(value) is int and value >= 0:
            return value
    return None


def cost_to_nusd(value: Any) -> int | None:
    """A provider's cost in USD (a JSON number or decimal string) → nano-dollars.

    A JSON number arrives as a float; its shortest repr is the decimal the provider
    wrote (a provider serialising a double writes exactly that repr), so no binary
    rounding enters. More than 9 decimals are rounded once, half to even.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        amount = Decimal(repr(value) if isinstance(value, float) else value)
    except InvalidOperation:
        return None
    if not amount.is_finite() or amount < 0:
        return None
    return int((amount * _NANO).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def _service_tier(value: Any) -> str | None:
    if isinstance(value, str) and 0 < len(value) <= _SERVICE_TIER_MAX:
        return value
    return None


def normalise_usage(usage: Any, endpoint: str, service_tier: Any = None) -> Usage | None:
    """A usage object → Usage, or None when it holds no usable input count (the caller
    then estimates: a missing count is never billed as zero)."""
    if type(usage) is not dict:
        return None
    get = usage.get
    if "input_tokens" in usage or "output_tokens" in usage:  # the Responses shape
        prompt = _int(get("input_tokens"))
        completion = _int(get("output_tokens", 0))
        inputs = _dict(get("input_tokens_details"))
        outputs = _dict(get("output_tokens_details"))
    else:
        prompt = _int(get("prompt_tokens"))
        # Embeddings report no completion tokens at all: that is 0, not unknown.
        completion = _int(get("completion_tokens", 0))
        inputs = _dict(get("prompt_tokens_details"))
        outputs = _dict(get("completion_tokens_details"))
    total = _int(get("total_tokens"))
    hits = _int(get("prompt_cache_hit_tokens"))
    if prompt is None and hits is not None:
        misses = _int(get("prompt_cache_miss_tokens"))
        prompt = None if misses is None else hits + misses
    if prompt is None and endpoint == "embeddings" and "completion_tokens" not in usage:
        prompt, total = total, None  # Voyage AI: {"total_tokens": N}, all of it input
    if prompt is None or completion is None:
        return None

    cache_read = _int(get("cache_read_input_tokens")) or 0
    cache_creation = _int(get("cache_creation_input_tokens")) or 0
    cached = _first(inputs.get("cached_tokens"), hits, get("cached_tokens"), cache_read) or 0
    writes = (
        _first(inputs.get("cache_write_tokens"), inputs.get("cache_creation_tokens"))
        or cache_creation
    )
    reasoning = _int(outputs.get("reasoning_tokens")) or 0

    # Rule 5: what the total says lies outside the prompt and completion counts.
    anthropic_cache = cache_read + cache_creation
    excess = None if total is None else total - prompt - completion
    if excess is not None and excess > 0:
        if anthropic_cache and excess in (anthropic_cache, anthropic_cache + reasoning):
            prompt += anthropic_cache
            excess -= anthropic_cache
        if excess > 0:
            completion += excess
            if excess != reasoning:
                reasoning += excess

    cached = min(cached, prompt)
    writes = min(writes, prompt - cached)
    write_1h = 0
    if writes and "cache_creation" in usage:
        write_1h = min(
            _int(_dict(get("cache_creation")).get("ephemeral_1h_input_tokens")) or 0, writes
        )
    return Usage(
        input_tokens=prompt,
        cached_input_tokens=cached,
        output_tokens=completion,
        reasoning_tokens=min(reasoning, completion),
        cache_write_5m_tokens=writes - write_1h,
        cache_write_1h_tokens=write_1h,
        input_audio_tokens=min(_int(inputs.get("audio_tokens")) or 0, prompt),
        input_image_tokens=min(_int(inputs.get("image_tokens")) or 0, prompt),
        output_audio_tokens=min(_int(outputs.get("audio_tokens")) or 0, completion),
        output_image_tokens=min(_int(outputs.get("image_tokens")) or 0, completion),
        service_tier=_service_tier(service_tier),
        provider_cost_nusd=cost_to_nusd(get("cost")) if "cost" in usage else None,
    )
