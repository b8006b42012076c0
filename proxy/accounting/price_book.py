"""Where a target's price comes from: the config's `prices:` first, then the catalogue.

Built once per config snapshot; `resolve` is called while routes are built (never on the
request path). Each answer carries its source, for the admin API and the CLI.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from proxy.accounting.catalogue import Catalogue, CatalogueModel, load_catalogue
from proxy.accounting.config_prices import config_spec
from proxy.accounting.price_sheets import BuiltSpec
from proxy.accounting.pricing import PriceSpec
from proxy.config import PriceConfig

__all__ = ["PriceBook", "PriceSource", "ResolvedPrice", "Unpriced"]

log = logging.getLogger("costproxy.pricing")
_DATE_SUFFIX = re.compile(r"-\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True, slots=True)
class PriceSource:
    kind: Literal["config", "catalogue"]
    key: str  # the config's "ns/model" key, or the catalogue's "provider/model"
    catalogue_version: str | None = None  # genai-prices version, for catalogue prices
    catalogue: CatalogueModel | None = None
    inexact: tuple[str, ...] = ()  # catalogue prices rounded to the femto-dollar


@dataclass(frozen=True, slots=True)
class ResolvedPrice:
    spec: PriceSpec
    source: PriceSource


@dataclass(frozen=True, slots=True)
class Unpriced:
    """Why a target has no price."""

    reason: str


class PriceBook:
    """`namespace/model` → price: the config's entries (a dated snapshot such as
    `gpt-4o-2024-08-06` falls back to the config's `gpt-4o` entry), else the catalogue."""

    def __init__(
        self,
        overrides: Mapping[str, PriceConfig | list[PriceConfig]],
        catalogue: Callable[[], Catalogue] = load_catalogue,
    ) -> None:
        self._config: dict[str, BuiltSpec] = {}
        for key, value in overrides.items():
            try:
                self._config[key] = config_spec(value)
            except ValueError as exc:
                raise ValueError(f"prices.{key}: {exc}") from None
        self._load_catalogue = catalogue
        self._catalogue: Catalogue | None = None
        self._resolved: dict[tuple[str, str, str | None, str | None], ResolvedPrice | Unpriced] = {}

    @property
    def catalogue(self) -> Catalogue:
        if self._catalogue is None:
            self._catalogue = self._load_catalogue()
        return self._catalogue

    @property
    def config_keys(self) -> tuple[str, ...]:
        return tuple(self._config)

    def config_price(self, key: str) -> ResolvedPrice | None:
        built = self._config.get(key)
        return None if built is None else ResolvedPrice(built.spec, PriceSource("config", key))

    def resolve(
        self,
        namespace: str,
        model: str,
        base_url: str | None = None,
        kind: str | None = None,
        *,
        remember: bool = True,
    ) -> ResolvedPrice | Unpriced:
        """The price of `model` at a provider billed under `namespace` (its base_url and
        kind help find the catalogue provider). `remember=False` for one-off questions
        (the admin API), so that they do not grow the book."""
        memo_key = (namespace, model, base_url, kind)
        known = self._resolved.get(memo_key)
        if known is not None:
            return known
        answer = self._resolve(namespace, model, base_url, kind)
        if remember:
            self._resolved[memo_key] = answer
            if isinstance(answer, ResolvedPrice) and answer.source.inexact:
                log.warning(
                    "catalogue prices of %s/%s (%s) have more decimals than a femto-dollar "
                    "per token; rounded half to even: %s",
                    namespace,
                    model,
                    answer.source.key,
                    "; ".join(answer.source.inexact),
                )
        return answer

    def lookup(
        self, namespace: str, model: str, base_url: str | None = None, kind: str | None = None
    ) -> PriceSpec | None:
        answer = self.resolve(namespace, model, base_url, kind)
        return answer.spec if isinstance(answer, ResolvedPrice) else None

    def _resolve(
        self, namespace: str, model: str, base_url: str | None, kind: str | None
    ) -> ResolvedPrice | Unpriced:
        for key in _config_keys(namespace, model):
            if (found := self.config_price(key)) is not None:
                return found
        answer = self.catalogue_price(namespace, model, base_url, kind)
        if isinstance(answer, Unpriced) and answer.reason.startswith("the catalogue"):
            return Unpriced(f"no price under prices: for {namespace}/{model}, and {answer.reason}")
        return answer

    def catalogue_price(
        self, namespace: str, model: str, base_url: str | None = None, kind: str | None = None
    ) -> ResolvedPrice | Unpriced:
        """The catalogue's price alone (what the config's entry overrides, if any)."""
        catalogue = self.catalogue
        match = catalogue.find(namespace, model, base_url, kind)
        if match is None:
            provider = catalogue.provider_id(namespace, base_url, kind)
            if provider is None:
                return Unpriced(
                    f"the catalogue (genai-prices {catalogue.version}) has no provider named "
                    f"{namespace!r} (by its name, price_namespace or base_url)"
                )
            return Unpriced(
                f"the catalogue (genai-prices {catalogue.version}) has no model {model!r} "
                f"for provider {provider[0]!r}"
            )
        if match.built is None:
            return Unpriced(
                f"the catalogue prices {match.key} only in units costproxy does not measure "
                f"({', '.join(match.not_billed)}); price it under prices:"
            )
        source = PriceSource("catalogue", match.key, catalogue.version, match, match.built.inexact)
        return ResolvedPrice(match.built.spec, source)


def _config_keys(namespace: str, model: str) -> tuple[str, ...]:
    undated = _DATE_SUFFIX.sub("", model)
    exact = f"{namespace}/{model}"
    return (exact,) if undated == model else (exact, f"{namespace}/{undated}")
