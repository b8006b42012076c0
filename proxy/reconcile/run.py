"""One reconciliation of a configured provider: its report (given, or fetched), the
proxy's records, the comparison. Shared by `costproxy reconcile` and the scheduled runs."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

import aiohttp

from proxy.accounting.config_prices import date_ms
from proxy.accounting.price_book import PriceBook
from proxy.config import Config, ReportConfig, TolerancePct, env_secret
from proxy.reconcile.compare import Scope, reconcile
from proxy.reconcile.fetch import fetch_report
from proxy.reconcile.figures import Tolerance
from proxy.reconcile.prices import table_prices
from proxy.reconcile.recorded import recorded_rows
from proxy.reconcile.report import ProviderReport
from proxy.reconcile.reports import parse_report
from proxy.store.base import Store

__all__ = [
    "ReconcileSetupError",
    "fetch_provider_report",
    "report_config",
    "run_reconcile",
    "tolerance_of",
]


class ReconcileSetupError(ValueError):
    """The config does not allow this reconciliation; the message says what is missing."""


def report_config(config: Config, provider: str) -> ReportConfig:
    if provider not in config.providers:
        known = ", ".join(sorted(config.providers))
        raise ReconcileSetupError(f"no provider {provider!r} in the config (known: {known})")
    report = config.providers[provider].report
    if report is None:
        raise ReconcileSetupError(
            f"provider {provider!r} has no 'report' in the config: add "
            "report: {kind: openai|anthropic, admin_key_env: NAME}"
        )
    return report


def tolerance_of(pct: TolerancePct) -> Tolerance:
    return Tolerance(tokens_pct=Decimal(pct.tokens), cost_pct=Decimal(pct.cost))


async def fetch_provider_report(
    session: aiohttp.ClientSession,
    report: ReportConfig,
    from_day: date,
    to_day: date,
    env: Mapping[str, str] | None = None,
) -> ProviderReport:
    """The provider's report of [from_day, to_day], fetched with the admin key from the
    environment variable the config names. Raises ConfigError (key not set),
    ReportFetchError, ReportFormatError."""
    key = env_secret(report.admin_key_env, env).get_secret_value()
    usage, costs = await fetch_report(session, report, key, from_day, to_day)
    return parse_report(report.kind, usage, costs)


async def run_reconcile(
    store: Store,
    config: Config,
    prices: PriceBook,
    provider: str,
    report: ProviderReport,
    from_day: date,
    to_day: date,
    tolerance: Tolerance,
) -> dict[str, Any]:
    """The comparison of `provider`'s records with `report` (see compare.reconcile)."""
    provider_config = config.providers[provider]
    scope = Scope()
    if provider_config.report is not None:
        scope = Scope(
            frozenset(provider_config.report.project_ids),
            frozenset(provider_config.report.api_key_ids),
        )
    rows = await recorded_rows(store, provider, from_day, to_day)
    return reconcile(
        provider=provider,
        report=report,
        proxy_rows=rows,
        from_day=from_day,
        to_day=to_day,
        tolerance=tolerance,
        price_of=table_prices(
            prices,
            provider_config.price_namespace or provider,
            date_ms(to_day),
            provider_config.base_url,
            provider_config.kind,
        ),
        scope=scope,
    )
