"""The shipped deployment files hold together: alert rules pass promtool, dashboards follow
the conventions, and docker-compose.yml mounts files that exist on ports that match.

No Docker engine runs here, so the compose file is checked as data: its structure, every
path it mounts, and every address one service uses to reach another.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from proxy.cli import demo_traffic
from proxy.cli.main import build_parser
from proxy.config import Config, interpolate_env, parse_config
from proxy.errors import ConfigError
from proxy.published_secrets import PUBLISHED
from tests.support.observability import (
    ALERT_RULES,
    DASHBOARDS,
    alert_rules,
    dashboard_queries,
    load_dashboard,
)
from tests.support.procs import REPO
from tests.support.prometheus import _binary, promtool

COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES: dict[str, dict] = COMPOSE["services"]
PROMETHEUS_YML = REPO / "config" / "prometheus" / "prometheus.yml"

# --- Prometheus rules -------------------------------------------------------------------


def _promtool_ok(*args: str) -> None:
    result = promtool(*args)
    assert result.returncode == 0, f"promtool {' '.join(args)}:\n{result.stdout}{result.stderr}"


def test_promtool_check_rules():
    _promtool_ok("check", "rules", str(ALERT_RULES))


def test_promtool_test_rules():
    _promtool_ok("test", "rules", str(REPO / "config/prometheus/tests/costproxy-alerts.test.yml"))


def test_promtool_check_config():
    _promtool_ok("check", "config", str(PROMETHEUS_YML))


def test_every_alert_has_severity_summary_and_description():
    for rule in alert_rules():
        assert rule["alert"].startswith("Costproxy"), rule["alert"]
        assert rule["labels"]["severity"] in {"info", "warning", "critical"}, rule["alert"]
        assert {"summary", "description"} <= rule["annotations"].keys(), rule["alert"]


# --- Grafana dashboards -----------------------------------------------------------------

UIDS = {
    "spend-overview.json": "costproxy-spend",
    "customer.json": "costproxy-customer",
    "proxy-health.json": "costproxy-health",
}


def _walk(node: object) -> Iterator[dict]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def test_dashboards_have_their_stable_uids():
    assert {path.name: load_dashboard(path)["uid"] for path in DASHBOARDS} == UIDS


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_conventions(path: Path):
    dashboard = load_dashboard(path)
    assert "__inputs" not in dashboard  # an export "for sharing externally" would need an import
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    # No hard-coded datasource uid anywhere: everything goes through the variable.
    for node in _walk(dashboard["panels"]):
        if "datasource" in node and isinstance(node["datasource"], dict):
            assert node["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"]["uid"] == "${datasource}"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        where = f"{path.name}: {panel['title']}"
        assert len(panel.get("description", "")) > 20, f"{where}: no description"
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, where
        unit = panel["fieldConfig"]["defaults"].get("unit")
        exprs = " ".join(target["expr"] for target in panel["targets"])
        if "costproxy_cost_usd" in exprs or "_usd" in exprs:
            assert unit == "currencyUSD", f"{where}: money in {unit}"
        elif "_seconds_bucket" in exprs:
            assert unit == "s", f"{where}: durations in {unit}"
        else:
            assert unit, f"{where}: no unit"
        refs = [target["refId"] for target in panel["targets"]]
        assert len(refs) == len(set(refs)), where


def test_customer_dashboard_filters_every_query_by_customer():
    dashboard = load_dashboard(REPO / "grafana/dashboards/customer.json")
    assert "customer" in {v["name"] for v in dashboard["templating"]["list"]}
    for query in dashboard_queries():
        if query.where.startswith(dashboard["title"]):
            assert 'customer="acme"' in query.expr, query.where


def test_grafana_provisioning_matches_the_compose_mounts():
    provider = yaml.safe_load((REPO / "grafana/provisioning/dashboards/costproxy.yml").read_text())
    (dashboards,) = provider["providers"]
    assert _mounts("grafana")[REPO / "grafana/dashboards"] == dashboards["options"]["path"]
    datasources = yaml.safe_load(
        (REPO / "grafana/provisioning/datasources/prometheus.yml").read_text()
    )
    (prometheus,) = datasources["datasources"]
    assert prometheus["type"] == "prometheus"
    url = urlsplit(prometheus["url"])
    assert url.hostname == "prometheus" and url.port == _published_port("prometheus")
    home = SERVICES["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert _host_path("grafana", home).is_file()


# --- docker-compose.yml -----------------------------------------------------------------


def _mounts(service: str) -> dict[Path, str]:
    """Bind mounts of a service: host path (resolved) → container path."""
    found = {}
    for volume in SERVICES[service].get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            found[(REPO / source).resolve()] = target
    return found


def _host_path(service: str, container_path: str) -> Path:
    for source, target in _mounts(service).items():
        if container_path == target or container_path.startswith(target + "/"):
            return source / container_path[len(target) :].lstrip("/")
    raise AssertionError(f"{service}: nothing mounted at {container_path}")


def _published_port(service: str) -> int:
    """The container port a service listens on, from its `ports` entry."""
    (mapping,) = SERVICES[service]["ports"]
    return int(mapping.rsplit(":", 1)[1])


def _compose_env(service: str) -> dict[str, str]:
    """The service's environment as compose would set it with no shell variables set."""
    env = {}
    for name, value in SERVICES[service].get("environment", {}).items():
        env[name] = re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", str(value))
    return env


def _proxy_config() -> Config:
    path = _host_path("proxy", SERVICES["proxy"]["command"][-1])
    return parse_config(
        yaml.safe_load(path.read_text()), source=str(path), env=_compose_env("proxy")
    )


def test_compose_services_and_profiles():
    assert set(SERVICES) == {
        "proxy", "redis", "prometheus", "alertmanager", "grafana", "mock-upstream", "demo-traffic"
    }  # fmt: skip
    demo = {name for name, service in SERVICES.items() if "demo" in service.get("profiles", [])}
    assert demo == {"mock-upstream", "demo-traffic"}
    for name, service in SERVICES.items():
        for dependency in service.get("depends_on", []):
            assert dependency in SERVICES, f"{name} depends on unknown {dependency}"
            assert dependency not in demo or name in demo, f"{name} needs the demo profile"
        assert "image" in service, name


def test_every_mounted_file_exists_and_named_volumes_are_declared():
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (REPO / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in COMPOSE["volumes"], f"{name}: undeclared volume {source}"


def test_the_image_builds_from_files_that_exist():
    builds = {service["build"] for service in SERVICES.values() if "build" in service}
    assert builds == {"."}
    dockerfile = (REPO / "Dockerfile").read_text()
    for line in dockerfile.splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (REPO / source).exists(), f"Dockerfile copies missing {source}"
    assert 'ENTRYPOINT ["costproxy"]' in dockerfile


def test_redis_persists():
    redis = SERVICES["redis"]
    assert redis["command"][redis["command"].index("--appendonly") + 1] == "yes"
    assert any(volume.endswith(":/data") for volume in redis["volumes"])


def test_the_proxy_config_validates_and_its_ports_match():
    config = _proxy_config()
    assert config.server.port == _published_port("proxy")
    assert config.store.backend == "redis"
    assert urlsplit(config.store.redis_url).hostname == "redis"
    assert config.metrics.port is not None
    # Prometheus scrapes the metrics port over the compose network (it is not published).
    prometheus = yaml.safe_load(PROMETHEUS_YML.read_text())
    (job,) = [j for j in prometheus["scrape_configs"] if j["job_name"] == "costproxy"]
    assert job["static_configs"][0]["targets"] == [f"proxy:{config.metrics.port}"]
    assert all(str(config.metrics.port) not in p for p in SERVICES["proxy"]["ports"])


def test_prometheus_loads_the_rules_and_reaches_alertmanager():
    prometheus = yaml.safe_load(PROMETHEUS_YML.read_text())
    config_path = SERVICES["prometheus"]["command"][0].split("=", 1)[1]
    assert _host_path("prometheus", config_path) == PROMETHEUS_YML
    rule_files = [
        path for pattern in prometheus["rule_files"] for path in PROMETHEUS_YML.parent.glob(pattern)
    ]
    assert ALERT_RULES in rule_files
    (target,) = prometheus["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert target == f"alertmanager:{_published_port('alertmanager')}"
    alertmanager_config = SERVICES["alertmanager"]["command"][0].split("=", 1)[1]
    alertmanager = yaml.safe_load(_host_path("alertmanager", alertmanager_config).read_text())
    names = {rule["alert"] for rule in alert_rules()}
    for inhibit in alertmanager["inhibit_rules"]:
        for matcher in inhibit["source_matchers"] + inhibit["target_matchers"]:
            assert matcher.split("=")[1].strip() in names


def test_the_demo_profile_is_wired_to_the_proxy():
    config = _proxy_config()
    mock = build_parser().parse_args(SERVICES["mock-upstream"]["command"])
    demo_url = urlsplit(config.providers["demo"].base_url)
    assert (demo_url.hostname, demo_url.port) == ("mock-upstream", mock.port)
    assert mock.host == "0.0.0.0"
    assert SERVICES["demo-traffic"]["entrypoint"][-1] == "proxy.cli.demo_traffic"
    command = [interpolate_env(arg, {}) for arg in SERVICES["demo-traffic"]["command"]]
    args = demo_traffic.build_parser().parse_args(command)
    assert urlsplit(args.url).hostname == "proxy"
    assert urlsplit(args.url).port == config.server.port
    assert args.key == _compose_env("proxy")["COSTPROXY_CLIENT_KEY"]
    trusted = [key for key in config.keys if key.trusted]
    assert [key.key.get_secret_value() for key in trusted] == [args.key]
    for model in args.models.split(","):
        assert config.models[model].targets[0].provider == "demo", model


def test_the_proxy_command_parses():
    args = build_parser().parse_args(SERVICES["proxy"]["command"])
    assert args.command == "serve"


def test_a_missing_prometheus_binary_fails_with_the_install_line():
    with pytest.raises(RuntimeError, match="apt-get install -y --no-install-recommends prometheus"):
        _binary("prometheus-not-installed-here")


_SECRET_DEFAULT = re.compile(r"\$\{(\w*(?:TOKEN|KEY|PASSWORD|SECRET)\w*):-([^}]+)\}")


def test_every_published_default_secret_is_refused_beside_a_real_key():
    """docker-compose.yml and config/ write default secrets as ${VAR:-default}: each one
    is in PUBLISHED, so a proxy holding a real provider key refuses it."""
    shipped = [REPO / "docker-compose.yml", *sorted((REPO / "config").rglob("*.yaml"))]
    defaults = {
        value
        for path in shipped
        for name, value in _SECRET_DEFAULT.findall(path.read_text())
        if not name.endswith("_URL")
    }
    assert defaults
    assert defaults <= PUBLISHED, defaults - PUBLISHED
    assert set(_compose_env("proxy").values()) & PUBLISHED == {
        "demo-admin-token-change-me",
        "sk-demo-client-key-change-me",
        "admin",
    }


def test_the_stack_refuses_its_demo_secrets_beside_a_real_key():
    path = _host_path("proxy", SERVICES["proxy"]["command"][-1])
    env = _compose_env("proxy") | {"OPENAI_API_KEY": "sk-proj-real"}
    with pytest.raises(ConfigError) as refused:
        parse_config(yaml.safe_load(path.read_text()), source=str(path), env=env)
    for variable in ("COSTPROXY_ADMIN_TOKEN", "COSTPROXY_CLIENT_KEY", "GRAFANA_ADMIN_PASSWORD"):
        assert f"set {variable} to a secret of your own" in str(refused.value)


def test_grafana_waits_for_the_proxy_that_checks_its_password():
    grafana = SERVICES["grafana"]
    assert grafana["depends_on"]["proxy"]["condition"] == "service_healthy"
    assert "healthcheck" in SERVICES["proxy"]
    assert _compose_env("proxy")["GRAFANA_ADMIN_PASSWORD"] == re.sub(
        r"\$\{\w+:-([^}]*)\}", r"\1", grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"]
    )
