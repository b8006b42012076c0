"""`costproxy prices` and check-config's unpriced targets, run as a user runs them (offline:
`--config` resolves prices from the installed catalogue; `diff` reads the shipped snapshot)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from proxy.accounting.catalogue import load_catalogue
from proxy.accounting.catalogue_dump import dump, read_dump, write_dump
from tests.support.procs import REPO, costproxy

ENV = {"PATH": "/usr/bin:/bin"}  # no secrets set: prices commands do not need them

CONFIG = {
    "admin": {"token": "${SOME_ADMIN_TOKEN}"},
    "providers": {
        "openai": {"base_url": "https://api.openai.com/v1", "api_key": "${OPENAI_API_KEY}"},
        "fast": {"base_url": "https://api.groq.com/openai/v1"},
        "local": {"base_url": "http://127.0.0.1:9/v1"},
    },
    "models": {
        "smart": {
            "targets": [
                {"provider": "openai", "model": "gpt-4o"},
                {"provider": "fast", "model": "llama-3.3-70b-versatile"},
            ]
        },
        "mini": {"targets": [{"provider": "openai", "model": "gpt-4o-mini"}]},
        "house": {"targets": [{"provider": "local", "model": "llama-house"}]},
        "house-too": {"targets": [{"provider": "local", "model": "llama-house"}]},
    },
    "prices": {
        "openai/gpt-4o-mini": [
            {"input": "0.15", "cached_input": "0.075", "output": "0.60"},
            {"from": "2020-06-01", "input": "0.1", "output": "0.5"},
        ]
    },
}


@pytest.fixture
def config(tmp_path: Path) -> str:
    path = tmp_path / "prices.yaml"
    path.write_text(yaml.safe_dump(CONFIG, sort_keys=False))
    return str(path)


def run(*args: str) -> str:
    result = costproxy(*args, env=ENV)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def test_check_config_names_every_target_without_a_price(config: str) -> None:
    result = costproxy("check-config", config, env={**ENV, "SOME_ADMIN_TOKEN": "t" * 20,
                                                    "OPENAI_API_KEY": "sk-x"})  # fmt: skip
    assert result.returncode == 0, result.stderr  # served, with an unknown cost: a warning
    warnings = [line for line in result.stdout.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: models.house: target local/llama-house has no price (no price under "
        "prices: for local/llama-house, and the catalogue (genai-prices "
        f"{load_catalogue().version}) has no provider named 'local' (by its name, "
        "price_namespace or base_url)); its requests would be recorded with an unknown cost"
    ]
    assert "valid" in result.stdout


def test_list_shows_each_target_once_with_its_source(config: str) -> None:
    report = json.loads(run("prices", "list", "--config", config, "--json"))
    by_target = {(e["provider"], e["model"]): e for e in report["targets"]}
    assert list(by_target) == [
        ("openai", "gpt-4o"),
        ("fast", "llama-3.3-70b-versatile"),
        ("openai", "gpt-4o-mini"),
        ("local", "llama-house"),
    ]
    gpt_4o = by_target[("openai", "gpt-4o")]
    assert gpt_4o["source"]["key"] == "openai/gpt-4o"
    assert gpt_4o["source"]["matched_by"] == "price_namespace"
    assert gpt_4o["now"]["standard"]["usd_per_mtok"]["input"] == "2.5"
    groq = by_target[("fast", "llama-3.3-70b-versatile")]
    assert (groq["source"]["catalogue_provider"], groq["source"]["matched_by"]) == (
        "groq",
        "base_url",
    )
    mini = by_target[("openai", "gpt-4o-mini")]
    assert mini["source"] == {"kind": "config", "key": "openai/gpt-4o-mini"}
    assert mini["now"]["from"] == "2020-06-01"
    assert mini["now"]["standard"]["usd_per_mtok"]["cached_input"] == "0.1"  # its input's
    assert [v["from"] for v in mini["versions"]] == [None, "2020-06-01"]
    house = by_target[("local", "llama-house")]
    assert (house["priced"], house["routes"]) == (False, ["house", "house-too"])
    assert report["unpriced"] == 1

    table = run("prices", "list", "--config", config)
    assert "openai    gpt-4o-mini" in table and "config openai/gpt-4o-mini" in table
    assert "UNPRICED" in table


def test_show_prints_every_dimension_tier_and_variant(config: str) -> None:
    out = run("prices", "show", "openai", "gpt-5.4", "--config", config)
    assert "source: genai-prices" in out
    assert "above 272,000 input tokens: input 5" in out
    for name in ("cache_write_1h", "input_audio", "output_image", "per_web_search", "flex"):
        assert name in out
    entry = json.loads(run("prices", "show", "local", "llama-house", "--config", config, "--json"))
    assert entry["priced"] is False and "has no provider named 'local'" in entry["reason"]
    result = costproxy("prices", "show", "nowhere", "m", "--config", config, env=ENV)
    assert result.returncode == 1
    assert "No provider 'nowhere'" in result.stderr


def test_diff_shows_what_changed_since_the_previous_catalogue(config: str) -> None:
    shipped = read_dump(str(REPO / "proxy" / "data" / "catalogue-previous.json.gz"))
    installed = load_catalogue()
    answer = json.loads(run("prices", "diff", "--json"))["catalogue"]
    assert (answer["old"], answer["new"]) == (shipped["version"], installed.version)
    # 0.2.2 -> 0.2.3: Anthropic's fast mode got its prices (genai-prices' changelog).
    opus = next(m for m in answer["models"] if m["model"] == "anthropic/claude-opus-4-8")
    assert {"path": "variants.speed=fast.input_mtok", "old": "-", "new": "10"} in opus["leaves"]
    assert "anthropic/claude-opus-4-8" in run("prices", "diff")


def test_diff_against_another_snapshot_and_the_config(config: str, tmp_path: Path) -> None:
    installed = load_catalogue()
    older = dump(installed.version, installed.providers)
    older["version"] = "0.0.0-test"
    older["models"]["openai/gpt-4o"]["prices"]["always"]["input_mtok"] = "5"
    del older["models"]["openai/gpt-4o-mini"]
    path = tmp_path / "older.json.gz"
    write_dump(older, str(path))

    out = run("prices", "diff", "--against", str(path), "--provider", "openai", "--config", config)
    assert "genai-prices 0.0.0-test -> " in out
    assert "changed openai/gpt-4o\n      prices.always.input_mtok: 5 -> 2.5" in out
    assert "added openai/gpt-4o-mini" in out
    assert "anthropic/" not in out.split("Config prices")[0]
    # The config's gpt-4o-mini (its 2020 price, in force now) against the catalogue's.
    config_part = out.split("Config prices")[1]
    assert "openai/gpt-4o-mini: differs from the catalogue's openai/gpt-4o-mini" in config_part
    assert "standard.usd_per_mtok.input: catalogue 0.15, config 0.1" in config_part
    assert "variants.priority: catalogue has this variant, config -" in config_part
