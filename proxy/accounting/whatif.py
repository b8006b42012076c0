"""What a request would have cost elsewhere: the config's `what_if` rules and their costs. Pure.

A rule "openai/gpt-4o -> ai21/jamba-large" prices every request billed as openai/gpt-4o
again at ai21/jamba-large's prices, with the same token counts. Tokenizers differ between
model families, so the alternative's real counts (and cost) would differ somewhat: the
figure answers "what would these tokens cost there", not "what would the bill be".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from proxy.accounting.pricing import STANDARD, PriceContext, PriceSpec, cost_nusd
from proxy.accounting.records import Usage

__all__ = [
    "ANY_MODEL",
    "TOKENIZER_NOTE",
    "Alternatives",
    "alternatives_for",
    "parse_rule",
    "resolve_rules",
    "what_if_costs",
]

ANY_MODEL = "*"
TOKENIZER_NOTE = (
    "alternative costs use the actual request's token counts; the alternative's own "
    "tokenizer may count the same text differently"
)

# price key of the billed model ("ns/model", or "*") -> ((alternative key, its price), ...)
Alternatives = Mapping[str, tuple[tuple[str, PriceSpec], ...]]
# (namespace, model) -> its price (config or catalogue), or None
PriceOf = Callable[[str, str], PriceSpec | None]


def parse_rule(text: str) -> tuple[str, str]:
    """ "openai/gpt-4o -> ai21/jamba-large" → ("openai/gpt-4o", "ai21/jamba-large")."""
    source, arrow, alternative = text.partition("->")
    source, alternative = source.strip(), alternative.strip()
    if not arrow or not source or not alternative:
        raise ValueError(f"{text!r} is not 'provider/model -> provider/model'")
    for side in (source, alternative):
        if side != ANY_MODEL and "/" not in side:
            raise ValueError(f"{text!r}: {side!r} is not a 'provider/model' price key")
    if alternative == ANY_MODEL:
        raise ValueError(f"{text!r}: the alternative must name one model")
    return source, alternative


def _split_key(key: str) -> tuple[str, str]:
    namespace, _, model = key.partition("/")
    return namespace, model


def resolve_rules(
    rules: Sequence[str], prices: PriceOf
) -> dict[str, tuple[tuple[str, PriceSpec], ...]]:
    """The rules with each alternative's price looked up; ValueError naming the rule when
    it is malformed or its alternative has no price."""
    resolved: dict[str, list[tuple[str, PriceSpec]]] = {}
    for index, rule in enumerate(rules):
        try:
            source, alternative = parse_rule(rule)
        except ValueError as exc:
            raise ValueError(f"what_if[{index}]: {exc}") from None
        price = prices(*_split_key(alternative))
        if price is None:
            raise ValueError(
                f"what_if[{index}]: no price for {alternative!r} (add it under prices:)"
            )
        entries = resolved.setdefault(source, [])
        if all(name != alternative for name, _ in entries):
            entries.append((alternative, price))
    return {source: tuple(entries) for source, entries in resolved.items()}


def alternatives_for(
    alternatives: Alternatives, namespace: str, model: str
) -> tuple[tuple[str, PriceSpec], ...]:
    """The alternatives of a target billed as `namespace/model`: its own rules, then the
    "*" rules; each alternative once, and never the target itself."""
    own = f"{namespace}/{model}"
    out: list[tuple[str, PriceSpec]] = []
    for name, price in (*alternatives.get(own, ()), *alternatives.get(ANY_MODEL, ())):
        if name != own and all(name != seen for seen, _ in out):
            out.append((name, price))
    return tuple(out)


def what_if_costs(
    usage: Usage,
    alternatives: Sequence[tuple[str, PriceSpec]],
    when_ms: int,
    context: PriceContext = STANDARD,
) -> dict[str, int]:
    """Nano-dollars each alternative would have charged for exactly these token counts, at
    its prices in force at `when_ms` (and for the same service tier, where it has one),
    in the request's price context."""
    return {name: cost_nusd(usage, price, when_ms, context) for name, price in alternatives}
