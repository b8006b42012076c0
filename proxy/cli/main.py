"""The `costproxy` command: serve, quickstart, check-config, report, export, keys, customers,
budgets, mock-upstream.

Errors a user can act on end in one line on stderr, never a traceback: exit 1 for a
problem with what was asked (CliError), 2 for a busy port or a bad argument.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from proxy import mock_upstream
from proxy.cli.admin import add_admin_commands
from proxy.cli.budgets import add_budget_commands
from proxy.cli.check_config import add_check_command
from proxy.cli.prices import add_price_commands
from proxy.cli.quickstart import add_quickstart_command
from proxy.cli.reconcile import add_reconcile_command
from proxy.cli.report import add_report_command
from proxy.cli.serving import serve_config
from proxy.cli.share import add_share_commands
from proxy.cli.target import CONFIG_ENV, CliError, load
from proxy.config import Config
from proxy.listeners import AddressInUseError, listen_sockets
from proxy.observability.request_log import send_request_log_to

__all__ = ["build_parser", "main"]

log = logging.getLogger("costproxy")


def cmd_serve(args: argparse.Namespace) -> int:
    config = load(args.config)
    host = args.host or config.server.host
    port = args.port if args.port is not None else config.server.port
    sockets = listen_sockets(config, host, port)
    banner = f"costproxy listening on http://{host}:{port}/v1 (store: {config.store.backend})"
    if config.admin.port is not None:
        banner += f"\nadmin API on http://{config.admin.host or host}:{config.admin.port}/admin/v1"
    return serve_config(config, config_path=args.config, sockets=sockets, banner=banner)


def _moving_option(args: argparse.Namespace, port: int, config: Config | None) -> str:
    """Which option moves the server off a busy `port`."""
    if args.command == "quickstart" and port == args.fake_port:
        return "--fake-port"
    if config is not None and port == config.admin.port:
        return "admin.port in the config"
    if config is not None and port == config.metrics.port:
        return "metrics.port in the config"
    return "--port"


def _port_in_use(args: argparse.Namespace, exc: AddressInUseError) -> int:
    config = None
    if getattr(args, "config", None):
        try:
            config = load(args.config)
        except CliError:
            config = None
    option = _moving_option(args, exc.port, config)
    print(
        f"costproxy: port {exc.port} on {exc.host} is already in use (another costproxy, or "
        f"another server); stop it or choose another port with {option}",
        file=sys.stderr,
    )
    return 2


def _run_mock_upstream(args: argparse.Namespace) -> int:
    mock_upstream.run(args)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="costproxy", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument("--log-level", default=os.environ.get("COSTPROXY_LOG_LEVEL", "INFO"))
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the proxy")
    serve.add_argument(
        "--config",
        "-c",
        default=os.environ.get(CONFIG_ENV) or "config/costproxy.yaml",
        help=f"default: ${CONFIG_ENV}, else config/costproxy.yaml",
    )
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.set_defaults(func=cmd_serve)

    add_quickstart_command(sub)
    add_check_command(sub)
    add_report_command(sub)
    add_admin_commands(sub)
    add_budget_commands(sub)
    add_price_commands(sub)
    add_reconcile_command(sub)
    add_share_commands(sub.choices["customers"])

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
    try:
        return args.func(args)
    except CliError as exc:
        print(f"costproxy: {exc}", file=sys.stderr)
        return 1
    except AddressInUseError as exc:
        return _port_in_use(args, exc)
