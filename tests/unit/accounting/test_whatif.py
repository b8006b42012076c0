"""What-if rules and costs: figures computed independently, from the price literals."""

from __future__ import annotations

from datetime import date
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.accounting.config_prices import config_spec
from proxy.accounting.records import Totals, Usage, WhatIfRow
from proxy.accounting.spend import SpendQuery, SpendQueryError, summarize_what_if
from proxy.accounting.whatif import alternatives_for, parse_rule, resolve_rules, what_if_costs
from proxy.config import PriceConfig
from tests.support.prices import spec, specs

LITERALS = {
    "ai21/jamba-large": ("2.00", "2.00", "8.00"),
    "deepseek/deepseek-chat": ("0.28", "0.028", "0.42"),
    "odd/model": ("0.000333", "0.0001", "0.000777"),
}
TABLE = specs(LITERALS)
NOW = 1_796_126_400_000  # 2026-12-01T12:00Z


def price_of(namespace: str, model: str):
    return TABLE.get(f"{namespace}/{model}")


def expected(key: str, usage: Usage) -> int:
    i, c, o = (Fraction(p) for p in LITERALS[key])
    cached = min(usage.cached_input_tokens, usage.input_tokens)
    usd_times_million = (usage.input_tokens - cached) * i + cached * c + usage.output_tokens * o
    return round(usd_times_million * 1000)  # half to even, once


@pytest.mark.parametrize(
    ("rule", "parsed"),
    [
        ("openai/gpt-4o -> ai21/jamba-large", ("openai/gpt-4o", "ai21/jamba-large")),
        ("  openai/gpt-4o->ai21/jamba-large ", ("openai/gpt-4o", "ai21/jamba-large")),
        ("* -> deepseek/deepseek-chat", ("*", "deepseek/deepseek-chat")),
        ("together/meta-llama/L -> a/b", ("together/meta-llama/L", "a/b")),
    ],
)
def test_parse_rule(rule: str, parsed: tuple[str, str]) -> None:
    assert parse_rule(rule) == parsed


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        (["openai/gpt-4o ai21/jamba-large"], r"what_if\[0\]: .* is not 'provider/model"),
        (["gpt-4o -> ai21/jamba-large"], r"'gpt-4o' is not a 'provider/model'"),
        (["openai/gpt-4o -> *"], "must name one model"),
        (["a/b -> ai21/jamba-large", "a/b -> nowhere/none"], r"what_if\[1\]: no price"),
    ],
)
def test_bad_rules_are_named(rules: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        resolve_rules(rules, price_of)


def test_alternatives_of_a_target() -> None:
    resolved = resolve_rules(
        [
            "openai/gpt-4o -> ai21/jamba-large",
            "openai/gpt-4o -> ai21/jamba-large",  # repeated: once
            "* -> deepseek/deepseek-chat",
            "* -> ai21/jamba-large",
        ],
        price_of,
    )
    named = [name for name, _ in alternatives_for(resolved, "openai", "gpt-4o")]
    assert named == ["ai21/jamba-large", "deepseek/deepseek-chat"]
    assert [n for n, _ in alternatives_for(resolved, "openai", "gpt-4o-mini")] == [
        "deepseek/deepseek-chat",
        "ai21/jamba-large",
    ]
    # Never the target itself.
    assert [n for n, _ in alternatives_for(resolved, "ai21", "jamba-large")] == [
        "deepseek/deepseek-chat"
    ]


@given(st.integers(0, 10**9), st.integers(0, 10**9), st.integers(0, 10**8), st.integers(0, 10**6))
def test_what_if_cost_is_token_counts_times_alternative_prices(
    input_tokens: int, cached: int, output: int, reasoning: int
) -> None:
    usage = Usage(input_tokens, min(cached, input_tokens), output, min(reasoning, output))
    alternatives = list(TABLE.items())
    want = {key: expected(key, usage) for key in LITERALS}
    assert what_if_costs(usage, alternatives, NOW) == want


def test_what_if_prices_at_the_alternative_price_in_force_then() -> None:
    history = [
        {"input": "1", "output": "1"},
        {"from": "2026-12-01", "input": "2", "output": "2"},
    ]
    changed = config_spec([PriceConfig.model_validate(e) for e in history]).spec
    usage = Usage(1000, 0, 0)
    assert what_if_costs(usage, [("x/y", changed)], NOW - 86_400_000) == {"x/y": 1_000_000}
    assert what_if_costs(usage, [("x/y", changed)], NOW) == {"x/y": 2_000_000}
    assert spec("1", "1") != changed  # the history is not the first price alone


def row(alternative: str, model: str, cost: int | None, what_if: int) -> WhatIfRow:
    totals = Totals(
        cost_nusd=cost or 0, requests=1, unpriced_requests=int(cost is None), input_tokens=10
    )
    return WhatIfRow("acme", "2026-11-28", "r", "p", model, alternative, totals, what_if)


def test_summary_per_alternative_and_model_with_savings() -> None:
    query = SpendQuery.parse({"what_if": "1", "group_by": "model"}, today=date(2026, 11, 28))
    rows = [
        row("x/cheap", "m1", 1_000, 400),
        row("x/cheap", "m1", 2_000, 500),
        row("x/dear", "m1", 1_000, 3_000),
        row("x/cheap", "unpriced", None, 7),
    ]

    answer = summarize_what_if(query, rows)

    brief = [
        (
            g["alternative"],
            g["model"],
            g["actual_cost_usd"],
            g["alternative_cost_usd"],
            g["saving_usd"],
        )
        for g in answer["groups"]
    ]
    assert brief == [
        ("x/cheap", "m1", "0.000003000", "0.000000900", "0.000002100"),
        ("x/cheap", "unpriced", "0.000000000", "0.000000007", None),  # unknown actual cost
        ("x/dear", "m1", "0.000001000", "0.000003000", "-0.000002000"),
    ]
    assert answer["group_by"] == ["alternative", "model"]


@pytest.mark.parametrize(
    ("params", "message"),
    [({"what_if": "yes"}, "1 or 0"), ({"what_if": "1", "group_by": "tag"}, "what_if figures")],
)
def test_what_if_query_errors(params: dict[str, str], message: str) -> None:
    with pytest.raises(SpendQueryError, match=message):
        SpendQuery.parse(params)
