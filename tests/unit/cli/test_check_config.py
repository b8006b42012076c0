"""`costproxy check-config` as a user runs it: exit status and messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.procs import costproxy


def test_check_config_accepts_the_shipped_example():
    env = {
        "PATH": "/usr/bin:/bin",
        "COSTPROXY_ADMIN_TOKEN": "x" * 20,
        "OPENAI_API_KEY": "sk-test",
        "ACME_KEY": "sk-acme",
        "BACKEND_KEY": "sk-backend",
    }
    result = costproxy("check-config", "config/costproxy.yaml", env=env)
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("providers: {}\nmodels: {}\n", "providers"),
        (
            "providers: {p: {base_url: 'http://x'}}\n"
            "models: {m: {targets: [{provider: q, model: m}]}}\n",
            "target provider 'q' is not defined",
        ),
        ("providers: {p: {base_url: '${NOPE_NOT_SET}'}}\nmodels: {}\n", "NOPE_NOT_SET is not set"),
        ("providers: [\n", "not valid YAML"),
        ("server: {port: 80, colour: red}\n", "server.colour"),
    ],
)
def test_check_config_rejects_and_names_the_problem(tmp_path: Path, text: str, message: str):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    result = costproxy("check-config", str(path))
    assert result.returncode == 1
    assert str(path) in result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_every_problem_in_one_run(tmp_path: Path):
    """Unset variables, unknown keys, dangling references and bad values: all of them at
    once, each on its own line with a suggestion where one is close."""
    path = tmp_path / "bad.yaml"
    path.write_text(
        "server: {port: 8080, hots: x, colour: red}\n"
        "providers:\n"
        '  openai: {base_url: "${NOPE_URL}", api_kye: "${NOPE_KEY}"}\n'
        "models:\n"
        "  m: {targets: [{provider: opneai, model: m}]}\n"
        "  n: {targets: [{provider: elsewhere, model: n}]}\n"
        "customers:\n"
        "  acme: {budgets: [{period: montly, limit_usd: 5}]}\n"
    )
    result = costproxy("check-config", str(path), env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert lines[0] == f"{path}: 8 problem(s):"
    assert sorted(line.strip() for line in lines[1:]) == sorted(
        [
            "providers.openai.base_url: environment variable NOPE_URL is not set "
            "(set it, or write ${NOPE_URL:-default})",
            "providers.openai.api_kye: environment variable NOPE_KEY is not set "
            "(set it, or write ${NOPE_KEY:-default})",
            "providers.openai.api_kye: unknown key 'api_kye' (did you mean 'api_key'?)",
            "server.hots: unknown key 'hots' (did you mean 'host'?)",
            "server.colour: unknown key 'colour' "
            "(known here: host, port, max_body_bytes, shutdown_timeout_s, "
            "accept_compressed_bodies, trusted_proxies)",
            "models.m.targets.0.provider: 'opneai' is not defined under providers "
            "(did you mean 'openai'?)",
            "models.n.targets.0.provider: 'elsewhere' is not defined under providers "
            "(known: openai)",
            "customers.acme.budgets.0.period: 'montly': Input should be 'daily', 'weekly', "
            "'monthly' or 'total' (did you mean 'monthly'?)",
        ]
    )


def test_each_unset_variable_of_the_shipped_config_is_named():
    result = costproxy("check-config", "config/costproxy.yaml", env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 1
    named = {line.split(": environment variable ")[1].split()[0]
             for line in result.stderr.splitlines() if "environment variable" in line}  # fmt: skip
    assert named == {"COSTPROXY_ADMIN_TOKEN", "OPENAI_API_KEY", "ACME_KEY", "BACKEND_KEY"}


def test_a_nested_unknown_key_suggests_the_right_model_s_keys(tmp_path: Path):
    path = tmp_path / "c.yaml"
    path.write_text(
        "providers: {p: {base_url: 'http://127.0.0.1:1/v1'}}\n"
        "models: {m: {targets: [{provider: p, model: m, wieght: 2}], strategy: weighted}}\n"
        "global: {budgets: [{period: daily, limit_usd: 1, hardd: false}]}\n"
    )
    result = costproxy("check-config", str(path), env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 1
    assert "models.m.targets.0.wieght: unknown key 'wieght' (did you mean 'weight'?)" in (
        result.stderr
    )
    assert "global.budgets.0.hardd: unknown key 'hardd' (did you mean 'hard'?)" in result.stderr


def test_serve_names_every_problem_too(tmp_path: Path):
    path = tmp_path / "c.yaml"
    path.write_text(
        "providers: {p: {base_url: '${A_URL}', api_key: '${A_KEY}'}}\n"
        "models: {m: {targets: [{provider: p, model: m}]}}\n"
    )
    result = costproxy("serve", "--config", str(path), env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 1
    assert "A_URL is not set" in result.stderr and "A_KEY is not set" in result.stderr
    assert "Traceback" not in result.stderr
