"""Building config snapshots (the complete check a reload makes) and what a reload changed."""

from __future__ import annotations

import copy

import pytest

from proxy.config import parse_config
from proxy.errors import ConfigError
from proxy.reload import describe_changes, restart_only_changes
from proxy.state import build_snapshot

BASE = {
    "providers": {
        "a": {"base_url": "http://127.0.0.1:1/v1"},
        "b": {"base_url": "http://127.0.0.1:2/v1"},
        "az": {"kind": "azure", "base_url": "https://r.openai.azure.com", "api_version": "v"},
    },
    "models": {
        "chat": {"targets": [{"provider": "a", "model": "gpt-4o"}]},
        "cheap": {
            "strategy": "cheapest",
            "targets": [{"provider": "a", "model": "gpt-4o"}, {"provider": "b", "model": "m"}],
        },
    },
    "prices": {"a/gpt-4o": {"input": 2.5, "output": 10}, "b/m": {"input": 1, "output": 1}},
    "what_if": ["a/gpt-4o -> openrouter/ai21/jamba-large-1.7"],  # priced by the catalogue
}


def config(**changes: object) -> object:
    data = copy.deepcopy(BASE)
    data.update(changes)
    return parse_config(data, source="test.yaml", env={})


def test_a_snapshot_resolves_routes_and_alternatives() -> None:
    snapshot = build_snapshot(config())
    cheap = snapshot.routes["cheap"]
    assert [t.key for t in cheap.targets] == [("a", "gpt-4o"), ("b", "m")]
    assert [name for name, _ in cheap.targets[0].what_if] == ["openrouter/ai21/jamba-large-1.7"]
    assert snapshot.generation == 1
    assert b'"id":"cheap"' in snapshot.models_body


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"what_if": ["a/gpt-4o -> nowhere/none"]}, r"test\.yaml: .*what_if\[0\]: no price"),
        ({"prices": {"a/gpt-4o": {"input": 1, "output": 1}}}, r"cheapest .* b/m"),
    ],
)
def test_invalid_snapshots_are_refused_with_the_reason(changes: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_snapshot(config(**changes), source="test.yaml")


@pytest.mark.parametrize(
    ("providers", "message"),
    [
        ({"az": {"kind": "azure", "base_url": "https://r"}}, "needs api_version"),
        ({"a": {"base_url": "http://x", "api_version": "v"}}, "kind: azure only"),
        ({"a": {"base_url": "ftp://x"}}, "http"),
    ],
)
def test_provider_config_errors(providers: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config(providers={**BASE["providers"], **providers})


def test_a_reload_keeps_unchanged_providers_and_says_what_changed() -> None:
    old = build_snapshot(config())
    providers = {
        "a": BASE["providers"]["a"],  # unchanged: same object, same pool
        "b": {"base_url": "http://127.0.0.1:3/v1"},  # changed: a new pool
        "c": {"base_url": "http://127.0.0.1:4/v1"},  # added; az removed
    }
    models = {
        "chat": {"targets": [{"provider": "a", "model": "gpt-4o"}]},
        "cheap": BASE["models"]["cheap"],
        "new": {"targets": [{"provider": "c", "model": "x"}]},
    }
    new = build_snapshot(config(providers=providers, models=models), previous=old)

    assert new.providers["a"] is old.providers["a"]
    assert new.providers["b"] is not old.providers["b"]
    assert (new.generation, new.providers["b"].since_generation) == (2, 2)
    assert new.providers["a"].since_generation == 1
    assert describe_changes(old, new) == {
        "generation": 2,
        "providers": {"added": ["c"], "removed": ["az"], "changed": ["b"], "kept": ["a"]},
        "routes": {"added": ["new"], "removed": [], "changed": ["cheap"]},
    }


def test_server_and_store_changes_need_a_restart() -> None:
    assert restart_only_changes(config(), config()) == []
    assert restart_only_changes(config(), config(server={"port": 9})) == ["server"]
    assert restart_only_changes(config(), config(store={"backend": "redis"})) == ["store"]
