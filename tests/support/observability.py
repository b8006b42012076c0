"""Reading the shipped dashboards and alert rules as data: every PromQL query they hold,
with the labels each one is expected to return."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.support.procs import REPO

__all__ = [
    "ALERT_RULES",
    "DASHBOARDS",
    "Query",
    "alert_queries",
    "dashboard_queries",
    "load_dashboard",
    "metric_names",
    "substitute",
    "variable_queries",
]

DASHBOARDS = sorted((REPO / "grafana" / "dashboards").glob("*.json"))
ALERT_RULES = REPO / "config" / "prometheus" / "rules" / "costproxy-alerts.yml"

# What the Grafana template variables stand for when a test evaluates a query.
TEST_VARIABLES = {
    "$__rate_interval": "30s",
    "$__interval": "15s",
    "$__range": "1m",
    "$customer": "acme",
    "$instance": ".*",
}

_LEGEND_LABEL = re.compile(r"\{\{\s*(\w+)\s*\}\}")
_ANNOTATION_LABEL = re.compile(r"\$labels\.(\w+)")
_METRIC = re.compile(r"\b(costproxy_\w+|process_\w+|up)\b")
# `SIGNAL <op> NUMBER` at the very end: the shape every alert rule keeps (see the rules file).
_THRESHOLD = re.compile(
    r"^(?P<signal>.+?)\s*(?P<op>>=|<=|==|!=|>|<)\s*(?P<threshold>[0-9.eE+-]+)\s*$", re.S
)


@dataclass(frozen=True)
class Query:
    where: str  # "dashboard / panel / refId" or "alert NAME": for failure messages
    expr: str  # with the template variables substituted
    labels: frozenset[str]  # labels every returned series must carry


def metric_names(expr: str) -> set[str]:
    return set(_METRIC.findall(expr))


def substitute(expr: str) -> str:
    # Longest names first, so that $__rate_interval is not read as $__range + "te_interval".
    for name in sorted(TEST_VARIABLES, key=len, reverse=True):
        expr = expr.replace(name, TEST_VARIABLES[name])
    assert "$" not in expr, f"a template variable the tests do not know: {expr}"
    return expr


def load_dashboard(path: Path) -> dict:
    return json.loads(path.read_text())


def _panels(dashboard: dict) -> Iterator[dict]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])  # collapsed rows hold their panels


def dashboard_queries() -> list[Query]:
    queries = []
    for path in DASHBOARDS:
        dashboard = load_dashboard(path)
        for panel in _panels(dashboard):
            for target in panel.get("targets", []):
                queries.append(
                    Query(
                        where=f"{dashboard['title']} / {panel['title']} / {target['refId']}",
                        expr=substitute(target["expr"]),
                        labels=frozenset(_LEGEND_LABEL.findall(target.get("legendFormat", ""))),
                    )
                )
    return queries


def variable_queries() -> list[tuple[str, str, str]]:
    """(dashboard, metric, label) of every `label_values(metric, label)` variable."""
    found = []
    for path in DASHBOARDS:
        dashboard = load_dashboard(path)
        for variable in dashboard["templating"]["list"]:
            if variable["type"] != "query":
                continue
            match = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", variable["definition"])
            assert match, f"{path.name}: variable {variable['name']}: unexpected query"
            found.append((dashboard["title"], match.group(1), match.group(2)))
    return found


def alert_rules() -> list[dict]:
    groups = yaml.safe_load(ALERT_RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def alert_queries() -> list[Query]:
    """Each alert's SIGNAL: the expression without its threshold, which must return data
    whether or not the alert fires."""
    queries = []
    for rule in alert_rules():
        match = _THRESHOLD.match(rule["expr"].strip())
        assert match, f"alert {rule['alert']}: expr is not `SIGNAL <op> NUMBER`"
        text = " ".join(str(v) for v in rule.get("annotations", {}).values())
        queries.append(
            Query(
                where=f"alert {rule['alert']}",
                expr=match.group("signal"),
                labels=frozenset(_ANNOTATION_LABEL.findall(text)),
            )
        )
    return queries
