"""Where a price comes from: config entries (every field, checked), the catalogue (provider
matched by name, alias, kind or base_url), and why a target is unpriced."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from proxy.accounting.catalogue import Catalogue, load_catalogue
from proxy.accounting.config_prices import config_spec, date_ms
from proxy.accounting.price_book import PriceBook, ResolvedPrice, Unpriced
from proxy.accounting.pricing import PriceSpec, Rates, TokenRates, cost_nusd
from proxy.accounting.records import Usage
from proxy.config import PriceConfig, parse_config
from proxy.errors import ConfigError

NOW = date_ms(date(2026, 12, 1)) + 43_200_000
CATALOGUE = load_catalogue()


def entry(**fields: object) -> PriceConfig:
    return PriceConfig.model_validate(fields)


def no_catalogue() -> Catalogue:
    raise AssertionError("the catalogue was loaded although the config prices the target")


# --- config entries -------------------------------------------------------------------------


def test_a_dimension_left_out_costs_its_parents_price() -> None:
    spec = config_spec(entry(input="2", output="8", cache_write_5m="2.5")).spec
    rates = spec.rates(NOW).base
    assert rates == TokenRates(
        input=2 * 10**9,
        cached_input=2 * 10**9,
        cache_write_5m=2_500_000_000,
        cache_write_1h=2_500_000_000,  # a 1-hour write without its own price: the 5-minute one
        input_audio=2 * 10**9,
        input_image=2 * 10**9,
        output=8 * 10**9,
        reasoning=8 * 10**9,
        output_audio=8 * 10**9,
        output_image=8 * 10**9,
    )


def test_the_old_three_price_form_still_means_what_it_meant() -> None:
    old = config_spec(entry(input="0.15", cached_input="0.075", output="0.60")).spec
    assert old == PriceSpec.flat(Rates(TokenRates.flat(150_000_000, 600_000_000, 75_000_000)))


@pytest.mark.parametrize(
    ("price", "message"),
    [
        ({"input": 1, "output": 1, "tiers": [{"above_input_tokens": 5, "cached_input": 1}]},
         "gives no base cached_input price"),
        ({"input": 1, "output": 1, "tiers": [{"above_input_tokens": 5}]}, "names at least one"),
        ({"input": 1, "output": 1, "tiers": [{"above_input_tokens": 9, "input": 2},
                                             {"above_input_tokens": 5, "input": 3}]}, "ascending"),
        ({"input": 1, "output": 1, "service_tiers": {"batch": {"input": 1}}}, "batch:"),
        ({"input": 1, "output": 1, "reasoning": Decimal("0.0000000001")}, "9 decimal places"),
        ({"input": 1, "output": 1, "per_request": -1}, "greater than or equal to 0"),
        ({"input": 1, "output": 1, "form": "2026-01-01"}, "Extra inputs"),
        ([], "at least one entry"),
        ([{"input": 1, "output": 1}, {"input": 2, "output": 2}], "only one entry"),
        ([{"from": "2026-01-01", "input": 1, "output": 1},
          {"from": "2026-01-01", "input": 2, "output": 2}], "same from: date"),
        ({"from": "2026-02-30", "input": 1, "output": 1}, "from"),
    ],
)  # fmt: skip
def test_bad_price_entries_are_named(price: object, message: str) -> None:
    data = {
        "providers": {"p": {"base_url": "http://127.0.0.1:1"}},
        "models": {"m": {"targets": [{"provider": "p", "model": "m"}]}},
        "prices": {"p/m": price},
    }
    with pytest.raises((ConfigError, ValueError), match=message) as caught:
        PriceBook(parse_config(data, env={}).prices, no_catalogue)
    assert "prices.p/m" in str(caught.value)


def test_config_entries_win_and_a_dated_snapshot_falls_back_to_its_base_entry() -> None:
    book = PriceBook(
        {
            "openai/gpt-4o": entry(input="1", output="2"),
            "openai/gpt-4o-2024-05-13": entry(input="5", output="15"),
        },
        no_catalogue,
    )
    assert book.lookup("openai", "gpt-4o") == config_spec(entry(input="1", output="2")).spec
    assert book.lookup("openai", "gpt-4o-2024-08-06") == book.lookup("openai", "gpt-4o")
    dated = book.resolve("openai", "gpt-4o-2024-05-13")
    assert isinstance(dated, ResolvedPrice)
    assert (dated.source.kind, dated.source.key) == ("config", "openai/gpt-4o-2024-05-13")


def test_the_catalogue_is_only_loaded_for_a_target_the_config_does_not_price() -> None:
    loads: list[int] = []

    def counted() -> Catalogue:
        loads.append(1)
        return CATALOGUE

    book = PriceBook({"local/llama": entry(input="0", output="0")}, counted)
    assert book.lookup("local", "llama") is not None
    assert loads == []
    assert book.lookup("openai", "gpt-4o") is not None
    assert book.lookup("openai", "gpt-4o-mini") is not None
    assert loads == [1]


# --- the catalogue --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("namespace", "base_url", "kind", "expected"),
    [
        ("openai", None, None, ("openai", "price_namespace")),
        ("OpenAI", None, None, ("openai", "price_namespace")),
        ("xai", None, None, ("x-ai", "price_namespace")),
        ("bedrock", None, None, ("aws", "price_namespace")),
        ("gemini", None, None, ("google", "price_namespace")),
        ("primary", "https://api.openai.com/v1", None, ("openai", "base_url")),
        ("fast", "https://api.groq.com/openai/v1", None, ("groq", "base_url")),
        ("g", "https://generativelanguage.googleapis.com/v1beta/openai", None,
         ("google", "base_url")),
        ("claude-compat", "https://api.anthropic.com/v1", None, ("anthropic", "base_url")),
        ("east", "https://my-east.openai.azure.com", "azure", ("azure", "kind")),
        ("openai", "https://api.deepseek.com/v1", None, ("openai", "price_namespace")),
        ("evil", "https://api.openai.com.example.net/v1", None, None),
        ("local", "http://127.0.0.1:9000/v1", None, None),
    ],
)  # fmt: skip
def test_which_catalogue_provider_a_costproxy_provider_is(
    namespace: str, base_url: str | None, kind: str | None, expected: tuple[str, str] | None
) -> None:
    assert CATALOGUE.provider_id(namespace, base_url, kind) == expected


def test_a_catalogue_price_says_where_it_comes_from() -> None:
    answer = PriceBook({}).resolve("primary", "gpt-4o-2024-11-20", "https://api.openai.com/v1")
    assert isinstance(answer, ResolvedPrice)
    source = answer.source
    assert (source.kind, source.key, source.catalogue_version) == (
        "catalogue",
        "openai/gpt-4o",
        CATALOGUE.version,
    )
    assert source.catalogue is not None
    assert (source.catalogue.via, source.catalogue.owner_id) == ("base_url", "openai")
    # File searches are priced by the catalogue but not measured by costproxy.
    assert source.catalogue.not_billed == ("storage_searches_kcount",)


@pytest.mark.parametrize(
    ("namespace", "model", "reason"),
    [
        ("local", "llama", "has no provider named 'local'"),
        ("openai", "no-such-model", "has no model 'no-such-model' for provider 'openai'"),
        ("openai", "whisper-1", "only in units costproxy does not measure"),
    ],
)
def test_why_a_target_is_unpriced(namespace: str, model: str, reason: str) -> None:
    answer = PriceBook({}).resolve(namespace, model)
    assert isinstance(answer, Unpriced)
    assert reason in answer.reason


def test_a_fallback_model_has_no_service_tier_prices() -> None:
    # Azure serves OpenAI's models: the library prices them by OpenAI's standard rates and
    # ignores the request context, so a priority response is not charged the premium.
    azure = PriceBook({}).lookup("azure", "gpt-4o")
    openai = PriceBook({}).lookup("openai", "gpt-4o")
    assert azure is not None and openai is not None
    priority = Usage(1000, 0, 1000, service_tier="priority")
    assert cost_nusd(priority, azure, NOW) == cost_nusd(Usage(1000, 0, 1000), openai, NOW)
    assert cost_nusd(priority, openai, NOW) > cost_nusd(priority, azure, NOW)
