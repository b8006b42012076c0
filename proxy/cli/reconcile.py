"""`costproxy reconcile`: the proxy's records of one provider against the provider's own
usage and cost reports, from files saved from its API or fetched with an admin key.

Exit status: 0 every difference within the tolerance, 1 differences (or days the report
does not cover), 2 the check could not run (bad arguments, config or report; fetch failed).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from proxy.accounting.price_book import PriceBook
from proxy.cli.target import CliError, direct
from proxy.config import Config
from proxy.errors import ConfigError
from proxy.reconcile.fetch import ReportFetchError
from proxy.reconcile.figures import Tolerance
from proxy.reconcile.render import render_table
from proxy.reconcile.report import ProviderReport, ReportFormatError
from proxy.reconcile.reports import KINDS, parse_report
from proxy.reconcile.run import (
    ReconcileSetupError,
    fetch_provider_report,
    report_config,
    run_reconcile,
)
from proxy.store.factory import make_store

__all__ = ["add_reconcile_command", "parse_tolerance"]

_MAX_DAYS = 366


class _UsageError(Exception):
    """Exit status 2, with this message."""


def parse_tolerance(text: str) -> Tolerance:
    """ "1" (percent, for tokens and cost) or "tokens=0,cost=0.5"."""
    values: dict[str, Decimal] = {}
    try:
        if "=" not in text:
            values = {"tokens": Decimal(text), "cost": Decimal(text)}
        else:
            for part in text.split(","):
                name, _, number = part.partition("=")
                if name.strip() not in ("tokens", "cost"):
                    raise _UsageError(f"--tolerance-pct: unknown part {name.strip()!r}")
                values[name.strip()] = Decimal(number)
    except InvalidOperation:
        raise _UsageError(f"--tolerance-pct: {text!r} is not a percentage") from None
    default = Tolerance()
    tolerance = Tolerance(
        values.get("tokens", default.tokens_pct), values.get("cost", default.cost_pct)
    )
    for pct in (tolerance.tokens_pct, tolerance.cost_pct):
        if not pct.is_finite() or not 0 <= pct <= 100:
            raise _UsageError(f"--tolerance-pct: {text!r} must be between 0 and 100")
    return tolerance


def _day(text: str, flag: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise _UsageError(f"{flag}: {text!r} is not a date (YYYY-MM-DD, UTC)") from None


def _documents(paths: list[str]) -> list[Any]:
    documents = []
    for path in paths:
        try:
            documents.append(orjson.loads(Path(path).read_bytes()))
        except OSError as exc:
            raise _UsageError(f"{path}: cannot read: {exc.strerror}") from None
        except orjson.JSONDecodeError as exc:
            raise _UsageError(f"{path}: not JSON: {exc}") from None
    return documents


async def _report(args: argparse.Namespace, config: Config, frm: date, to: date) -> ProviderReport:
    provider_report = config.providers[args.provider].report
    if args.fetch:
        report = report_config(config, args.provider)
        async with aiohttp.ClientSession() as session:
            return await fetch_provider_report(session, report, frm, to)
    kind = args.report_kind or (provider_report.kind if provider_report else None)
    if kind is None:
        raise _UsageError(
            f"which provider's report format? provider {args.provider!r} has no report in "
            "the config: pass --report-kind openai|anthropic"
        )
    return parse_report(kind, _documents(args.usage_file), _documents(args.costs_file))


async def _reconcile(args: argparse.Namespace, config: Config) -> dict[str, Any]:
    frm, to = _day(args.from_day, "--from"), _day(args.to_day, "--to")
    if to < frm:
        raise _UsageError(f"--to {to} is before --from {frm}")
    if (to - frm).days >= _MAX_DAYS:
        raise _UsageError(f"at most {_MAX_DAYS} days at a time")
    if args.provider not in config.providers:
        raise ReconcileSetupError(
            f"no provider {args.provider!r} in the config (known: {', '.join(config.providers)})"
        )
    if args.fetch == bool(args.usage_file or args.costs_file):
        raise _UsageError("give the report as --usage-file/--costs-file, or --fetch it (one)")
    tolerance = parse_tolerance(args.tolerance_pct) if args.tolerance_pct else Tolerance()
    report = await _report(args, config, frm, to)
    store = make_store(config.store)
    await store.open()
    try:
        prices = PriceBook(config.prices)
        return await run_reconcile(store, config, prices, args.provider, report, frm, to, tolerance)
    finally:
        await store.close()


def cmd_reconcile(args: argparse.Namespace) -> int:
    try:
        config = direct(args).config
        result = asyncio.run(_reconcile(args, config))
    except (_UsageError, CliError, ConfigError, ReconcileSetupError, ReportFormatError) as exc:
        print(f"costproxy reconcile: {exc}", file=sys.stderr)
        return 2
    except ReportFetchError as exc:
        print(f"costproxy reconcile: could not fetch the report: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    else:
        print(render_table(result))
    return 0 if result["matched"] else 1


def add_reconcile_command(sub: Any) -> None:
    """Adds `reconcile` to the `costproxy` subcommands."""
    parser = sub.add_parser(
        "reconcile",
        help="compare the proxy's records with the provider's own usage and cost report",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config",
        "-c",
        help="the config (env: COSTPROXY_CONFIG; default: the quickstart's in ./data)",
    )
    parser.add_argument("--provider", required=True, help="a provider's name in the config")
    parser.add_argument("--from", dest="from_day", required=True, help="first UTC day")
    parser.add_argument("--to", dest="to_day", required=True, help="last UTC day (inclusive)")
    parser.add_argument(
        "--usage-file",
        action="append",
        default=[],
        metavar="FILE",
        help="the usage report as the provider's API returned it (one page, or a list of "
        "pages); repeat for more pages",
    )
    parser.add_argument(
        "--costs-file", action="append", default=[], metavar="FILE", help="the cost report, same"
    )
    parser.add_argument(
        "--fetch",
        action="store_true",
        help="fetch the reports with the admin key named by the provider's report.admin_key_env",
    )
    parser.add_argument(
        "--report-kind", choices=KINDS, help="the report format, when the config has no report"
    )
    parser.add_argument(
        "--tolerance-pct",
        metavar="PCT",
        help="percent of the provider's figure: one number, or tokens=N,cost=N "
        "(default: tokens=0,cost=0.5)",
    )
    parser.add_argument("--json", action="store_true", help="print the comparison as JSON")
    parser.set_defaults(func=cmd_reconcile)
