"""`costproxy report`: spend as a table, JSON or CSV, from the spend API or the store."""

from __future__ import annotations

import argparse
import sys
import urllib.parse

import orjson

from proxy.accounting.reports import query_spend
from proxy.accounting.spend import DIMENSIONS, SpendQuery, SpendQueryError
from proxy.cli.tables import aligned, csv_text
from proxy.cli.target import Direct, add_target_options, resolve

__all__ = ["add_report_command"]

_TOTAL_COLUMNS = (
    "cost_usd",
    "billable_usd",
    "requests",
    "unpriced_requests",
    "input_tokens",
    "cached_input_tokens",
    "output_tokens",
    "reasoning_tokens",
)
_WHAT_IF_COLUMNS = (
    "requests",
    "unpriced_requests",
    "input_tokens",
    "output_tokens",
    "actual_cost_usd",
    "alternative_cost_usd",
    "saving_usd",
)


def _cell(value: object) -> str:
    return "-" if value is None else str(value)


def table(answer: dict) -> str:
    """The spend answer as an aligned text table, groups first, then the total."""
    dims = answer["group_by"]
    columns = [*dims, *_TOTAL_COLUMNS]
    rows = [[_cell(group[c]) for c in columns] for group in answer.get("groups", [])]
    total_label = ["TOTAL", *[""] * (len(dims) - 1)] if dims else []
    rows.append(total_label + [str(answer["total"][c]) for c in _TOTAL_COLUMNS])
    return aligned(columns, rows)


def what_if_table(section: dict) -> str:
    columns = [*section["group_by"], *_WHAT_IF_COLUMNS]
    return aligned(columns, [[_cell(g[c]) for c in columns] for g in section["groups"]])


def csv_report(answer: dict) -> str:
    """The spend answer as CSV: one line per group, then the total (dimensions empty)."""
    dims = answer["group_by"]
    rows = [
        [*("" if group[d] is None else group[d] for d in dims), *(group[c] for c in _TOTAL_COLUMNS)]
        for group in answer.get("groups", [])
    ]
    rows.append([*([""] * len(dims)), *(answer["total"][c] for c in _TOTAL_COLUMNS)])
    return csv_text([*dims, *_TOTAL_COLUMNS], rows)


def _params(args: argparse.Namespace) -> dict[str, str]:
    values = {
        "customer": args.customer,
        "from": args.from_day,
        "to": args.to_day,
        # What-if figures are read per customer and model unless asked otherwise.
        "group_by": args.group_by or ("customer,model" if args.what_if else None),
        "what_if": "1" if args.what_if else None,
    }
    return {k: v for k, v in values.items() if v}


def cmd_report(args: argparse.Namespace) -> int:
    params = _params(args)
    try:
        query = SpendQuery.parse(params)  # checked here too: a bad date never leaves the shell
    except SpendQueryError as exc:
        print(f"costproxy report: {exc}", file=sys.stderr)
        return 2
    target = resolve(args)
    if isinstance(target, Direct):
        answer = target.run(lambda store: query_spend(store, query))
    else:
        answer = target.call("GET", "/admin/v1/spend?" + urllib.parse.urlencode(params))
    fmt = "json" if args.json else args.format
    if fmt == "json":
        print(orjson.dumps(answer, option=orjson.OPT_INDENT_2).decode())
    elif fmt == "csv":
        sys.stdout.write(csv_report(answer))
    else:
        who = answer["customer"] or "all customers"
        print(f"Spend of {who}, {answer['from']} .. {answer['to']} (UTC), USD")
        print(table(answer))
        if "what_if" in answer:
            print()
            print("What if: the same requests at the alternatives' prices (saving = actual - alt.)")
            print(what_if_table(answer["what_if"]))
            print(f"Note: {answer['what_if']['note']}.")
    return 0


def add_report_command(sub: argparse._SubParsersAction) -> None:
    report = sub.add_parser("report", help="print spend, grouped as asked")
    report.add_argument("--customer")
    report.add_argument("--from", dest="from_day", help="UTC date, default: first of this month")
    report.add_argument(
        "--to", dest="to_day", help="UTC date, inclusive, default: end of this month"
    )
    report.add_argument("--group-by", help=f"comma list of {', '.join(DIMENSIONS)}")
    report.add_argument(
        "--what-if",
        action="store_true",
        help="also show what the requests would have cost under the config's what_if rules",
    )
    report.add_argument("--format", choices=("table", "json", "csv"), default="table")
    report.add_argument("--json", action="store_true", help="same as --format json")
    add_target_options(report)
    report.set_defaults(func=cmd_report)
