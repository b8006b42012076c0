"""`costproxy mock-upstream`: command-line flags and the blocking server entry point."""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import MISSING, fields

from aiohttp import web

from proxy.listeners import bind
from proxy.mock_upstream.options import MockOptions
from proxy.mock_upstream.server import create_app

try:
    import uvloop
except ImportError:  # optional: not built for every platform
    uvloop = None  # type: ignore[assignment]  # the module or None, checked before use

__all__ = ["add_arguments", "options_from_args", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=9000, help="port to listen on")
    # One flag per option, derived from the dataclass so the two can never drift apart.
    for option in fields(MockOptions):
        assert option.default is not MISSING
        flag = "--" + option.name.replace("_", "-")
        help_text = option.metadata["help"]
        if isinstance(option.default, bool):
            parser.add_argument(flag, action="store_true", help=help_text)
        else:
            kind, default = type(option.default), option.default
            help_text = f"{help_text} (default: {default})"
            parser.add_argument(flag, type=kind, default=default, help=help_text)


def options_from_args(args: argparse.Namespace) -> MockOptions:
    return MockOptions(
        **{option.name: getattr(args, option.name) for option in fields(MockOptions)}
    )


def run(args: argparse.Namespace) -> None:
    """Serve until interrupted."""
    app = create_app(options_from_args(args))
    url = f"http://{args.host}:{args.port}/v1"

    def announce(_banner: str) -> None:
        # aiohttp calls this once the socket is bound, so a script waiting for the
        # line knows the server accepts connections; its own banner is replaced.
        print(f"fake upstream listening on {url}", flush=True)

    sock = bind(args.host, args.port)  # a busy port: AddressInUseError, one line from the CLI
    loop = uvloop.new_event_loop() if uvloop is not None else asyncio.new_event_loop()
    web.run_app(app, sock=sock, print=announce, access_log=None, loop=loop)
