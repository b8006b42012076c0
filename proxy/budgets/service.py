"""Reading and changing budgets at run time: what the admin API and the CLI share.

Run-time budgets are stored per scope (replacing the config's rules of that scope whole)
and reach every instance within `budgeting.refresh_s`; the instance that took the change
applies it at once. A budget set mid-period counts the period's spend so far (see
proxy.budgets.seed). Everything here works on a store and a `BudgetBook`, so the CLI needs
neither a running proxy nor a `BudgetGuard`.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import TypeAdapter, ValidationError

from proxy.access.auth import key_id
from proxy.access.identifiers import normal_id, normal_tag
from proxy.accounting.pricing import format_usd_short
from proxy.budgets.book import (
    BudgetBook,
    Rules,
    config_rules,
    parse_runtime,
    parse_scope,
    rules_to_json,
    scope,
)
from proxy.budgets.rules import BudgetRule, CounterState, period_reset_ms
from proxy.budgets.seed import seed_scopes
from proxy.config import Budgets, Config
from proxy.store.base import Store
from proxy.utc import iso_utc

__all__ = [
    "BudgetInputError",
    "body_rules",
    "configured_budgets",
    "delete_scope",
    "list_with_states",
    "load_book",
    "merge_rules",
    "normalize_scope",
    "parse_rules",
    "put_scope",
    "rules_of",
    "scope_view",
]

_RULES = TypeAdapter(Budgets)


class BudgetInputError(ValueError):
    """Bad budget input; the message says what and where."""


def configured_budgets(config: Config) -> dict[str, Rules]:
    """The config's budgets by scope (keys named by their key id)."""
    return config_rules(config, {i: key_id(key) for i, key in enumerate(config.keys)})


async def load_book(store: Store, config: Config) -> BudgetBook:
    """The budgets in force: the config's, with the store's run-time rules over them."""
    _, raw = await store.budget_overrides()
    runtime, _problems = parse_runtime(raw)  # the proxy logs these; the CLI shows the rest
    return BudgetBook(configured_budgets(config), runtime)


def normalize_scope(text: str) -> str:
    """A scope from a path or the command line; a bare name means a customer."""
    if "/" not in text and text != "global":
        text = f"customer/{text}"
    try:
        kind, names = parse_scope(text)
    except ValueError as exc:
        raise BudgetInputError(str(exc)) from None
    if kind == "tag" and "=" not in names[0].strip("="):
        raise BudgetInputError(f"a tag scope is tag/<name>=<value>, got {text!r}")
    # Customers, end users and tags in the one spelling requests are counted under.
    if kind == "tag":
        names = (normal_tag(names[0]),)
    elif kind != "key":  # key scopes name a key id, which is not a client's spelling
        names = tuple(normal_id(name) for name in names)
    return scope(kind, *names)


def parse_rules(data: object) -> Rules:
    """`[{period, limit_usd, hard, alert_at}, ...]`, validated as in the config file."""
    try:
        budgets = _RULES.validate_python(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in item['loc']) or 'budgets'}: {item['msg']}"
            for item in exc.errors(include_url=False)
        )
        raise BudgetInputError(f"invalid budgets: {problems}") from None
    return tuple(BudgetRule.from_config(b) for b in budgets)


def merge_rules(current: Rules, changes: Rules) -> Rules:
    """`current` with the periods of `changes` replaced or added (the CLI's `set`)."""
    changed = {rule.period for rule in changes}
    return tuple(r for r in current if r.period not in changed) + changes


def rules_of(book: BudgetBook, scope_text: str) -> Rules:
    """The rules that apply to a scope: an end user without its own falls back to the
    default rules of its customer's end users."""
    rules = book.effective.get(scope_text)
    if rules is None and scope_text.startswith("end_user/"):
        customer = parse_scope(scope_text)[1][0]
        rules = book.effective.get(scope("end_users", customer))
    return rules or ()


def _counted(scope_text: str) -> bool:
    # "end_users/<c>" is a template: it has no counter of its own.
    return not scope_text.startswith("end_users/")


def _view(
    book: BudgetBook, scope_text: str, rules: Rules, states: list[CounterState] | None
) -> dict:
    budgets = []
    for i, rule in enumerate(rules):
        item = rule.to_json()
        if states:
            state = states[i]
            reset = period_reset_ms(rule.period, state.pid)
            item |= {
                "period_id": state.pid,
                "spent_usd": format_usd_short(state.spent_nusd),
                "reserved_usd": format_usd_short(state.held_nusd),
                "remaining_usd": format_usd_short(
                    max(0, rule.limit_nusd - state.spent_nusd - state.held_nusd)
                ),
                "resets_at": None if reset is None else iso_utc(reset),
            }
        budgets.append(item)
    return {"scope": scope_text, "source": book.source(scope_text), "budgets": budgets}


async def scope_view(store: Store, book: BudgetBook, scope_text: str) -> dict:
    """The scope's rules with where each stands now: spent, reserved, remaining, reset."""
    rules = rules_of(book, scope_text)
    states = None
    if _counted(scope_text) and rules:
        states = await store.budget_states([(scope_text, r.period) for r in rules])
    return _view(book, scope_text, rules, states)


async def list_with_states(store: Store, book: BudgetBook) -> dict:
    """Every scope's view (as `scope_view`), read with one store call."""
    scopes = sorted(book.effective)
    counters = [(s, rule.period) for s in scopes if _counted(s) for rule in book.effective[s]]
    states = iter(await store.budget_states(counters) if counters else [])
    views = []
    for s in scopes:
        rules = book.effective[s]
        own = [next(states) for _ in rules] if _counted(s) else None
        views.append(_view(book, s, rules, own))
    return {"budgets": views}


async def put_scope(
    store: Store, book: BudgetBook, scope_text: str, rules: Rules, *, history_days: int
) -> None:
    """Store a scope's run-time rules, then count the period's spend so far in them."""
    await store.put_budget_override(scope_text, rules_to_json(rules).decode())
    book = book.with_runtime({**book.runtime, scope_text: rules})
    await seed_scopes(store, book, [scope_text], history_days)


async def delete_scope(store: Store, scope_text: str) -> bool:
    return await store.delete_budget_override(scope_text)


def body_rules(body: object) -> Rules:
    """The PUT body: `{"budgets": [...]}`."""
    if not isinstance(body, Mapping) or set(body) != {"budgets"}:
        raise BudgetInputError('the body must be {"budgets": [...]} (an empty list: none)')
    return parse_rules(body["budgets"])
