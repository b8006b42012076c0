"""The genai-prices catalogue, read offline: which catalogue provider and model a route
target is, and that model's prices as a `PriceSpec`.

Only the data bundled with the installed package is read. genai-prices can fetch newer
prices at run time (`UpdatePrices`); costproxy never starts it, and reads the bundled
`genai_prices.data.providers` directly rather than the library's process-global snapshot,
which such an update (started by any other library in the process) would replace.

The catalogue is imported when a snapshot first needs it, i.e. when the config routes to a
model that `prices:` does not price: a config that prices every target never loads it.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from types import ModuleType
from typing import Any

from proxy.accounting.config_prices import date_ms
from proxy.accounting.price_sheets import BuiltSpec, Schedule, Sheet, SheetPart, SheetVersion
from proxy.accounting.price_sheets import build_spec as build_from_sheets
from proxy.accounting.pricing import ALWAYS_MS

__all__ = [
    "PROVIDER_IDS",
    "Catalogue",
    "CatalogueModel",
    "load_catalogue",
]

# costproxy provider names (a provider's `price_namespace`, else its name in the config)
# that are not themselves catalogue provider ids. A name that is a catalogue id needs no
# entry; a name neither here nor a catalogue id is matched by the provider's base_url.
PROVIDER_IDS: Mapping[str, str] = {
    "azure_openai": "azure",
    "azure-openai": "azure",
    "claude": "anthropic",
    "gemini": "google",
    "vertex": "google",
    "vertex_ai": "google",
    "google-vertex": "google",
    "bedrock": "aws",
    "amazon-bedrock": "aws",
    "aws-bedrock": "aws",
    "xai": "x-ai",
    "grok": "x-ai",
    "together_ai": "together",
    "togetherai": "together",
    "fireworks_ai": "fireworks",
    "fireworks-ai": "fireworks",
    "mistralai": "mistral",
    "moonshot": "moonshotai",
    "kimi": "moonshotai",
}

# Catalogue price keys costproxy bills, by the dimension (or fee) they price.
_TOKEN_KEYS: Mapping[str, str] = {
    "input_mtok": "input",
    "cache_read_mtok": "cached_input",
    "input_audio_mtok": "input_audio",
    "input_image_mtok": "input_image",
    "output_mtok": "output",
    "output_reasoning_mtok": "reasoning",
    "output_audio_mtok": "output_audio",
    "output_image_mtok": "output_image",
}
_CACHE_WRITE_KEYS = ("cache_write_mtok", "cache_write_5m_mtok", "cache_write_1h_mtok")
_FEE_KEYS: Mapping[str, str] = {"requests_kcount": "per_request", "web_searches_kcount": "search"}
BILLED_KEYS = frozenset(_TOKEN_KEYS) | frozenset(_CACHE_WRITE_KEYS) | frozenset(_FEE_KEYS)

# Request contexts costproxy can tell from a response: its service_tier, and batch.
_BATCH_WHEN = {"processing": "batch"}
_EPOCH = date(1970, 1, 1)


@dataclass(frozen=True, slots=True)
class CatalogueModel:
    """One catalogue model as a route target sees it."""

    provider_id: str  # the catalogue provider the target was matched to
    model_id: str  # the catalogue model (may belong to a fallback provider, see `own`)
    model_name: str | None
    owner_id: str  # the provider whose list holds the model
    via: str  # how the provider was found: "price_namespace", "kind" or "base_url"
    deprecated: bool
    # Price keys the catalogue has for this model that costproxy does not bill (units it
    # does not measure, such as audio hours or file searches).
    not_billed: tuple[str, ...]
    built: BuiltSpec | None  # None: the catalogue prices this model in no unit costproxy bills

    @property
    def key(self) -> str:
        return f"{self.provider_id}/{self.model_id}"


class Catalogue:
    """The bundled catalogue of the installed genai-prices. Build with `load_catalogue()`."""

    def __init__(self, version: str, providers: list[Any], types: ModuleType) -> None:
        self.version = version
        self.providers = providers
        self._types = types
        self._by_id = {p.id: p for p in providers}

    # --- which provider --------------------------------------------------------------

    def provider_id(
        self, namespace: str, base_url: str | None, kind: str | None
    ) -> tuple[str, str] | None:
        """(catalogue provider id, how it was found) for a costproxy provider, or None."""
        name = namespace.strip().lower()
        by_name = PROVIDER_IDS.get(name, name)
        if by_name in self._by_id:
            return by_name, "price_namespace"
        if kind in ("azure", "anthropic"):  # the kind says whose API it is
            return kind, "kind"
        if base_url:
            for provider in self.providers:
                if _url_matches(provider.api_pattern, base_url):
                    return provider.id, "base_url"
        return None

    # --- which model, at what price --------------------------------------------------

    def find(
        self, namespace: str, model: str, base_url: str | None = None, kind: str | None = None
    ) -> CatalogueModel | None:
        found = self.provider_id(namespace, base_url, kind)
        if found is None:
            return None
        provider = self._by_id[found[0]]
        info = provider.find_model(model, all_providers=self.providers)
        if info is None:
            return None
        own = any(m is info for m in provider.models)
        owner = provider.id if own else self._owner_of(info)
        keys = set(_price_keys(info))
        built = None
        if keys & BILLED_KEYS:
            # The library ignores request-context variants of a model matched through a
            # fallback provider (azure -> openai); so does this.
            built = build_from_sheets(self._versions(info, with_variants=own))
        return CatalogueModel(
            provider_id=provider.id,
            model_id=info.id,
            model_name=info.name,
            owner_id=owner,
            via=found[1],
            deprecated=bool(getattr(info, "deprecated", False)),
            not_billed=tuple(sorted(keys - BILLED_KEYS)),
            built=built,
        )

    def models(self) -> Iterator[tuple[str, Any]]:
        """(provider id, ModelInfo) of every model, in catalogue order."""
        for provider in self.providers:
            for info in provider.models:
                yield provider.id, info

    def _owner_of(self, info: Any) -> str:
        return next(p.id for p in self.providers if any(m is info for m in p.models))

    def _versions(self, info: Any, *, with_variants: bool) -> list[SheetVersion]:
        t = self._types
        constraints = [c.constraint for c in (info.prices if isinstance(info.prices, list) else ())]
        variants = list(info.price_variants or ()) if with_variants else []
        constraints += [v.constraint for v in variants]
        starts = sorted({c.start_date for c in constraints if isinstance(c, t.StartDateConstraint)})
        windows = [c for c in constraints if isinstance(c, t.TimeOfDateConstraint)]
        edges = {_ms_of_day(w.start_time) for w in windows} | {
            _ms_of_day(w.end_time) for w in windows
        }
        day_starts = sorted({0} | edges)
        contexts = _contexts(variants)
        versions = []
        for day in [_EPOCH, *starts]:
            parts = []
            for start_ms in day_starts:
                at = datetime.combine(day, time(), UTC) + timedelta(milliseconds=start_ms)
                standard = _sheet(info.get_prices(at))
                by_variant = {name: _sheet(info.get_prices(at, ctx)) for name, ctx in contexts}
                parts.append(SheetPart(start_ms, standard, by_variant))
            from_ms = ALWAYS_MS if day is _EPOCH else date_ms(day)
            versions.append(SheetVersion(from_ms, tuple(parts)))
        return versions


def _contexts(variants: list[Any]) -> list[tuple[str, dict[str, str]]]:
    out: dict[str, dict[str, str]] = {}
    for variant in variants:
        when = dict(variant.when)
        if when == _BATCH_WHEN:
            out["batch"] = when
        elif when.keys() == {"service_tier"}:
            out[when["service_tier"]] = when
    return sorted(out.items())


def _price_keys(info: Any) -> Iterator[str]:
    entries = info.prices if isinstance(info.prices, list) else [info.prices]
    prices = [getattr(e, "prices", e) for e in entries]
    prices += [v.prices for v in info.price_variants or ()]
    for price in prices:
        for key, value in vars(price).items():
            if value is not None and not key.startswith("_"):
                yield key


def _schedule(value: Any) -> Schedule:
    if isinstance(value, Decimal):
        return Schedule(value)
    return Schedule(value.base, tuple(sorted((tier.start, tier.price) for tier in value.tiers)))


def _sheet(price: Any) -> Sheet:
    """A resolved genai-prices ModelPrice as a sheet of what costproxy bills."""
    values = {k: v for k, v in vars(price).items() if v is not None and not k.startswith("_")}
    tokens = {dim: _schedule(values[key]) for key, dim in _TOKEN_KEYS.items() if key in values}
    # `cache_write_mtok` prices every cache write (Anthropic's 5-minute write); the 1-hour
    # write has its own key where it differs. No model prices `cache_write_5m_mtok` apart.
    write = values.get("cache_write_5m_mtok", values.get("cache_write_mtok"))
    write_1h = values.get("cache_write_1h_mtok", values.get("cache_write_mtok"))
    if write is not None:
        tokens["cache_write_5m"] = _schedule(write)
    if write_1h is not None:
        tokens["cache_write_1h"] = _schedule(write_1h)
    per_thousand = {fee: values[key].scaleb(-3) for key, fee in _FEE_KEYS.items() if key in values}
    return Sheet(tokens, per_thousand.get("per_request"), per_thousand.get("search"))


def _ms_of_day(value: time) -> int:
    if value.tzinfo is not None:
        value = datetime.combine(_EPOCH, value).astimezone(UTC).time()
    seconds = value.hour * 3600 + value.minute * 60 + value.second
    return seconds * 1000 + value.microsecond // 1000


def _url_matches(pattern: str, url: str) -> bool:
    """The catalogue's pattern matches the start of `url` up to the end of its host at
    least (so "https://api.openai.com.example" is not OpenAI)."""
    match = re.match(pattern, url)
    if match is None:
        return False
    scheme_end = url.find("://")
    host_end = url.find("/", scheme_end + 3 if scheme_end >= 0 else 0)
    host_end = len(url) if host_end < 0 else host_end
    end = match.end()
    return end >= host_end or url[end] == ":"


def load_catalogue() -> Catalogue:
    """The installed genai-prices' bundled catalogue (imported on first use: ~5 MiB)."""
    package = importlib.import_module("genai_prices")
    data = importlib.import_module("genai_prices.data")
    types = importlib.import_module("genai_prices.types")
    return Catalogue(package.__version__, data.providers, types)
