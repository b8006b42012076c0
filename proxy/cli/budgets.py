"""`costproxy budgets list|set|delete`: budgets changed at run time, no restart needed.

Over HTTP through the admin API, or straight on the store of a config; either way through
proxy.budgets.service, and printed as the same table.
"""

from __future__ import annotations

import argparse
import sys
import urllib.parse

from proxy.budgets.service import (
    BudgetInputError,
    delete_scope,
    list_with_states,
    load_book,
    merge_rules,
    normalize_scope,
    parse_rules,
    put_scope,
    rules_of,
    scope_view,
)
from proxy.cli.tables import aligned
from proxy.cli.target import Direct, Remote, add_target_options, resolve
from proxy.config import Config
from proxy.store.base import Store

__all__ = ["add_budget_commands"]

_COLUMNS = ("scope", "source", "period", "limit_usd", "hard", "alert_at", "spent_usd",
            "reserved_usd", "remaining_usd", "resets_at")  # fmt: skip
_PERIODS = ("daily", "weekly", "monthly", "total")


def _changes(args: argparse.Namespace) -> list[dict]:
    alert_at = None
    if args.alert_at:
        try:
            alert_at = [int(p) for p in args.alert_at.split(",") if p.strip()]
        except ValueError:
            raise BudgetInputError("--alert-at takes percentages like 50,80,100") from None
    changes = []
    for period in _PERIODS:
        limit = getattr(args, period)
        if limit is not None:
            budget: dict = {"period": period, "limit_usd": limit, "hard": not args.soft}
            if alert_at is not None:
                budget["alert_at"] = alert_at
            changes.append(budget)
    if not changes:
        raise BudgetInputError("give at least one of --daily, --weekly, --monthly, --total")
    return changes


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def _table(views: list[dict]) -> str:
    rows = [
        [_cell({"scope": v["scope"], "source": v["source"], **budget}.get(c)) for c in _COLUMNS]
        for v in views
        for budget in v["budgets"]
    ]
    return aligned(_COLUMNS, rows) if rows else "no budgets"


def _path(scope: str) -> str:
    return "/admin/v1/budgets/" + urllib.parse.quote(scope, safe="/")


def _remote(target: Remote, args: argparse.Namespace) -> list[dict]:
    if args.budgets_command == "list":
        return target.call("GET", "/admin/v1/budgets")["budgets"]
    scope = normalize_scope(args.scope)
    if args.budgets_command == "delete":
        return [target.call("DELETE", _path(scope))]
    current = parse_rules(
        [
            {k: b[k] for k in ("period", "limit_usd", "hard", "alert_at")}
            for b in target.call("GET", _path(scope))["budgets"]
        ]
    )
    rules = merge_rules(current, parse_rules(_changes(args)))
    body = {"budgets": [rule.to_json() for rule in rules]}
    return [target.call("PUT", _path(scope), body)]


async def _direct(store: Store, config: Config, args: argparse.Namespace) -> list[dict]:
    book = await load_book(store, config)
    if args.budgets_command == "list":
        return (await list_with_states(store, book))["budgets"]
    scope = normalize_scope(args.scope)
    if args.budgets_command == "delete":
        deleted = await delete_scope(store, scope)
        book = await load_book(store, config)
        return [{"deleted": deleted, **await scope_view(store, book, scope)}]
    rules = merge_rules(rules_of(book, scope), parse_rules(_changes(args)))
    await put_scope(store, book, scope, rules, history_days=config.store.retention_days)
    return [await scope_view(store, await load_book(store, config), scope)]


def cmd_budgets(args: argparse.Namespace) -> int:
    try:
        if args.budgets_command == "set":
            _changes(args)  # a typo is reported before anything is opened
        target = resolve(args)
        if isinstance(target, Direct):
            config = target.config
            views = target.run(lambda store: _direct(store, config, args))
        else:
            views = _remote(target, args)
    except BudgetInputError as exc:
        print(f"costproxy budgets: {exc}", file=sys.stderr)
        return 2
    if args.budgets_command == "delete":
        (view,) = views
        state = "deleted" if view.pop("deleted") else "not found (nothing deleted)"
        print(f"{view['scope']}: run-time budgets {state}")
        if view["budgets"]:
            print(f"the config's budgets apply again:\n{_table(views)}")
        return 0
    print(_table(views))
    return 0


def add_budget_commands(sub: argparse._SubParsersAction) -> None:
    budgets = sub.add_parser("budgets", help="list, set or delete budgets at run time")
    budget_sub = budgets.add_subparsers(dest="budgets_command", required=True)
    listing = budget_sub.add_parser(
        "list", help="every budget, where it comes from and where it stands"
    )
    budget_set = budget_sub.add_parser(
        "set", help="set periods of a scope's budgets (its other periods are kept)"
    )
    budget_set.add_argument("scope", help="a customer, or customer/acme, key/NAME, tag/k=v, ...")
    for period in _PERIODS:
        budget_set.add_argument(f"--{period}", metavar="USD", help=f"the {period} limit")
    budget_set.add_argument("--alert-at", help="thresholds in percent, e.g. 50,80,100")
    budget_set.add_argument("--soft", action="store_true", help="alert only, never reject")
    budget_delete = budget_sub.add_parser(
        "delete", help="drop a scope's run-time budgets (the config's apply again)"
    )
    budget_delete.add_argument("scope")
    for parser in (listing, budget_set, budget_delete):
        add_target_options(parser)
    budgets.set_defaults(func=cmd_budgets)
