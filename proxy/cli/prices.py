"""`costproxy prices list|show|unpriced|diff`: the prices costproxy bills with.

`list`, `show` and `unpriced` read a running proxy (`--url`, with `--admin-token` or
COSTPROXY_ADMIN_TOKEN) or resolve the prices of a config file themselves (`--config`);
both print the same figures. With `--config`, variables the config uses for secrets need
not be set: these commands read prices, never secrets. `diff` works offline: the
installed catalogue against the snapshot of the version before it that ships with
costproxy, and (with `--config`) the config's `prices:` against the catalogue.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from importlib import resources
from typing import Any

import orjson

from proxy.accounting.catalogue import load_catalogue
from proxy.accounting.catalogue_dump import dump, read_dump
from proxy.accounting.price_book import ResolvedPrice
from proxy.accounting.price_diff import diff_catalogues, diff_prices
from proxy.accounting.price_view import price_entry
from proxy.accounting.reports import query_spend
from proxy.accounting.spend import SpendQuery, SpendQueryError
from proxy.admin.prices import model_price, prices_report
from proxy.cli.price_tables import aligned, print_change, print_list, print_show
from proxy.cli.target import (
    CONFIG_ENV,
    CliError,
    Direct,
    Remote,
    Target,
    add_target_options,
    resolve,
)
from proxy.config import Config, load_config
from proxy.errors import ConfigError, ProxyError
from proxy.state import Snapshot, build_snapshot

__all__ = ["add_price_commands"]

PREVIOUS_CATALOGUE = "data/catalogue-previous.json.gz"
_PLACEHOLDER = "costproxy-prices-cli-placeholder"


# --- where the figures come from -----------------------------------------------------------


class _SecretsNotNeeded(Mapping[str, str]):
    """The environment, where a variable that is not set reads as a placeholder (a
    variable with a `:-default` still gets its default)."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def __getitem__(self, name: str) -> str:
        return self._env.get(name) or _PLACEHOLDER

    def get(self, name: str, default: Any = None) -> Any:
        return self._env.get(name, default)

    def __contains__(self, name: object) -> bool:
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(self._env)

    def __len__(self) -> int:
        return len(self._env)


def _config(path: str) -> Config:
    try:
        return load_config(path, env=_SecretsNotNeeded(os.environ))
    except ConfigError as exc:
        raise CliError(str(exc)) from None


def _snapshot(path: str) -> Snapshot:
    try:
        return build_snapshot(_config(path), source=path)
    except ConfigError as exc:
        raise CliError(str(exc)) from None


def _target(args: argparse.Namespace) -> Target:
    path = None if args.url else (args.config or os.environ.get(CONFIG_ENV))
    if path:  # prices only: the config's secrets need not be set (see _SecretsNotNeeded)
        return Direct(_config(path), path)
    return resolve(args)


def _snapshot_of(target: Direct) -> Snapshot:
    # Its prices only: the config's secrets need not be set (see _SecretsNotNeeded).
    return _snapshot(target.path)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _report(target: Target) -> dict:
    if isinstance(target, Remote):
        return target.call("GET", "/admin/v1/prices")
    snapshot = _snapshot_of(target)
    return prices_report(snapshot.routes, snapshot.providers, snapshot.prices, _now_ms())


def _one(args: argparse.Namespace, target: Target) -> dict:
    if isinstance(target, Remote):
        quoted = urllib.parse.quote(args.provider, safe="")
        return target.call("GET", f"/admin/v1/prices/{quoted}/{urllib.parse.quote(args.model)}")
    try:
        return model_price(_snapshot_of(target), args.provider, args.model, _now_ms())
    except ProxyError as exc:
        raise CliError(exc.message) from None


def _traffic(args: argparse.Namespace, target: Target) -> dict:
    params = {k: v for k, v in {"from": args.from_day, "to": args.to_day}.items() if v}
    params["group_by"] = "provider,model"
    if isinstance(target, Remote):
        return target.call("GET", "/admin/v1/spend?" + urllib.parse.urlencode(params))
    try:
        query = SpendQuery.parse(params)
    except SpendQueryError as exc:
        raise CliError(str(exc)) from None
    return target.run(lambda store: query_spend(store, query))


def _emit(args: argparse.Namespace, data: Any, printer) -> None:
    if args.json:
        print(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
    else:
        printer(data)


# --- commands --------------------------------------------------------------------------------


def cmd_list(args: argparse.Namespace) -> None:
    _emit(args, _report(_target(args)), print_list)


def cmd_show(args: argparse.Namespace) -> None:
    _emit(args, _one(args, _target(args)), print_show)


def cmd_unpriced(args: argparse.Namespace) -> None:
    target = _target(args)
    report, traffic = _report(target), _traffic(args, target)
    targets = [e for e in report["targets"] if not e["priced"]]
    seen = [g for g in traffic.get("groups", []) if g["unpriced_requests"]]
    data = {
        "targets": [{k: e[k] for k in ("provider", "model", "routes", "reason")} for e in targets],
        "traffic": {
            "from": traffic["from"],
            "to": traffic["to"],
            "models": [
                {k: g[k] for k in ("provider", "model", "requests", "unpriced_requests")}
                for g in seen
            ],
        },
    }

    def printer(data: dict) -> None:
        print(f"Route targets without a price: {len(targets)}")
        if targets:
            rows = [[e["provider"], e["model"], ",".join(e["routes"]), e["reason"]]
                    for e in targets]  # fmt: skip
            print(aligned(["provider", "model", "routes", "why"], rows))
        print()
        span = f"{traffic['from']} .. {traffic['to']} (UTC)"
        print(f"Models seen in traffic with an unknown cost, {span}: {len(seen)}")
        if seen:
            rows = [[g["provider"], g["model"], str(g["requests"]), str(g["unpriced_requests"])]
                    for g in seen]  # fmt: skip
            print(aligned(["provider", "model", "requests", "unpriced_requests"], rows))

    _emit(args, data, printer)


def _config_vs_catalogue(path: str) -> list[dict]:
    """Each `prices:` entry against the catalogue's price of the same model, now."""
    snapshot = _snapshot(path)
    book, now_ms = snapshot.prices, _now_ms()
    by_namespace = {p.price_namespace: p for p in snapshot.providers.values()}
    out: list[dict[str, Any]] = []
    for key in book.config_keys:
        namespace, _, model = key.partition("/")
        provider = by_namespace.get(namespace)
        ours = book.config_price(key)
        assert ours is not None
        theirs = book.catalogue_price(
            namespace,
            model,
            provider.config.base_url if provider else None,
            provider.kind if provider else None,
        )
        if not isinstance(theirs, ResolvedPrice):
            out.append({"key": key, "catalogue": None, "note": theirs.reason, "leaves": []})
            continue
        mine, catalogue = price_entry(ours, now_ms)["now"], price_entry(theirs, now_ms)["now"]
        shared = mine["variants"].keys() & catalogue["variants"].keys()
        changes = diff_prices(_comparable(catalogue, shared), _comparable(mine, shared))
        leaves = [{"path": c.path, "config": c.new, "catalogue": c.old} for c in changes]
        out.append({"key": key, "catalogue": theirs.source.key, "leaves": leaves})
    return out


def _comparable(now: dict, shared: set[str]) -> dict:
    """A price now, for comparing: a variant the other side lacks is one leaf."""
    variants = {
        name: rates if name in shared else "has this variant"
        for name, rates in now["variants"].items()
    }
    return {"standard": now["standard"], "variants": variants}


def cmd_diff(args: argparse.Namespace) -> None:
    if args.against:
        old = read_dump(args.against)
    else:
        with resources.as_file(resources.files("proxy").joinpath(PREVIOUS_CATALOGUE)) as path:
            old = read_dump(str(path))
    installed = load_catalogue()
    new = dump(installed.version, installed.providers)
    changes = diff_catalogues(old, new, args.provider)
    data: dict[str, Any] = {
        "catalogue": {
            "old": old["version"],
            "new": new["version"],
            "models": [c.to_json() for c in changes],
        }
    }
    if args.config:
        data["config"] = _config_vs_catalogue(args.config)

    def printer(data: dict) -> None:
        print(f"Catalogue: genai-prices {old['version']} -> {new['version']} (installed): "
              f"{len(changes)} models changed")  # fmt: skip
        for change in changes:
            print_change(change)
        if "config" in data:
            print()
            print("Config prices: against the catalogue (prices in force now, USD per 1M tokens)")
            for item in data["config"]:
                if item["catalogue"] is None:
                    print(f"  {item['key']}: not in the catalogue ({item['note']})")
                elif not item["leaves"]:
                    print(f"  {item['key']}: same as the catalogue's {item['catalogue']}")
                else:
                    print(f"  {item['key']}: differs from the catalogue's {item['catalogue']}")
                    for leaf in item["leaves"]:
                        print(f"      {leaf['path']}: catalogue {leaf['catalogue']}, "
                              f"config {leaf['config']}")  # fmt: skip

    _emit(args, data, printer)


# --- registration ----------------------------------------------------------------------------


def _run(func):
    def run(args: argparse.Namespace) -> int:
        try:
            func(args)
        except CliError as exc:
            print(f"costproxy prices: {exc}", file=sys.stderr)
            return 1
        except BrokenPipeError:  # `| head`: the reader has what it wanted
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0

    return run


def _where(parser: argparse.ArgumentParser) -> None:
    add_target_options(parser)
    parser.add_argument("--json", action="store_true", help="print JSON")


def add_price_commands(sub: argparse._SubParsersAction) -> None:
    prices = sub.add_parser("prices", help="the prices of route targets; catalogue changes")
    price_sub = prices.add_subparsers(dest="prices_command", required=True)

    listing = price_sub.add_parser("list", help="every route target with its price now")
    _where(listing)
    listing.set_defaults(func=_run(cmd_list))

    show = price_sub.add_parser("show", help="every dimension and date of one model's price")
    show.add_argument("provider", help="a provider's name in the config")
    show.add_argument("model", help="the upstream model name")
    _where(show)
    show.set_defaults(func=_run(cmd_show))

    unpriced = price_sub.add_parser(
        "unpriced", help="targets without a price; models seen in traffic with unknown cost"
    )
    unpriced.add_argument("--from", dest="from_day", help="UTC date, default: 1st of the month")
    unpriced.add_argument("--to", dest="to_day", help="UTC date, inclusive")
    _where(unpriced)
    unpriced.set_defaults(func=_run(cmd_unpriced))

    diff = price_sub.add_parser(
        "diff", help="catalogue changes since the previous version; config vs catalogue"
    )
    diff.add_argument("--config", "-c", help="also compare this config's prices: entries")
    diff.add_argument("--against", help="a catalogue snapshot file instead of the shipped one")
    diff.add_argument("--provider", help="only this catalogue provider's models")
    diff.add_argument("--json", action="store_true", help="print JSON")
    diff.set_defaults(func=_run(cmd_diff))
