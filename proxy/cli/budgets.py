"""`costproxy budgets list|set|delete`: budgets changed in the store, no restart needed."""

from __future__ import annotations

import argparse
import asyncio
import sys

from proxy.budgets.service import (
    BudgetInputError,
    delete_scope,
    list_view,
    load_book,
    merge_rules,
    normalize_scope,
    parse_rules,
    put_scope,
    rules_of,
    scope_view,
)
from proxy.config import Config
from proxy.store.factory import make_store

__all__ = ["run_budgets"]

_COLUMNS = ("scope", "source", "period", "limit_usd", "hard", "alert_at", "spent_usd",
            "reserved_usd", "resets_at")  # fmt: skip


def _changes(args: argparse.Namespace) -> list[dict]:
    alert_at = None
    if args.alert_at:
        try:
            alert_at = [int(p) for p in args.alert_at.split(",") if p.strip()]
        except ValueError:
            raise BudgetInputError("--alert-at takes percentages like 50,80,100") from None
    changes = []
    for period in ("daily", "weekly", "monthly", "total"):
        limit = getattr(args, period)
        if limit is not None:
            budget: dict = {"period": period, "limit_usd": limit, "hard": not args.soft}
            if alert_at is not None:
                budget["alert_at"] = alert_at
            changes.append(budget)
    if not changes:
        raise BudgetInputError("give at least one of --daily, --weekly, --monthly, --total")
    return changes


def _table(rows: list[dict]) -> str:
    cells = [[str(row.get(c, "")) for c in _COLUMNS] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(_COLUMNS)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(_COLUMNS, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(lines)


async def _run(args: argparse.Namespace, config: Config) -> str:
    store = make_store(config.store)
    await store.open()
    try:
        book = await load_book(store, config)
        if args.budgets_command == "set":
            scope = normalize_scope(args.scope)
            rules = merge_rules(rules_of(book, scope), parse_rules(_changes(args)))
            await put_scope(store, scope, rules)
            book = await load_book(store, config)
            return _table(_rows([await scope_view(store, book, scope)]))
        if args.budgets_command == "delete":
            scope = normalize_scope(args.scope)
            deleted = await delete_scope(store, scope)
            return f"{scope}: run-time budgets {'deleted' if deleted else 'not found'}"
        views = [
            await scope_view(store, book, item["scope"]) for item in list_view(book)["budgets"]
        ]
        return _table(_rows(views)) if views else "no budgets"
    finally:
        await store.close()


def _rows(views: list[dict]) -> list[dict]:
    return [
        {"scope": v["scope"], "source": v["source"], **budget}
        for v in views
        for budget in v["budgets"]
    ]


def run_budgets(args: argparse.Namespace, config: Config) -> int:
    try:
        print(asyncio.run(_run(args, config)))
    except BudgetInputError as exc:
        print(f"costproxy budgets: {exc}", file=sys.stderr)
        return 2
    return 0
