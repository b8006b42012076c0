"""Which budgets apply to a request: scopes, their config and run-time rules. Pure.

A scope is a string: "customer/acme", "key/acme-prod", "end_user/acme/player-9" (one end
user's counter), "end_users/acme" (the default rules of acme's end users), "tag/feature=story",
"global". "/" and "%" inside a name are percent-encoded, so a scope string is unambiguous.
Run-time rules (from the store) replace the config's rules of the same scope, whole.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import orjson

from proxy.budgets.rules import BudgetRule, Period
from proxy.config import BudgetConfig, Config

__all__ = [
    "Applicable",
    "BudgetBook",
    "config_rules",
    "parse_runtime",
    "parse_scope",
    "rules_from_json",
    "rules_to_json",
    "scope",
    "scope_label",
]

Rules = tuple[BudgetRule, ...]
KINDS = ("customer", "key", "end_user", "end_users", "tag", "global")
_ARITY = {"customer": 1, "key": 1, "end_user": 2, "end_users": 1, "tag": 1, "global": 0}


def _quote(part: str) -> str:
    return part.replace("%", "%25").replace("/", "%2F")


def _unquote(part: str) -> str:
    return part.replace("%2F", "/").replace("%25", "%")


def scope(kind: str, *names: str) -> str:
    if _ARITY.get(kind) != len(names) or not all(names):
        raise ValueError(f"scope {kind!r} takes {_ARITY.get(kind)} non-empty name(s)")
    return "/".join((kind, *(_quote(n) for n in names)))


def parse_scope(text: str) -> tuple[str, tuple[str, ...]]:
    """ "end_user/acme/player-9" → ("end_user", ("acme", "player-9")); ValueError if bad."""
    kind, *names = text.split("/")
    if kind not in _ARITY:
        raise ValueError(f"unknown budget scope {kind!r}; use one of {', '.join(KINDS)}")
    if len(names) != _ARITY[kind] or not all(names):
        example = {"end_user": "end_user/<customer>/<end user>", "global": "global"}.get(
            kind, f"{kind}/<name>"
        )
        raise ValueError(f"a {kind} scope is written {example}")
    return kind, tuple(_unquote(n) for n in names)


def scope_label(text: str) -> str:
    """How a rejection message names the scope: "customer acme", "end user p9 of acme"."""
    kind, names = parse_scope(text)
    if kind == "end_user":
        return f"end user {names[1]} of customer {names[0]}"
    if kind == "end_users":
        return f"each end user of customer {names[0]}"
    if kind == "global":
        return "the proxy"
    return f"{kind} {names[0]}"


def _rules(budgets: list[BudgetConfig]) -> Rules:
    return tuple(BudgetRule.from_config(b) for b in budgets)


def config_rules(config: Config, key_ids: Mapping[int, str]) -> dict[str, Rules]:
    """Every scope's rules from the config. `key_ids`: index in config.keys → key id."""
    rules: dict[str, Rules] = {}
    for name, customer in config.customers.items():
        if customer.budgets:
            rules[scope("customer", name)] = _rules(customer.budgets)
        if customer.end_user_budgets:
            rules[scope("end_users", name)] = _rules(customer.end_user_budgets)
        for user, override in customer.end_users.items():
            rules[scope("end_user", name, user)] = _rules(override.budgets)
    for index, key in enumerate(config.keys):
        if key.budgets:
            rules[scope("key", key_ids[index])] = _rules(key.budgets)
    for tag, tagged in config.tags.items():
        if tagged.budgets:
            rules[scope("tag", tag)] = _rules(tagged.budgets)
    if config.global_.budgets:
        rules[scope("global")] = _rules(config.global_.budgets)
    return rules


def rules_to_json(rules: Rules) -> bytes:
    return orjson.dumps([rule.to_json() for rule in rules])


def rules_from_json(data: bytes | str) -> Rules:
    return tuple(BudgetRule.from_config(BudgetConfig.model_validate(b)) for b in orjson.loads(data))


def parse_runtime(raw: Mapping[str, str]) -> tuple[dict[str, Rules], dict[str, str]]:
    """Stored run-time rules by scope, and the scopes that could not be read (with why:
    written by a newer proxy, or by hand)."""
    runtime: dict[str, Rules] = {}
    problems: dict[str, str] = {}
    for scope_text, text in raw.items():
        try:
            runtime[scope_text] = rules_from_json(text)
        except ValueError as exc:
            problems[scope_text] = str(exc)
    return runtime, problems


@dataclass(frozen=True, slots=True)
class Applicable:
    """The budgets one request is held to: counters[i] is the scope of rules[i]."""

    scopes: tuple[str, ...]
    rules: Rules

    def __bool__(self) -> bool:
        return bool(self.rules)

    def counters(self) -> list[tuple[str, BudgetRule]]:
        return list(zip(self.scopes, self.rules, strict=True))

    def periods(self) -> list[tuple[str, Period]]:
        return [(s, r.period) for s, r in zip(self.scopes, self.rules, strict=True)]


_NONE = Applicable((), ())


class BudgetBook:
    """The effective rules: the config's, with run-time rules replacing whole scopes."""

    def __init__(self, configured: Mapping[str, Rules], runtime: Mapping[str, Rules]) -> None:
        self.configured = dict(configured)
        self.runtime = dict(runtime)
        self.effective = {**self.configured, **self.runtime}
        self._any = any(self.effective.values())

    def with_runtime(self, runtime: Mapping[str, Rules]) -> BudgetBook:
        return BudgetBook(self.configured, runtime)

    def source(self, scope_text: str) -> str | None:
        if scope_text in self.runtime:
            return "runtime"
        return "config" if scope_text in self.configured else None

    def applicable(
        self, customer: str, key_id: str | None, end_user: str | None, tags: tuple[str, ...]
    ) -> Applicable:
        """Budgets for one request. With no budgets anywhere this is one attribute read."""
        if not self._any:
            return _NONE
        effective = self.effective
        wanted = [scope("customer", customer)]
        if key_id:
            wanted.append(scope("key", key_id))
        wanted += [scope("tag", tag) for tag in tags]
        wanted.append("global")
        scopes: list[str] = []
        rules: list[BudgetRule] = []
        for name in wanted:
            for rule in effective.get(name, ()):
                scopes.append(name)
                rules.append(rule)
        if end_user:
            counter = scope("end_user", customer, end_user)
            own = effective.get(counter)
            for rule in own if own is not None else effective.get(scope("end_users", customer), ()):
                scopes.append(counter)
                rules.append(rule)
        return Applicable(tuple(scopes), tuple(rules)) if rules else _NONE
