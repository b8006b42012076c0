"""One proxied request as it happens, and the usage record it settles into."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

from proxy.access.auth import Attribution, Principal
from proxy.accounting import tokens
from proxy.accounting.billing import NO_MARKUP, Markup
from proxy.accounting.pricing import (
    FUSD_PER_NUSD,
    STANDARD,
    PriceContext,
    cost_fusd,
    round_half_even,
)
from proxy.accounting.records import Usage, UsageRecord
from proxy.accounting.stream_errors import StreamError
from proxy.accounting.whatif import what_if_costs
from proxy.apis.base import Api
from proxy.routing.routes import Route, Target

__all__ = ["Exchange", "settle"]


@dataclass(slots=True)
class Exchange:
    request_id: str
    ts_ms: int
    started: float  # time.perf_counter() at arrival
    endpoint: str
    api: Api  # the endpoint's: how its answers are read
    payload: dict
    principal: Principal
    attribution: Attribution
    route: Route
    target: Target  # the target of the latest attempt: the one that answered, in the end
    status: int = 0  # what the client got (499: it went away mid-stream)
    upstream_status: int = 0  # what the upstream answered; 0: no answer
    billed: bool = True  # False: the endpoint is free (count_tokens): recorded at zero
    query: str = ""  # the client's query string, for APIs that pass it upstream
    price_context: PriceContext = STANDARD  # what the price depends on besides usage
    usage: Usage | None = None  # as reported by the upstream
    partial_usage: Usage | None = None  # a stream's counts short of its final usage
    stream_error: StreamError | None = None  # the error event a 200 stream ended with
    answered_model: str | None = None  # the `model` the upstream's answer names
    service_tier: str | None = None  # the answer's, when it carried no usage
    completion_text: str = ""  # non-streaming: text to estimate from, when usage is missing
    stream_counter: tokens.TokenCounter | None = None  # streaming: the same, counted as it goes
    first_byte_at: float | None = None
    sent_bytes: int = 0  # body bytes written to the client (a reset may lose the last ones)
    upstream_wait_s: float = 0.0  # awaiting upstreams and backoffs: not the proxy's overhead
    failures: list[str] = field(default_factory=list)  # why each failed attempt failed
    attempts: int = 1
    markup: Markup = NO_MARKUP  # the customer's billing markup
    record: UsageRecord | None = None


def _estimate(ex: Exchange) -> Usage:
    model = ex.target.model
    if ex.stream_counter is not None:
        completion = ex.stream_counter.total()
    elif ex.completion_text:
        completion = tokens.count_text(model, ex.completion_text)
    else:
        completion = 0
    known = ex.partial_usage
    if known is not None:
        # The provider's own prompt counts (an Anthropic stream says them at its start);
        # only the output is counted from what was delivered.
        output = max(known.output_tokens, completion)
        return replace(known, output_tokens=output, reasoning_tokens=0, source="estimated")
    prompt = tokens.count_prompt(ex.endpoint, ex.payload, model)
    return Usage(
        input_tokens=prompt,
        output_tokens=completion,
        service_tier=ex.service_tier,
        source="estimated",
    )


def settle(ex: Exchange) -> UsageRecord:
    """The request's usage record, computed once (later calls return the same record).

    Usage comes from the upstream when it reported it; otherwise, if the upstream produced
    anything (a 2xx, unless its stream ended in an error the provider does not bill), it
    is counted with tiktoken; an error the upstream answered, no answer at all, or a
    request to a free endpoint (count_tokens) costs nothing. The cost is priced at the
    prices in force when the request arrived; what the customer is charged (billable)
    from the same exact figure.
    """
    if ex.record is not None:
        return ex.record
    billable = 200 <= ex.upstream_status < 300 and (
        ex.stream_error is None or ex.stream_error.billed
    )
    charged = ex.billed and (ex.usage is not None or billable)
    if not charged:
        usage = Usage(service_tier=ex.service_tier)
    elif ex.usage is not None:
        usage = ex.usage
    else:
        usage = _estimate(ex)
    price = ex.target.price
    cost: int | None = 0
    charge: int | None = 0
    if not charged:
        pass
    elif price is None:
        cost = charge = None
    else:
        fusd = cost_fusd(usage, price, ex.ts_ms, ex.price_context)
        cost = round_half_even(fusd, FUSD_PER_NUSD)
        charge = ex.markup.billable_nusd(fusd)
    now = time.perf_counter()
    ex.record = UsageRecord(
        request_id=ex.request_id,
        ts_ms=ex.ts_ms,
        customer=ex.attribution.customer,
        route=ex.route.name,
        provider=ex.target.provider.name,
        model=ex.target.model,
        endpoint=ex.endpoint,
        status=ex.status,
        input_tokens=usage.input_tokens,
        cached_input_tokens=usage.cached_input_tokens,
        output_tokens=usage.output_tokens,
        reasoning_tokens=usage.reasoning_tokens,
        cost_nusd=cost,
        usage_source=usage.source,
        end_user=ex.attribution.end_user,
        tags=ex.attribution.tags,
        key_id=ex.principal.key_id,
        latency_ms=round((now - ex.started) * 1000, 3),
        ttft_ms=None
        if ex.first_byte_at is None
        else round((ex.first_byte_at - ex.started) * 1000, 3),
        attempts=ex.attempts,
        what_if=what_if_costs(usage, ex.target.what_if, ex.ts_ms, ex.price_context),
        cache_write_5m_tokens=usage.cache_write_5m_tokens,
        cache_write_1h_tokens=usage.cache_write_1h_tokens,
        input_audio_tokens=usage.input_audio_tokens,
        input_image_tokens=usage.input_image_tokens,
        output_audio_tokens=usage.output_audio_tokens,
        output_image_tokens=usage.output_image_tokens,
        web_search_requests=usage.web_search_requests,
        service_tier=usage.service_tier,
        provider_cost_nusd=usage.provider_cost_nusd,
        billable_nusd=charge,
    )
    return ex.record
