"""proxy.config: env interpolation, exact YAML numbers, validation messages, shipped configs."""

from __future__ import annotations

import copy
import re
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from proxy.accounting.config_prices import config_spec
from proxy.accounting.pricing import PriceSpec, Rates, TokenRates
from proxy.config import (
    Config,
    interpolate_env,
    load_config,
    load_yaml,
    parse_config,
    price_entries,
)
from proxy.errors import ConfigError
from proxy.state import build_snapshot
from tests.support.procs import REPO

ROOT = REPO
ADMIN_TOKEN = "admin-token-0123456789abcdef"


# --- interpolate_env ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "env", "expected"),
    [
        ("${A}", {"A": "1"}, "1"),
        ("x-${A}-y", {"A": "1"}, "x-1-y"),
        ("${A}${B}", {"A": "1", "B": "2"}, "12"),
        ("${B:-dflt}", {}, "dflt"),
        ("${B:-}", {}, ""),
        ("${B:-http://h:1/v1}", {}, "http://h:1/v1"),
        ("${A:-dflt}", {"A": "set"}, "set"),
        ("${A:-dflt}", {"A": ""}, "dflt"),  # as in a shell: empty counts as unset for :-
        ("${A}", {"A": ""}, ""),  # set but empty, no default: left for validation to judge
        ("${A}", {"A": "${B}"}, "${B}"),  # values are not expanded again
        ("$A and {A}", {"A": "1"}, "$A and {A}"),
        ("${1A}", {}, "${1A}"),  # not a variable name
        ("plain", {}, "plain"),
        (3, {}, 3),
        (Decimal("0.15"), {}, Decimal("0.15")),
        (None, {}, None),
        (True, {}, True),
        (
            {"a": ["${A}", {"b": "${B:-2}"}], "n": 1},
            {"A": "1"},
            {"a": ["1", {"b": "2"}], "n": 1},
        ),
    ],
)
def test_interpolate_env(value: Any, env: dict[str, str], expected: Any) -> None:
    assert interpolate_env(value, env) == expected


@pytest.mark.parametrize(
    ("tree", "where"),
    [
        ({"keys": [{"key": "${ACME_KEY}"}]}, "keys[0].key"),
        ({"providers": {"openai": {"api_key": "Bearer ${ACME_KEY}"}}}, "providers.openai.api_key"),
        ("${ACME_KEY}", "<root>"),
    ],
)
def test_missing_env_var_error_names_path_and_variable(tree: Any, where: str) -> None:
    with pytest.raises(ConfigError) as info:
        interpolate_env(tree, {"OTHER": "x"})
    message = str(info.value)
    assert message.startswith(f"{where}: ")
    assert "ACME_KEY is not set" in message


# --- load_yaml: numbers are exact ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x: 0.1", Decimal("0.1")),
        ("x: 0.075", Decimal("0.075")),
        ("x: 1.10", Decimal("1.10")),
        ("x: 0.000000001", Decimal("0.000000001")),
        ("x: 1_000.25", Decimal("1000.25")),
        ("x: -2.5", Decimal("-2.5")),
        ("x: 1.5e+3", Decimal("1500")),
    ],
)
def test_yaml_floats_are_read_as_exact_decimals(text: str, expected: Decimal) -> None:
    value = load_yaml(text)["x"]
    assert type(value) is Decimal
    assert value == expected


@pytest.mark.parametrize(("text", "expected"), [("x: 3", 3), ("x: '0.1'", "0.1"), ("x: yes", True)])
def test_yaml_non_floats_keep_their_types(text: str, expected: Any) -> None:
    value = load_yaml(text)["x"]
    assert type(value) is type(expected)
    assert value == expected


def test_yaml_loader_is_safe() -> None:
    with pytest.raises(yaml.YAMLError, match="python/object"):
        load_yaml("x: !!python/object/apply:os.system ['true']")


# --- parse_config: validation messages -----------------------------------------------------

MINIMAL: dict[str, Any] = {
    "providers": {"openai": {"base_url": "https://api.openai.com/v1/", "api_key": "sk-up"}},
    "models": {"x": {"targets": [{"provider": "openai", "model": "gpt-4o-mini"}]}},
    "keys": [{"key": "sk-acme", "customer": "acme"}],
}


def with_changes(**sections: Any) -> dict[str, Any]:
    data = copy.deepcopy(MINIMAL)
    data.update(sections)
    return data


def test_minimal_config_gets_defaults() -> None:
    config = parse_config(copy.deepcopy(MINIMAL), env={})
    assert config.providers["openai"].base_url == "https://api.openai.com/v1"  # slash stripped
    assert config.server.port == 8080
    assert config.store.backend == "sqlite"
    assert config.admin.token is None
    assert config.keys[0].customer == "acme"
    assert config.prices == {}


@pytest.mark.parametrize(
    ("data", "fragments"),
    [
        pytest.param(
            with_changes(
                models={
                    "x": {
                        "targets": [
                            {"provider": "openai", "model": "m"},
                            {"provider": "nope", "model": "m"},
                        ]
                    }
                }
            ),
            ["models.x.targets.1.provider", "'nope'", "known: openai"],
            id="unknown-provider",
        ),
        pytest.param(
            with_changes(serverr={}),
            ["serverr: Extra inputs are not permitted"],
            id="unknown-top-key",
        ),
        pytest.param(
            with_changes(server={"hots": "0.0.0.0"}),
            ["server.hots: Extra inputs"],
            id="unknown-nested-key",
        ),
        pytest.param(
            with_changes(
                models={"x": {"targets": [{"provider": "openai", "model": "m", "wieght": 2}]}}
            ),
            ["models.x.targets.0.wieght: Extra inputs"],
            id="unknown-target-key",
        ),
        pytest.param(
            with_changes(models={"x": {"targets": []}}), ["models.x.targets:"], id="no-targets"
        ),
        pytest.param(with_changes(models={}), ["models:"], id="no-models"),
        pytest.param(with_changes(providers={}), ["providers:"], id="no-providers"),
        pytest.param(
            with_changes(providers={"openai": {"base_url": "api.openai.com/v1"}}),
            ["providers.openai.base_url", "http(s) URL"],
            id="bad-url",
        ),
        pytest.param(
            with_changes(keys=[{"key": "sk-a"}]),
            ["keys.0:", "'customer' is required unless the key is trusted"],
            id="key-without-customer",
        ),
        pytest.param(
            with_changes(keys=[{"key": "sk-a", "key_sha256": "a" * 64, "customer": "c"}]),
            ["keys.0:", "exactly one of 'key' or 'key_sha256'"],
            id="key-and-hash",
        ),
        pytest.param(
            with_changes(keys=[{"customer": "c"}]),
            ["keys.0:", "exactly one of 'key' or 'key_sha256'"],
            id="no-secret",
        ),
        pytest.param(
            with_changes(keys=[{"key_sha256": "xyz", "customer": "c"}]),
            ["keys.0.key_sha256"],
            id="hash-not-hex",
        ),
        pytest.param(
            with_changes(keys=[{"key": "${EMPTY}", "customer": "c"}]),
            ["keys.0:", "'key' is empty"],
            id="empty-key",
        ),
        pytest.param(
            with_changes(prices={"openai/x": {"input": Decimal("-1"), "output": 1}}),
            ["prices.openai/x.input"],
            id="negative-price",
        ),
        pytest.param(
            with_changes(prices={"openai/x": {"input": Decimal("0.0000000001"), "output": 1}}),
            ["prices.openai/x.input", "9 decimal places"],
            id="price-10-decimals",
        ),
        pytest.param(
            with_changes(prices={"openai/x": {"input": 1}}),
            ["prices.openai/x.output: Field required"],
            id="price-missing-output",
        ),
        pytest.param(
            with_changes(prices={"gpt-4o": {"input": 1, "output": 1}}),
            ["must be 'provider/model'"],
            id="price-key-without-provider",
        ),
        pytest.param(
            with_changes(admin={"token": "short"}),
            ["admin.token", "16 characters"],
            id="short-admin-token",
        ),
        pytest.param(
            with_changes(
                providers={
                    "openai": {"base_url": "https://api.openai.com/v1"},
                    "claude": {"kind": "anthropic", "base_url": "https://api.anthropic.com"},
                },
                models={
                    "x": {
                        "targets": [
                            {"provider": "claude", "model": "claude-sonnet-4-5"},
                            {"provider": "openai", "model": "gpt-4o"},
                        ]
                    }
                },
            ),
            ["models.x:", "mix anthropic providers (Messages API) with openai providers"],
            id="route-mixing-apis",
        ),
        pytest.param(
            with_changes(
                providers={"claude": {"kind": "anthropic", "base_url": "https://x.example/v1"}},
                models={"x": {"targets": [{"provider": "claude", "model": "m"}]}},
            ),
            ["providers.claude", "the API root, without /v1"],
            id="anthropic-base-url-with-v1",
        ),
        pytest.param(with_changes(server={"port": 70000}), ["server.port"], id="bad-port"),
        pytest.param(with_changes(store={"backend": "mysql"}), ["store.backend"], id="bad-backend"),
    ],
)
def test_validation_errors_name_file_and_path(data: dict[str, Any], fragments: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(data, source="conf/proxy.yaml", env={"EMPTY": ""})
    message = str(info.value)
    assert message.startswith("conf/proxy.yaml: invalid config")
    for fragment in fragments:
        assert fragment in message


def test_several_problems_are_all_reported() -> None:
    data = with_changes(server={"port": -1, "hots": "h"}, keys=[{"key": "sk"}])
    with pytest.raises(ConfigError) as info:
        parse_config(data, source="c.yaml", env={})
    message = str(info.value)
    assert "(3 problem(s))" in message
    assert "server.port" in message and "server.hots" in message and "keys.0" in message


@pytest.mark.parametrize("data", [[], "text", None, 3])
def test_top_level_must_be_a_mapping(data: Any) -> None:
    with pytest.raises(ConfigError, match=r"^c\.yaml: the top level must be a mapping$"):
        parse_config(data, source="c.yaml", env={})


def test_trusted_key_needs_no_customer_and_hash_keys_are_accepted() -> None:
    config = parse_config(
        with_changes(keys=[{"key_sha256": "AB" * 32, "trusted": True, "name": "backend"}]), env={}
    )
    assert config.keys[0].trusted is True
    assert config.keys[0].customer is None


# --- load_config ----------------------------------------------------------------------------

CONFIG_YAML = """\
server: {port: "${PORT:-9090}"}
providers:
  openai: {base_url: "${UPSTREAM:-https://api.openai.com/v1}", api_key: "${OPENAI_API_KEY}"}
models:
  mini: {targets: [{provider: openai, model: gpt-4o-mini}], max_output_tokens: 512}
prices:
  openai/gpt-4o-mini: {input: 0.15, cached_input: 0.075, output: 0.60}
  openai/tiny: {input: 0.000000001, output: 0.0000005}
keys:
  - {key: "${ACME_KEY}", customer: acme, name: acme}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "costproxy.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_load_config_reads_a_file_with_exact_prices(tmp_path: Path) -> None:
    path = write(tmp_path, CONFIG_YAML)
    config = load_config(path, env={"OPENAI_API_KEY": "sk-up", "ACME_KEY": "sk-acme"})
    assert config.server.port == 9090
    assert config.providers["openai"].base_url == "https://api.openai.com/v1"
    assert config.providers["openai"].api_key is not None
    assert config.providers["openai"].api_key.get_secret_value() == "sk-up"
    assert config.keys[0].key is not None
    assert config.keys[0].key.get_secret_value() == "sk-acme"
    assert config.models["mini"].max_output_tokens == 512
    mini = config.prices["openai/gpt-4o-mini"]
    assert (mini.input, mini.cached_input, mini.output) == (
        Decimal("0.15"),
        Decimal("0.075"),
        Decimal("0.60"),
    )
    tiny = config_spec(config.prices["openai/tiny"]).spec
    assert tiny == PriceSpec.flat(Rates(TokenRates.flat(1, 500)))


def test_load_config_env_overrides_defaults(tmp_path: Path) -> None:
    env = {
        "OPENAI_API_KEY": "k",
        "ACME_KEY": "a",
        "PORT": "1234",
        "UPSTREAM": "http://127.0.0.1:9/v1",
    }
    config = load_config(write(tmp_path, CONFIG_YAML), env=env)
    assert config.server.port == 1234
    assert config.providers["openai"].base_url == "http://127.0.0.1:9/v1"


def test_load_config_missing_env_var_names_file_path_and_variable(tmp_path: Path) -> None:
    path = write(tmp_path, CONFIG_YAML)
    with pytest.raises(ConfigError) as info:
        load_config(path, env={"OPENAI_API_KEY": "sk-up"})
    assert str(info.value).startswith(
        f"{path}: keys[0].key: environment variable ACME_KEY is not set"
    )


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("providers: [unclosed", "not valid YAML"),
        ("- just\n- a list\n", "the top level must be a mapping"),
        ("", "the top level must be a mapping"),
    ],
)
def test_load_config_bad_files(tmp_path: Path, text: str, fragment: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert str(info.value).startswith(f"{path}: ")
    assert fragment in str(info.value)


def test_load_config_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(path, env={})


# --- the shipped configs --------------------------------------------------------------------

SHIPPED = [
    ("quickstart.yaml", {"COSTPROXY_ADMIN_TOKEN": ADMIN_TOKEN}),
    (
        "costproxy.yaml",
        {
            "COSTPROXY_ADMIN_TOKEN": ADMIN_TOKEN,
            "OPENAI_API_KEY": "sk-upstream",
            "ACME_KEY": "sk-acme-prod",
            "BACKEND_KEY": "sk-backend-prod",
        },
    ),
]


def shipped(name: str, env: dict[str, str]) -> Config:
    return load_config(ROOT / "config" / name, env=env)


@pytest.mark.parametrize(("name", "env"), SHIPPED)
def test_shipped_configs_validate_and_every_route_is_priced(name: str, env: dict[str, str]) -> None:
    config = shipped(name, env)
    assert config.admin.token is not None
    assert config.admin.token.get_secret_value() == ADMIN_TOKEN
    snapshot = build_snapshot(config)
    for route in snapshot.routes.values():
        for target in route.targets:
            assert target.price is not None, target.model
            for _, alternative in target.what_if:
                assert alternative is not None


@pytest.mark.parametrize(("name", "env"), SHIPPED)
def test_shipped_configs_need_their_admin_token(name: str, env: dict[str, str]) -> None:
    env = {k: v for k, v in env.items() if k != "COSTPROXY_ADMIN_TOKEN"}
    with pytest.raises(
        ConfigError, match=r"admin\.token: environment variable COSTPROXY_ADMIN_TOKEN"
    ):
        shipped(name, env)


def test_quickstart_defaults_to_openai_without_an_upstream_url() -> None:
    config = shipped("quickstart.yaml", {"COSTPROXY_ADMIN_TOKEN": ADMIN_TOKEN})
    assert config.providers["openai"].base_url == "https://api.openai.com/v1"
    assert [k.trusted for k in config.keys] == [False, False, True]


def test_production_config_keys_come_from_the_environment() -> None:
    config = shipped(*SHIPPED[1])
    secrets = [k.key.get_secret_value() for k in config.keys if k.key is not None]
    assert secrets == ["sk-acme-prod", "sk-backend-prod"]
    first, then = price_entries(config.prices["openai/gpt-4o-mini"])
    assert (first.cached_input, then.from_, then.cached_input) == (
        Decimal("0.075"),
        date(2027, 1, 1),
        Decimal("0.06"),
    )


def test_store_outage_and_cluster_settings() -> None:
    config = parse_config(copy.deepcopy(MINIMAL), env={})
    assert config.store.on_error == "fail_open"
    assert config.store.journal_dir == str(Path("./data/journal"))
    store = {
        "backend": "redis",
        "redis_cluster_nodes": ["127.0.0.1:7000", "redis-b:7001"],
        "on_error": "fail_closed",
        "journal_path": "/var/lib/costproxy/journal",
    }
    config = parse_config(with_changes(store=store), env={})
    assert config.store.redis_cluster_nodes == ["127.0.0.1:7000", "redis-b:7001"]
    assert config.store.journal_dir == "/var/lib/costproxy/journal"


@pytest.mark.parametrize(
    ("store", "fragment"),
    [
        ({"redis_cluster_nodes": ["no-port"]}, "is not host:port"),
        ({"redis_cluster_nodes": ["h:99999"]}, "is not host:port"),
        ({"on_error": "ignore"}, "store.on_error"),
        ({"call_timeout_s": 0}, "store.call_timeout_s"),
    ],
)
def test_bad_store_settings_are_named(store: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        parse_config(with_changes(store=store), env={})
