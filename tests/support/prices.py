"""Price specs for tests, built the way the proxy builds them from a config `prices:` entry."""

from __future__ import annotations

from collections.abc import Mapping

from proxy.accounting.config_prices import config_spec
from proxy.accounting.pricing import PriceSpec
from proxy.config import PriceConfig

__all__ = ["spec", "spec_history", "specs"]


def spec(input: str, output: str, cached_input: str | None = None, **more: object) -> PriceSpec:
    """USD per 1M tokens (decimal strings), and any other field of a price entry."""
    fields = {"input": input, "output": output, "cached_input": cached_input, **more}
    return config_spec(PriceConfig.model_validate(fields)).spec


def specs(literals: Mapping[str, tuple[str, str, str]]) -> dict[str, PriceSpec]:
    """{"ns/model": (input, cached_input, output)} → {"ns/model": spec}."""
    return {key: spec(i, o, c) for key, (i, c, o) in literals.items()}


def spec_history(entries: list[dict]) -> PriceSpec:
    """A price's dated entries (each a dict as in the config) as one spec."""
    return config_spec([PriceConfig.model_validate(entry) for entry in entries]).spec
