"""The config file: pydantic models, `${ENV}` interpolation, loading and validation.

This is the only module that reads the environment. Errors name the file, the path
inside it and what was expected, so an operator can fix a config without reading code.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    SecretStr,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from proxy.access.addresses import trusted_networks
from proxy.access.identifiers import normal_id, normal_tag
from proxy.errors import ConfigError
from proxy.headers import NEVER_FORWARDED, NEVER_RETURNED, check_header_patterns
from proxy.published_secrets import published_secrets_refusal

__all__ = [
    "API_OF_KIND",
    "ENV_REF",
    "AdminConfig",
    "AlertsConfig",
    "AuthFailuresConfig",
    "BillingConfig",
    "BreakerConfig",
    "BudgetConfig",
    "BudgetingConfig",
    "Budgets",
    "Config",
    "CustomerConfig",
    "KeyConfig",
    "MetricsConfig",
    "PriceConfig",
    "PriceTierConfig",
    "PriceVariantConfig",
    "ProviderConfig",
    "ReconcileConfig",
    "ReloadConfig",
    "ReportConfig",
    "RequestLogConfig",
    "RouteConfig",
    "ServerConfig",
    "StoreConfig",
    "TargetConfig",
    "TolerancePct",
    "WebhookConfig",
    "env_secret",
    "interpolate_env",
    "load_config",
    "load_config_text",
    "load_yaml",
    "parse_config",
    "price_entries",
]


class _Model(BaseModel):
    # Unknown keys are typos until proven otherwise: reject them loudly.
    model_config = ConfigDict(extra="forbid", frozen=True)


def _normal_keys(value: dict[str, Any], normal: Any, what: str) -> dict[str, Any]:
    """A mapping keyed by identifiers, each in its one spelling (access.identifiers); two
    spellings of one identifier are a mistake to name, not to merge silently."""
    out: dict[str, Any] = {}
    spelt: dict[str, str] = {}
    for key, item in value.items():
        name = normal(key)
        if name in out:
            raise ValueError(f"{what}s {spelt[name]!r} and {key!r} are one {what}, {name!r}")
        out[name], spelt[name] = item, key
    return out


class ServerConfig(_Model):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    max_body_bytes: int = Field(16 * 1024 * 1024, gt=0)
    shutdown_timeout_s: float = Field(30.0, ge=0)
    # Request bodies with a Content-Encoding (gzip, deflate) get 415 unless this is on;
    # then their decoded size is what max_body_bytes bounds.
    accept_compressed_bodies: bool = False
    # Load balancers or reverse proxies in front of the proxy (addresses or networks):
    # for their requests the client's address is read from X-Forwarded-For (failed-auth
    # throttling, /metrics on loopback only).
    trusted_proxies: list[str] = Field(default_factory=list)

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                trusted_networks([entry])
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or network") from None
        return value


class StoreConfig(_Model):
    backend: Literal["sqlite", "redis"] = "sqlite"
    sqlite_path: str = "./data/costproxy.db"
    redis_url: str = "redis://127.0.0.1:6379/0"
    key_prefix: str = "costproxy:"
    usage_log_max: int = Field(1_000_000, gt=0)
    retention_days: int = Field(400, gt=0)
    # How long `GET /admin/v1/usage/{id}` can find a request on Redis (~250 bytes each).
    request_index_days: int = Field(35, gt=0)
    # Redis Cluster: "host:port" of some nodes (the rest are discovered); replaces redis_url.
    redis_cluster_nodes: list[str] = Field(default_factory=list)
    # While the store is unreachable: keep serving and journal records locally (fail_open),
    # or answer 503 (fail_closed). Records of requests already admitted are journaled either way.
    on_error: Literal["fail_open", "fail_closed"] = "fail_open"
    # Directory of the local journal; default: "journal" beside the SQLite file.
    journal_path: str | None = None
    journal_max_bytes: int = Field(256 * 1024 * 1024, gt=0)
    # A store call slower than this counts as a failure: the store is then treated as down.
    call_timeout_s: float = Field(1.0, gt=0)
    # Reconnect attempts back off from min to max; a healthy store is pinged every interval.
    reconnect_min_s: float = Field(0.05, gt=0)
    reconnect_max_s: float = Field(5.0, gt=0)
    health_interval_s: float = Field(1.0, gt=0)

    @field_validator("redis_cluster_nodes")
    @classmethod
    def _host_ports(cls, value: list[str]) -> list[str]:
        for node in value:
            host, sep, port = node.rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"redis_cluster_nodes: {node!r} is not host:port")
        return value

    @property
    def journal_dir(self) -> str:
        if self.journal_path is not None:
            return self.journal_path
        return str(Path(self.sqlite_path).parent / "journal")


PerMinute = Annotated[int, Field(gt=0, le=10**9)]
# Requests of one key or customer in flight at once (on each instance).
InFlight = Annotated[int, Field(gt=0, le=10**6)]


def _token_long_enough(value: SecretStr | None, what: str) -> SecretStr | None:
    if value is not None and len(value.get_secret_value()) < 16:
        raise ValueError(f"{what} token must be at least 16 characters")
    return value


class AdminConfig(_Model):
    token: SecretStr | None = None
    # Serve the admin API on its own listener (and only there) when `port` is set.
    host: str | None = None
    port: int | None = Field(None, gt=0, le=65535)

    @field_validator("token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        return _token_long_enough(value, "admin")


class MetricsConfig(_Model):
    """Prometheus metrics. Customers become label values only as configured here: past
    `max_customers` (or outside `customers` when `listed`) traffic is labelled "other";
    by default (`none`) no customer is named. Without a token or a port of its own,
    /metrics answers clients on loopback only."""

    customer_label: Literal["all", "listed", "none"] = "none"
    max_customers: int = Field(500, ge=0)
    customers: list[str] = Field(default_factory=list)
    port: int | None = Field(None, ge=1, le=65535)  # None: /metrics on the main port
    token: SecretStr | None = None  # when set, /metrics requires it as a bearer token

    @field_validator("token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        return _token_long_enough(value, "metrics")

    @model_validator(mode="after")
    def _customers_match_the_policy(self) -> MetricsConfig:
        if self.customer_label == "listed" and not self.customers:
            raise ValueError("customer_label is 'listed' but 'customers' is empty")
        if self.customer_label != "listed" and self.customers:
            raise ValueError("'customers' is only used with customer_label: listed")
        return self


class AuthFailuresConfig(_Model):
    """Failed authentication per client address (see access.auth_failures): after
    `threshold` failures within `window_s`, the address is refused (429) in that API for
    `block_s`, doubled by every further failure up to `max_block_s`."""

    threshold: int = Field(20, ge=1)
    window_s: float = Field(60.0, gt=0)
    block_s: float = Field(1.0, gt=0)
    max_block_s: float = Field(300.0, gt=0)


class RequestLogConfig(_Model):
    """One JSON line per request on the `costproxy.requests` logger; never prompt text."""

    enabled: bool = True


_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


class ReportConfig(_Model):
    """Where the provider publishes its own usage and cost reports (see proxy.reconcile).

    `project_ids` (OpenAI projects, Anthropic workspaces) and `api_key_ids` say which of
    the organisation's traffic is this provider's: the reports are filtered to them.
    """

    kind: Literal["openai", "anthropic"]
    # The name of the environment variable that holds the admin key (never the key).
    admin_key_env: str = Field(pattern=_ENV_NAME)
    base_url: str | None = None  # default: the provider's public API
    project_ids: list[str] = Field(default_factory=list)
    api_key_ids: list[str] = Field(default_factory=list)
    timeout_s: float = Field(30.0, gt=0)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("report base_url must be an http(s) URL")
        return None if value is None else value.rstrip("/")


# The client API each provider kind serves: routes are per API (see Config).
API_OF_KIND: Mapping[str, str] = {"openai": "openai", "azure": "openai", "anthropic": "anthropic"}


class ProviderConfig(_Model):
    kind: Literal["openai", "azure", "anthropic"] = "openai"
    base_url: str
    api_key: SecretStr | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    # Azure OpenAI only: the `api-version` query parameter, and model name -> deployment
    # name where they differ (a target's `model` is what is billed; the deployment is
    # only an address).
    api_version: str | None = None
    deployments: dict[str, str] = Field(default_factory=dict)
    # The namespace of this provider's prices (the config's `prices:` keys, and the
    # catalogue provider it names, see docs/pricing.md); defaults to its name.
    price_namespace: str | None = None
    connect_timeout_s: float = Field(10.0, gt=0)
    read_timeout_s: float = Field(600.0, gt=0)
    max_connections: int = Field(1000, gt=0)
    # The most of max_connections one customer may hold at once, so that no customer
    # starves the others (1: no limit). A request past its customer's share tries the
    # route's next target, else gets 429 concurrency_limit_exceeded.
    max_customer_share: float = Field(0.5, gt=0, le=1)
    # The provider's own usage and cost reports, for `costproxy reconcile`.
    report: ReportConfig | None = None
    # Client headers sent on to this provider beyond those its kind's API defines, and
    # provider headers returned to clients beyond the answer's own (see proxy.headers):
    # names, or prefixes ending in "*" ("x-mock-*").
    forward_headers: list[str] = Field(default_factory=list)
    return_headers: list[str] = Field(default_factory=list)

    @field_validator("forward_headers")
    @classmethod
    def _forwardable(cls, value: list[str]) -> list[str]:
        return check_header_patterns(value, NEVER_FORWARDED)

    @field_validator("return_headers")
    @classmethod
    def _returnable(cls, value: list[str]) -> list[str]:
        return check_header_patterns(value, NEVER_RETURNED)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("base_url must be an http(s) URL, e.g. https://api.openai.com/v1")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _kind_fields(self) -> ProviderConfig:
        if self.kind == "azure" and not self.api_version:
            raise ValueError("an azure provider needs api_version, e.g. 2024-10-21")
        if self.kind != "azure" and (self.api_version or self.deployments):
            raise ValueError("api_version and deployments apply to kind: azure only")
        if self.kind == "anthropic" and self.base_url.endswith("/v1"):
            raise ValueError(
                "an anthropic provider's base_url is the API root, without /v1 "
                "(e.g. https://api.anthropic.com), as the Anthropic SDKs take it"
            )
        return self


class TargetConfig(_Model):
    provider: str
    model: str = Field(min_length=1)
    weight: float = Field(1.0, ge=0)
    priority: int = 0


Strategy = Literal["fallback", "weighted", "cheapest", "lowest_latency"]
OnClientDisconnect = Literal["close", "drain"]


class RouteConfig(_Model):
    strategy: Strategy = "fallback"
    targets: list[TargetConfig] = Field(min_length=1)
    # Used to bound a request's cost when it states no max tokens itself.
    max_output_tokens: int | None = Field(None, gt=0)
    # Attempts after the first, over the route's targets, before the first byte is sent.
    retries: int = Field(2, ge=0, le=10)
    # Time for all attempts together to reach the first byte; None: only the providers'
    # own connect/read timeouts bound an attempt.
    timeout_s: float | None = Field(None, gt=0)
    # Backoff before trying a target again: full jitter over base * 2**n, at most max.
    # A Retry-After longer than backoff_max_s is not waited for: the client gets the 429.
    backoff_base_s: float = Field(0.25, ge=0)
    backoff_max_s: float = Field(8.0, ge=0)
    # When a streaming client hangs up: the `streams` section's choice unless set here.
    on_client_disconnect: OnClientDisconnect | None = None
    drain_timeout_s: float | None = Field(None, gt=0)
    # Client headers this route sends on beyond its providers' (e.g. OpenAI-Beta).
    forward_headers: list[str] = Field(default_factory=list)

    @field_validator("forward_headers")
    @classmethod
    def _forwardable(cls, value: list[str]) -> list[str]:
        return check_header_patterns(value, NEVER_FORWARDED)

    @model_validator(mode="after")
    def _targets_make_sense(self) -> RouteConfig:
        seen: set[tuple[str, str]] = set()
        for target in self.targets:
            key = (target.provider, target.model)
            if key in seen:
                raise ValueError(f"target {target.provider}/{target.model} is listed twice")
            seen.add(key)
        if self.strategy == "weighted" and not any(t.weight > 0 for t in self.targets):
            raise ValueError("strategy weighted needs at least one target with weight > 0")
        return self


class StreamsConfig(_Model):
    """What happens to an upstream stream whose client hung up (see docs/usage.md).

    `drain` reads the rest of the stream, discarding it, so that the record carries the
    provider's own usage (which bills every token it generated, read or not); `close`
    cuts the upstream at once and estimates from what the client was sent. A route may
    set its own `on_client_disconnect` and `drain_timeout_s`.
    """

    on_client_disconnect: OnClientDisconnect = "drain"
    drain_timeout_s: float = Field(120.0, gt=0)  # then cut, and estimate


class BreakerConfig(_Model):
    """One circuit breaker per target (provider, model)."""

    failure_threshold: int = Field(5, ge=1)  # consecutive failures that open it
    cooldown_s: float = Field(30.0, gt=0)  # open this long, then one probe is let through


class ReloadConfig(_Model):
    watch: bool = False  # reload when the config file changes (polled)
    interval_s: float = Field(2.0, gt=0)


# USD per 1M tokens, or USD. More than 9 decimals would be finer than the femto-dollar per
# token (nano-dollar per fee) that prices are kept in: rejected, not rounded silently.
UsdPerMTok = Annotated[Decimal, Field(ge=0, max_digits=24, decimal_places=9)]
Usd = Annotated[Decimal, Field(ge=0, max_digits=24, decimal_places=9)]


class TokenPricesConfig(_Model):
    """USD per 1M tokens of each dimension priced apart. One left out costs its parent's
    price: cache reads and writes, audio and image input cost `input`; a 1-hour cache
    write costs `cache_write_5m`; reasoning, audio and image output cost `output`."""

    input: UsdPerMTok | None = None
    cached_input: UsdPerMTok | None = None
    cache_write_5m: UsdPerMTok | None = None
    cache_write_1h: UsdPerMTok | None = None
    input_audio: UsdPerMTok | None = None
    input_image: UsdPerMTok | None = None
    output: UsdPerMTok | None = None
    reasoning: UsdPerMTok | None = None
    output_audio: UsdPerMTok | None = None
    output_image: UsdPerMTok | None = None

    def named_token_prices(self) -> dict[str, Decimal]:
        return {
            name: value
            for name in TokenPricesConfig.model_fields
            if (value := getattr(self, name)) is not None
        }


class PriceTierConfig(TokenPricesConfig):
    """Prices for a request with more input tokens than `above_input_tokens` (all of them,
    cache reads and writes included); they apply to every token of that request."""

    above_input_tokens: int = Field(ge=0)

    @model_validator(mode="after")
    def _names_a_price(self) -> PriceTierConfig:
        if not self.named_token_prices():
            raise ValueError(
                "a tier names at least one price, e.g. {above_input_tokens: 200000, input: 6}"
            )
        return self


def _ascending_tiers(tiers: list[PriceTierConfig]) -> list[PriceTierConfig]:
    starts = [t.above_input_tokens for t in tiers]
    if starts != sorted(set(starts)):
        raise ValueError("tiers must have distinct above_input_tokens, in ascending order")
    return tiers


PriceTiers = Annotated[list[PriceTierConfig], AfterValidator(_ascending_tiers)]


class PriceVariantConfig(TokenPricesConfig):
    """A service tier's (or batch's) prices: what it names replaces the standard price of
    that dimension (tiers included); the rest stays standard."""

    per_request: Usd | None = None  # USD per request
    per_web_search: Usd | None = None  # USD per web search the provider ran
    tiers: PriceTiers = Field(default_factory=list)


class PriceConfig(PriceVariantConfig):
    """One model's prices: USD per 1M tokens of input and output (required), any other
    dimension, fees, prompt-size tiers, service-tier and batch variants, and the UTC date
    they apply from (`from:`; a list of entries gives a price its history)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    input: UsdPerMTok
    output: UsdPerMTok
    service_tiers: dict[str, PriceVariantConfig] = Field(default_factory=dict)
    batch: PriceVariantConfig | None = None
    from_: date | None = Field(None, alias="from")

    @field_validator("service_tiers")
    @classmethod
    def _not_batch(cls, value: dict[str, PriceVariantConfig]) -> dict[str, PriceVariantConfig]:
        if "batch" in value:
            raise ValueError("batch prices go under batch:, not service_tiers:")
        return value


def _dated_entries(value: PriceConfig | list[PriceConfig]) -> PriceConfig | list[PriceConfig]:
    if isinstance(value, list):
        if not value:
            raise ValueError("a list of prices needs at least one entry")
        undated = [e for e in value if e.from_ is None]
        if len(undated) > 1:
            raise ValueError("only one entry of a price list may leave out from:")
        dates = [e.from_ for e in value if e.from_ is not None]
        if len(dates) != len(set(dates)):
            raise ValueError("two entries of a price list have the same from: date")
    return value


# One entry, or a list of dated entries; told apart by shape so that an error names the
# entry's own path (prices.KEY.input), not every shape it could have had.
Prices = Annotated[
    Annotated[PriceConfig, Tag("one")] | Annotated[list[PriceConfig], Tag("dated")],
    Discriminator(lambda value: "dated" if isinstance(value, list) else "one"),
    AfterValidator(_dated_entries),
]


def price_entries(value: PriceConfig | list[PriceConfig]) -> list[PriceConfig]:
    """A `prices:` value as its entries, oldest first (an entry without from: first)."""
    entries = value if isinstance(value, list) else [value]
    return sorted(entries, key=lambda e: (e.from_ is not None, e.from_ or date.min))


class BillingConfig(_Model):
    """What customers are charged: cost x (1 + markup_pct/100) + per_request_usd for each
    request the provider billed, rounded once to the nano-dollar."""

    markup_pct: Decimal = Field(Decimal(0), ge=-100, le=100_000, decimal_places=9)
    per_request_usd: Usd = Decimal(0)

    @field_validator("markup_pct", "per_request_usd", mode="before")
    @classmethod
    def _no_binary_float(cls, value: Any) -> Any:
        return Decimal(repr(value)) if isinstance(value, float) else value


# Lua compares budget sums as doubles: exact up to 2**53 nano-dollars, so limits stay below.
MAX_LIMIT_USD = Decimal(9_000_000)


class BudgetConfig(_Model):
    """One budget of one scope: `{period: monthly, limit_usd: "500.00", alert_at: [50, 80]}`."""

    period: Literal["daily", "weekly", "monthly", "total"]
    limit_usd: Decimal = Field(ge=0, le=MAX_LIMIT_USD, decimal_places=9)
    hard: bool = True
    alert_at: tuple[int, ...] = (50, 80, 100)

    @field_validator("limit_usd", mode="before")
    @classmethod
    def _no_binary_float(cls, value: Any) -> Any:
        # A JSON number arrives as a float: its shortest repr is the decimal that was written.
        return Decimal(repr(value)) if isinstance(value, float) else value

    @field_validator("alert_at")
    @classmethod
    def _percentages(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        for threshold in value:
            if not 1 <= threshold <= 100:
                raise ValueError(f"alert thresholds are percentages 1-100, got {threshold}")
        return tuple(sorted(set(value)))


def _one_budget_per_period(budgets: list[BudgetConfig]) -> list[BudgetConfig]:
    periods = [b.period for b in budgets]
    for period in periods:
        if periods.count(period) > 1:
            raise ValueError(f"two {period} budgets for one scope: give one per period")
    return budgets


Budgets = Annotated[list[BudgetConfig], AfterValidator(_one_budget_per_period)]


class ScopeBudgets(_Model):
    budgets: Budgets = Field(default_factory=list)


EndUserIds = Literal["any", "trusted", "required"]


class CustomerConfig(_Model):
    """A customer known from the config: budgets and rate limits (the admin API may
    override the limits, and run-time budgets win over these)."""

    rpm: PerMinute | None = None
    tpm: PerMinute | None = None
    max_in_flight: InFlight | None = None
    budgets: Budgets = Field(default_factory=list)
    # The default cap of every end user of the customer, each with its own counter.
    end_user_budgets: Budgets = Field(default_factory=list)
    # Per-end-user overrides: these replace end_user_budgets for that end user.
    end_users: dict[str, ScopeBudgets] = Field(default_factory=dict)
    billing: BillingConfig | None = None  # None: the global billing
    # Who may name this customer's end users: any key (a client may then rotate ids to
    # escape a per-end-user cap), only trusted keys (an untrusted key naming one gets
    # 403), or trusted keys on every request (`required`: no end user, no request).
    end_user_ids: EndUserIds = "any"

    @field_validator("end_users")
    @classmethod
    def _normal_end_users(cls, value: dict[str, ScopeBudgets]) -> dict[str, ScopeBudgets]:
        return _normal_keys(value, normal_id, "end user")


class BudgetingConfig(_Model):
    # The output tokens reserved for a request that states no max tokens and whose route
    # sets no max_output_tokens. The documented overshoot bound depends on it.
    default_max_output_tokens: int = Field(4096, gt=0)
    # A proxy that dies mid-request leaks its reservation for at most this long.
    reservation_ttl_s: float = Field(900.0, gt=0)
    # How often each instance looks for budgets changed at run time by another instance.
    refresh_s: float = Field(2.0, gt=0)
    # While the store is unreachable, budgets are checked against the store's last figures
    # plus this instance's spend since. A budget this instance has no figures for is then
    # refused (503), or with fail_open taken to start from zero.
    fail_open: bool = False
    # A request to a model without a price cannot be held against a hard budget (its cost
    # is unknown): refused with 400 unpriced_model_under_budget, unless "allow".
    unpriced: Literal["refuse", "allow"] = "refuse"


class WebhookConfig(_Model):
    url: str = Field(pattern=r"^https?://")
    secret: SecretStr
    timeout_s: float = Field(5.0, gt=0)


class AlertsConfig(_Model):
    webhooks: list[WebhookConfig] = Field(default_factory=list)
    forecast: bool = True
    retry_attempts: int = Field(4, ge=1, le=20)
    retry_base_s: float = Field(0.5, gt=0)
    # Deliveries that failed every attempt are tried again this often (in memory).
    redeliver_s: float = Field(60.0, gt=0)


Percent = Annotated[Decimal, Field(ge=0, le=100, decimal_places=6)]


class TolerancePct(_Model):
    """How far the proxy's figures may be from the provider's report, in percent of the
    report's figure. Providers round the amounts of their cost reports; tokens are exact."""

    tokens: Percent = Decimal(0)  # requests and every token count
    cost: Percent = Decimal("0.5")

    @model_validator(mode="before")
    @classmethod
    def _one_number_for_both(cls, value: Any) -> Any:
        if isinstance(value, int | float | Decimal | str):
            number = Decimal(repr(value)) if isinstance(value, float) else value
            return {"tokens": number, "cost": number}
        return value


_DURATION = re.compile(r"^(\d+)(s|m|h|d)$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class ReconcileConfig(_Model):
    """Check a provider's spend against its own report periodically (one instance at a
    time): the `days` UTC days ending `lag_days` before today, every `every`."""

    provider: str
    every: str = Field("1d", pattern=_DURATION.pattern)  # "30m", "6h", "1d"
    days: int = Field(3, ge=1, le=31)
    # Days end before the report of them is complete: 1 checks up to yesterday.
    lag_days: int = Field(1, ge=0, le=30)
    tolerance_pct: TolerancePct = Field(default_factory=TolerancePct)
    # After a failed attempt (report unreachable, refused key), try again this soon.
    retry_s: float = Field(900.0, gt=0)
    # A run (fetch and compare) is given this long; it is also the lease of the instance
    # running it.
    timeout_s: float = Field(600.0, gt=0)

    @property
    def every_s(self) -> int:
        match = _DURATION.match(self.every)
        assert match is not None  # checked by the pattern
        return int(match.group(1)) * _SECONDS[match.group(2)]

    @field_validator("every")
    @classmethod
    def _not_zero(cls, value: str) -> str:
        if int(value[:-1]) == 0:
            raise ValueError("every must be longer than zero, e.g. 1d or 6h")
        return value


class KeyConfig(_Model):
    key: SecretStr | None = None
    key_sha256: str | None = Field(None, pattern=r"^[0-9a-fA-F]{64}$")
    customer: Annotated[str, AfterValidator(normal_id)] | None = Field(
        None, min_length=1, max_length=128
    )
    trusted: bool = False
    name: str | None = None
    budgets: Budgets = Field(default_factory=list)
    rpm: PerMinute | None = None
    tpm: PerMinute | None = None
    max_in_flight: InFlight | None = None

    @model_validator(mode="after")
    def _one_secret_and_a_customer(self) -> KeyConfig:
        if (self.key is None) == (self.key_sha256 is None):
            raise ValueError("give exactly one of 'key' or 'key_sha256'")
        if self.key is not None and not self.key.get_secret_value():
            raise ValueError("'key' is empty (is its environment variable set?)")
        if self.customer is None and not self.trusted:
            raise ValueError("'customer' is required unless the key is trusted")
        return self


class Config(_Model):
    server: ServerConfig = Field(default_factory=ServerConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    admin: AdminConfig = Field(default_factory=AdminConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    request_log: RequestLogConfig = Field(default_factory=RequestLogConfig)
    auth_failures: AuthFailuresConfig = Field(default_factory=AuthFailuresConfig)
    providers: dict[str, ProviderConfig] = Field(min_length=1)
    models: dict[str, RouteConfig] = Field(min_length=1)
    # "provider/model" -> its price (or its dated prices), over the genai-prices catalogue.
    prices: dict[str, Prices] = Field(default_factory=dict)
    billing: BillingConfig = Field(default_factory=BillingConfig)
    keys: list[KeyConfig] = Field(default_factory=list)
    breaker: BreakerConfig = Field(default_factory=BreakerConfig)
    streams: StreamsConfig = Field(default_factory=StreamsConfig)
    reload: ReloadConfig = Field(default_factory=ReloadConfig)
    # "provider/model -> provider/model" (price-table keys; "*" on the left: every model):
    # what each request would have cost at the right-hand side's prices.
    what_if: list[str] = Field(default_factory=list)
    customers: dict[str, CustomerConfig] = Field(default_factory=dict)
    tags: dict[str, ScopeBudgets] = Field(default_factory=dict)
    global_: ScopeBudgets = Field(default_factory=ScopeBudgets, alias="global")
    budgeting: BudgetingConfig = Field(default_factory=BudgetingConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    reconcile: list[ReconcileConfig] = Field(default_factory=list)
    # Secrets of the services deployed beside the proxy (VARIABLE: value), checked with the
    # proxy's own: a published demo value beside a real provider key stops the config
    # loading (see proxy.published_secrets). Nothing else reads them.
    stack_secrets: dict[Annotated[str, Field(pattern=_ENV_NAME)], SecretStr] = Field(
        default_factory=dict
    )

    @field_validator("customers")
    @classmethod
    def _normal_customers(cls, value: dict[str, CustomerConfig]) -> dict[str, CustomerConfig]:
        return _normal_keys(value, normal_id, "customer")

    @field_validator("tags")
    @classmethod
    def _normal_tags(cls, value: dict[str, ScopeBudgets]) -> dict[str, ScopeBudgets]:
        return _normal_keys(value, normal_tag, "tag")

    @model_validator(mode="after")
    def _targets_name_providers(self) -> Config:
        for route_name, route in self.models.items():
            for i, target in enumerate(route.targets):
                if target.provider not in self.providers:
                    known = ", ".join(sorted(self.providers))
                    raise ValueError(
                        f"models.{route_name}.targets.{i}.provider: target provider "
                        f"{target.provider!r} is not defined under providers (known: {known})"
                    )
            self._one_api(route_name, route)
        for key in self.prices:
            if "/" not in key:
                raise ValueError(f"prices: key {key!r} must be 'provider/model'")
        for tag in self.tags:
            if "=" not in tag.strip("="):
                raise ValueError(f"tags: key {tag!r} must be 'name=value', e.g. feature=story")
        if self.metrics.port is not None and self.metrics.port == self.server.port:
            raise ValueError("metrics.port must differ from server.port (or be left unset)")
        self._reconciled_providers_have_reports()
        return self

    def _one_api(self, route_name: str, route: RouteConfig) -> None:
        """A route serves one client API: Anthropic's Messages API when its targets are
        `anthropic` providers, the OpenAI-compatible endpoints otherwise; never both (a
        fallback could not turn one API's request into the other's)."""
        kinds = {self.providers[t.provider].kind for t in route.targets}
        if len({API_OF_KIND[kind] for kind in kinds}) > 1:
            raise ValueError(
                f"models.{route_name}: targets mix anthropic providers (Messages API) with "
                f"{', '.join(sorted(kinds - {'anthropic'}))} providers (OpenAI API): a route "
                "serves one API, so split it into two routes"
            )

    def _reconciled_providers_have_reports(self) -> None:
        seen: set[str] = set()
        for i, entry in enumerate(self.reconcile):
            provider = self.providers.get(entry.provider)
            if provider is None:
                known = ", ".join(sorted(self.providers))
                raise ValueError(
                    f"reconcile.{i}.provider: {entry.provider!r} is not defined under "
                    f"providers (known: {known})"
                )
            if provider.report is None:
                raise ValueError(
                    f"reconcile.{i}.provider: provider {entry.provider!r} has no 'report' "
                    "(kind, admin_key_env) to reconcile against"
                )
            if entry.provider in seen:
                raise ValueError(f"reconcile: provider {entry.provider!r} is listed twice")
            seen.add(entry.provider)


ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")


def interpolate_env(value: Any, env: Mapping[str, str], path: str = "") -> Any:
    """Replace `${VAR}` / `${VAR:-default}` in every string of a loaded YAML tree."""
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            # As in a shell, `:-` also replaces a variable that is set but empty.
            if env.get(name) or (name in env and default is None):
                return env[name]
            if default is not None:
                return default
            raise ConfigError(
                f"{path or '<root>'}: environment variable {name} is not set "
                f"(set it, or write ${{{name}:-default}})"
            )

        return ENV_REF.sub(substitute, value)
    if isinstance(value, dict):
        return {
            k: interpolate_env(v, env, f"{path}.{k}" if path else str(k)) for k, v in value.items()
        }
    if isinstance(value, list):
        return [interpolate_env(v, env, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def env_secret(name: str, env: Mapping[str, str] | None = None) -> SecretStr:
    """The secret in environment variable `name` (the config names variables that hold
    secrets needed only by some commands, such as report admin keys)."""
    value = (os.environ if env is None else env).get(name)
    if not value:
        raise ConfigError(f"environment variable {name} is not set (it holds the admin key)")
    return SecretStr(value)


class _DecimalLoader(yaml.SafeLoader):
    """YAML loader that reads numbers with a fraction as Decimal: money never passes
    through a binary float, not even while the config is being read."""


def _construct_decimal(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Decimal:
    text = loader.construct_scalar(node).replace("_", "")
    try:
        return Decimal(text)
    except ArithmeticError:
        return Decimal(str(loader.construct_yaml_float(node)))  # .inf, .nan: rejected later


_DecimalLoader.add_constructor("tag:yaml.org,2002:float", _construct_decimal)


def load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_DecimalLoader)  # a SafeLoader subclass: no arbitrary objects


def _format_validation_error(source: str, error: ValidationError) -> str:
    lines = [f"{source}: invalid config ({error.error_count()} problem(s)):"]
    for item in error.errors(include_url=False):
        loc = list(item["loc"])
        if loc[:1] == ["prices"] and loc[2:3] in (["one"], ["dated"]):
            del loc[2]  # the shape's tag (see Prices)
        where = ".".join(str(part) for part in loc) or "<root>"
        lines.append(f"  {where}: {item['msg']}")
    return "\n".join(lines)


def parse_config(
    data: Any, *, source: str = "<config>", env: Mapping[str, str] | None = None
) -> Config:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping")
    try:
        resolved = interpolate_env(data, os.environ if env is None else env)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    try:
        config = Config.model_validate(resolved)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(source, exc)) from None
    refusal = published_secrets_refusal(data, resolved)
    if refusal is not None:
        raise ConfigError(f"{source}: {refusal}")
    return config


def load_config(path: str | os.PathLike[str], *, env: Mapping[str, str] | None = None) -> Config:
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read config: {exc.strerror}") from None
    return load_config_text(text, source=source, env=env)


def load_config_text(
    text: str, *, source: str = "<config>", env: Mapping[str, str] | None = None
) -> Config:
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None
    return parse_config(data, source=source, env=env)
