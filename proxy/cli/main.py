"""The `costproxy` command: serve, quickstart, check-config, report, export, keys, customers,
mock-upstream."""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import logging
import os
import secrets
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from aiohttp import web

from proxy import mock_upstream
from proxy.accounting.spend import DIMENSIONS, SpendQuery, SpendQueryError
from proxy.cli.admin import add_admin_commands
from proxy.cli.prices import add_price_commands, unpriced_target_problems
from proxy.cli.reconcile import add_reconcile_command
from proxy.config import Config, load_config
from proxy.errors import ConfigError
from proxy.listeners import listen_sockets
from proxy.observability.request_log import send_request_log_to

__all__ = ["main"]

log = logging.getLogger("costproxy")


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop  # optional: ~2x faster I/O, measured in bench/
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def _load(path: str, env: Mapping[str, str] | None = None) -> Config:
    try:
        return load_config(path, env=env)
    except ConfigError as exc:
        print(f"costproxy: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


def cmd_serve(args: argparse.Namespace) -> int:
    from proxy.app import create_app
    from proxy.server import serve

    config = _load(args.config)
    host = args.host or config.server.host
    port = args.port if args.port is not None else config.server.port
    sockets = listen_sockets(config, host, port)
    banner = f"costproxy listening on http://{host}:{port}/v1 (store: {config.store.backend})"
    if config.admin.port is not None:
        banner += f"\nadmin API on http://{config.admin.host or host}:{config.admin.port}/admin/v1"
    with asyncio.Runner(loop_factory=_new_loop) as runner:
        # The app is built inside the loop that serves it.
        return runner.run(
            serve(
                create_app(config, config_path=args.config),
                sockets=sockets,
                shutdown_timeout=config.server.shutdown_timeout_s,
                banner=banner,
            )
        )


def cmd_quickstart(args: argparse.Namespace) -> int:
    """Serve the quickstart config; without OPENAI_API_KEY, route to the fake upstream."""
    from proxy.app import create_app
    from proxy.server import serve

    env = dict(os.environ)
    token_file = Path(args.data_dir) / "admin-token"
    if not env.get("COSTPROXY_ADMIN_TOKEN"):
        token_file.parent.mkdir(parents=True, exist_ok=True)
        if not token_file.exists():
            token_file.write_text(secrets.token_urlsafe(24) + "\n")
            token_file.chmod(0o600)
        env["COSTPROXY_ADMIN_TOKEN"] = token_file.read_text().strip()
        print(f"admin token: in {token_file} (or set COSTPROXY_ADMIN_TOKEN)")
    fake_root = f"http://127.0.0.1:{args.fake_port}"
    fake_openai, fake_anthropic = not env.get("OPENAI_API_KEY"), not env.get("ANTHROPIC_API_KEY")
    use_fake = fake_openai or fake_anthropic
    if fake_openai:
        env["COSTPROXY_UPSTREAM_URL"] = fake_root + "/v1"
        print(
            "OPENAI_API_KEY is not set: routing the OpenAI models to the bundled fake upstream "
            f"at {env['COSTPROXY_UPSTREAM_URL']} (deterministic replies, real accounting)."
        )
    if fake_anthropic:  # the Messages API's base URL is the API root
        env["COSTPROXY_ANTHROPIC_URL"] = fake_root
        print(
            "ANTHROPIC_API_KEY is not set: routing the Claude models to the bundled fake "
            f"upstream at {fake_root} (its Messages API)."
        )
    config = _load(args.config, env)
    if args.port is not None:
        config = config.model_copy(
            update={"server": config.server.model_copy(update={"port": args.port})}
        )
    host, port = config.server.host, config.server.port
    sockets = listen_sockets(config, host, port)
    banner = (
        f"costproxy listening on http://{host}:{port}/v1 (store: {config.store.backend})\n"
        f"try: costproxy report --config {args.config} --group-by model"
    )

    async def run() -> int:
        # The fake upstream outlives the proxy, so that streams draining at shutdown end.
        fake = None
        if use_fake:
            fake = web.AppRunner(mock_upstream.create_app(), access_log=None)
            await fake.setup()
            await web.TCPSite(fake, "127.0.0.1", args.fake_port).start()
        try:
            return await serve(
                create_app(config, config_path=args.config, env=env),
                sockets=sockets,
                shutdown_timeout=config.server.shutdown_timeout_s,
                banner=banner,
            )
        finally:
            if fake is not None:
                await fake.cleanup()

    with asyncio.Runner(loop_factory=_new_loop) as runner:
        return runner.run(run())


def cmd_check_config(args: argparse.Namespace) -> int:
    from proxy.state import build_snapshot

    config = _load(args.config)
    try:
        # The same complete check a reload makes: prices, what-if rules, strategies.
        snapshot = build_snapshot(config, source=args.config)
    except ConfigError as exc:
        print(f"costproxy: {exc}", file=sys.stderr)
        return 1
    # Warnings, not errors: the proxy serves such targets (with an unknown cost), and a
    # config may route to one on purpose (the compose demo does).
    for problem in unpriced_target_problems(snapshot):
        print(f"warning: {problem}")
    print(
        f"{args.config}: valid ({len(config.providers)} providers, {len(config.models)} models, "
        f"{len(config.keys)} keys)"
    )
    return 0


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


def _table(answer: dict) -> str:
    """The spend answer as an aligned text table, groups first, then the total."""
    dims = answer["group_by"]
    columns = [*dims, *_TOTAL_COLUMNS]
    rows = [
        ["-" if group[c] is None else str(group[c]) for c in columns]
        for group in answer.get("groups", [])
    ]
    total_label = ["TOTAL", *[""] * (len(dims) - 1)] if dims else []
    rows.append(total_label + [str(answer["total"][c]) for c in _TOTAL_COLUMNS])
    return _aligned(columns, rows)


_WHAT_IF_COLUMNS = (
    "requests",
    "unpriced_requests",
    "input_tokens",
    "output_tokens",
    "actual_cost_usd",
    "alternative_cost_usd",
    "saving_usd",
)


def _what_if_table(section: dict) -> str:
    columns = [*section["group_by"], *_WHAT_IF_COLUMNS]
    rows = [["-" if g[c] is None else str(g[c]) for c in columns] for g in section["groups"]]
    return _aligned(columns, rows)


def _aligned(columns: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)


def _csv(answer: dict) -> str:
    """The spend answer as CSV: one line per group, then the total (dimensions empty)."""
    dims = answer["group_by"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*dims, *_TOTAL_COLUMNS])
    for group in answer.get("groups", []):
        writer.writerow([*("" if group[d] is None else group[d] for d in dims),
                         *(group[c] for c in _TOTAL_COLUMNS)])  # fmt: skip
    writer.writerow([*([""] * len(dims)), *(answer["total"][c] for c in _TOTAL_COLUMNS)])
    return out.getvalue()


def cmd_report(args: argparse.Namespace) -> int:
    import orjson

    from proxy.accounting.reports import query_spend
    from proxy.store.factory import make_store

    params = {
        k: v
        for k, v in {
            "customer": args.customer,
            "from": args.from_day,
            "to": args.to_day,
            # What-if figures are read per customer and model unless asked otherwise.
            "group_by": args.group_by or ("customer,model" if args.what_if else None),
            "what_if": "1" if args.what_if else None,
        }.items()
        if v
    }
    try:
        query = SpendQuery.parse(params)
    except SpendQueryError as exc:
        print(f"costproxy report: {exc}", file=sys.stderr)
        return 2
    config = _load(args.config)

    async def run() -> dict:
        store = make_store(config.store)
        await store.open()
        try:
            return await query_spend(store, query)
        finally:
            await store.close()

    answer = asyncio.run(run())
    fmt = "json" if args.json else args.format
    if fmt == "json":
        print(orjson.dumps(answer, option=orjson.OPT_INDENT_2).decode())
        return 0
    if fmt == "csv":
        sys.stdout.write(_csv(answer))
        return 0
    who = answer["customer"] or "all customers"
    print(f"Spend of {who}, {answer['from']} .. {answer['to']} (UTC), USD")
    print(_table(answer))
    if "what_if" in answer:
        print()
        print("What if: the same requests at the alternatives' prices (saving = actual - alt.)")
        print(_what_if_table(answer["what_if"]))
        print(f"Note: {answer['what_if']['note']}.")
    return 0


def cmd_budgets(args: argparse.Namespace) -> int:
    from proxy.cli.budgets import run_budgets

    return run_budgets(args, _load(args.config))


def _run_mock_upstream(args: argparse.Namespace) -> int:
    mock_upstream.run(args)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="costproxy", description=__doc__)
    parser.add_argument("--log-level", default=os.environ.get("COSTPROXY_LOG_LEVEL", "INFO"))
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the proxy")
    serve.add_argument("--config", "-c", default="config/costproxy.yaml")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.set_defaults(func=cmd_serve)

    quick = sub.add_parser(
        "quickstart", help="run with the quickstart config (fake upstream if no key)"
    )
    quick.add_argument("--config", "-c", default="config/quickstart.yaml")
    quick.add_argument("--port", type=int, help="the proxy's port (default: from the config)")
    quick.add_argument("--fake-port", type=int, default=9000)
    quick.add_argument("--data-dir", default="data")
    quick.set_defaults(func=cmd_quickstart)

    check = sub.add_parser("check-config", help="validate a config file (exit 0 valid, 1 invalid)")
    check.add_argument("config")
    check.set_defaults(func=cmd_check_config)

    report = sub.add_parser("report", help="print spend from the store")
    report.add_argument("--config", "-c", default="config/costproxy.yaml")
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
    report.set_defaults(func=cmd_report)
    add_admin_commands(sub)
    add_price_commands(sub)
    add_reconcile_command(sub)

    budgets = sub.add_parser("budgets", help="list, set or delete budgets at run time")
    budgets.add_argument("--config", "-c", default="config/costproxy.yaml")
    budget_sub = budgets.add_subparsers(dest="budgets_command", required=True)
    budget_sub.add_parser("list", help="every budget, where it comes from and where it stands")
    budget_set = budget_sub.add_parser(
        "set", help="set periods of a scope's budgets (others are kept)"
    )
    budget_set.add_argument("scope", help="a customer, or customer/acme, key/NAME, tag/k=v, ...")
    for period in ("daily", "weekly", "monthly", "total"):
        budget_set.add_argument(f"--{period}", metavar="USD", help=f"the {period} limit")
    budget_set.add_argument("--alert-at", help="thresholds in percent, e.g. 50,80,100")
    budget_set.add_argument("--soft", action="store_true", help="alert only, never reject")
    budget_delete = budget_sub.add_parser(
        "delete", help="drop a scope's run-time budgets (the config's apply again)"
    )
    budget_delete.add_argument("scope")
    budgets.set_defaults(func=cmd_budgets)

    mock = sub.add_parser("mock-upstream", help="run the fake OpenAI-compatible upstream")
    mock_upstream.add_arguments(mock)
    mock.set_defaults(func=_run_mock_upstream)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    send_request_log_to(sys.stdout)
    return args.func(args)
