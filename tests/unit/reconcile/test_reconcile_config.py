"""The config of reconciliation: a provider's `report`, the `reconcile` entries, and the
environment variable holding the admin key."""

from __future__ import annotations

from decimal import Decimal

import pytest

from proxy.config import env_secret, load_config_text
from proxy.errors import ConfigError

BASE = """
providers:
  openai:
    base_url: https://api.openai.com/v1
    report: {kind: openai, admin_key_env: OPENAI_ADMIN_KEY, project_ids: [proj_1]}
  other: {base_url: https://example.com/v1}
models:
  m: {targets: [{provider: openai, model: m}]}
"""


def test_defaults_and_a_tolerance_given_as_one_number() -> None:
    config = load_config_text(BASE + "reconcile: [{provider: openai, tolerance_pct: 1.5}]")
    (entry,) = config.reconcile
    assert (entry.every, entry.every_s, entry.days, entry.lag_days) == ("1d", 86400, 3, 1)
    assert (entry.tolerance_pct.tokens, entry.tolerance_pct.cost) == (Decimal("1.5"),) * 2
    default = load_config_text(BASE + "reconcile: [{provider: openai, every: 6h}]").reconcile[0]
    assert default.every_s == 21600
    assert (default.tolerance_pct.tokens, default.tolerance_pct.cost) == (0, Decimal("0.5"))
    report = config.providers["openai"].report
    assert report is not None and report.base_url is None and report.project_ids == ["proj_1"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("reconcile: [{provider: nope}]", "reconcile.0.provider: 'nope' is not defined"),
        ("reconcile: [{provider: other}]", "provider 'other' has no 'report'"),
        ("reconcile: [{provider: openai}, {provider: openai}]", "listed twice"),
        ("reconcile: [{provider: openai, every: 1w}]", "every"),
        ("reconcile: [{provider: openai, every: 0d}]", "longer than zero"),
        ("reconcile: [{provider: openai, days: 0}]", "days"),
        ("reconcile: [{provider: openai, tolerance_pct: {tokens: 101}}]", "tolerance_pct.tokens"),
        ("reconcile: [{provider: openai, tolerance_pct: -1}]", "tolerance_pct"),
    ],
)
def test_bad_reconcile_entries(extra: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config_text(BASE + extra)


@pytest.mark.parametrize(
    ("report", "message"),
    [
        ("{kind: gemini, admin_key_env: K}", "report.kind"),
        ("{kind: openai, admin_key_env: 'sk-admin-not-a-name'}", "admin_key_env"),
        ("{kind: openai, admin_key_env: K, base_url: api.openai.com}", "http"),
        ("{kind: openai}", "admin_key_env"),
    ],
)
def test_bad_reports(report: str, message: str) -> None:
    text = BASE.replace("{kind: openai, admin_key_env: OPENAI_ADMIN_KEY, project_ids: [proj_1]}",
                        report)  # fmt: skip
    with pytest.raises(ConfigError, match=message):
        load_config_text(text)


def test_the_admin_key_comes_from_the_named_variable() -> None:
    assert env_secret("K", {"K": "sk-admin-1"}).get_secret_value() == "sk-admin-1"
    with pytest.raises(ConfigError, match="environment variable K is not set"):
        env_secret("K", {})
    with pytest.raises(ConfigError, match="environment variable K is not set"):
        env_secret("K", {"K": ""})
