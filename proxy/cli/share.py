"""`costproxy customers share|shares|unshare`: read-only console links for one customer.

Works on the store named by the config file (like `costproxy report`): a running proxy on
the same store honours a new link, or a revocation, at once.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from proxy.cli.target import CliError, direct
from proxy.config import Config
from proxy.console.shares import MAX_DAYS, create_share, share_url
from proxy.store.base import Store
from proxy.store.factory import make_store
from proxy.utc import iso_utc

__all__ = ["add_share_commands", "console_url"]


def console_url(config: Config) -> str:
    """Where the config serves the console: the admin listener when it has one."""
    if config.admin.port is not None:
        return f"http://{config.admin.host or config.server.host}:{config.admin.port}"
    return f"http://{config.server.host}:{config.server.port}"


def _with_store(config: Config, fn: Callable[[Store], Awaitable[Any]]) -> Any:
    async def run() -> Any:
        store = make_store(config.store)
        await store.open()
        try:
            return await fn(store)
        finally:
            await store.close()

    return asyncio.run(run())


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def cmd_share(args: argparse.Namespace, config: Config) -> int:
    share, secret = _with_store(
        config, lambda store: create_share(store, args.customer, args.days, _now_ms())
    )
    print(share_url(args.base_url or console_url(config), secret))
    print(
        f"{share.id}: read-only view of {share.customer} until {iso_utc(share.expires_ms)}; "
        f"revoke with: costproxy customers unshare {share.id}",
        file=sys.stderr,
    )
    return 0


def cmd_shares(args: argparse.Namespace, config: Config) -> int:
    now = _now_ms()
    for share in _with_store(config, lambda store: store.list_shares(args.customer)):
        state = "live" if share.live(now) else "revoked" if share.revoked_ms else "expired"
        print(f"{share.id}  {share.customer}  until {iso_utc(share.expires_ms)}  {state}")
    return 0


def cmd_unshare(args: argparse.Namespace, config: Config) -> int:
    if not _with_store(config, lambda store: store.revoke_share(args.share_id, _now_ms())):
        print(f"costproxy: no link {args.share_id!r}", file=sys.stderr)
        return 1
    print(f"{args.share_id} revoked")
    return 0


def _days(text: str) -> int:
    days = int(text)
    if not 1 <= days <= MAX_DAYS:
        raise argparse.ArgumentTypeError(f"1 to {MAX_DAYS} days")
    return days


def _run(command: Callable[[argparse.Namespace, Config], int]) -> Callable[..., int]:
    def run(args: argparse.Namespace) -> int:
        try:
            config = direct(args).config
        except CliError as exc:
            print(f"costproxy: {exc}", file=sys.stderr)
            return 1
        return command(args, config)

    return run


def add_share_commands(customers: argparse.ArgumentParser) -> None:
    """Adds share, shares and unshare under the `customers` command."""
    sub = next(a for a in customers._actions if isinstance(a, argparse._SubParsersAction))
    share = sub.add_parser("share", help="print a read-only console link for one customer")
    share.add_argument("customer")
    share.add_argument("--days", type=_days, default=30, help="how long it works (default 30)")
    share.add_argument("--base-url", help="the console's address as users reach it")
    share.set_defaults(func=_run(cmd_share))
    shares = sub.add_parser("shares", help="list read-only links")
    shares.add_argument("customer", nargs="?")
    shares.set_defaults(func=_run(cmd_shares))
    unshare = sub.add_parser("unshare", help="revoke a read-only link")
    unshare.add_argument("share_id")
    unshare.set_defaults(func=_run(cmd_unshare))
    for parser in (share, shares, unshare):
        parser.add_argument(
            "--config",
            "-c",
            help="the config (env: COSTPROXY_CONFIG; default: the quickstart's in ./data)",
        )
