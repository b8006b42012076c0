"""`costproxy keys|customers|export`: the admin API from the shell.

Each command talks either to a running proxy (`--url`, with `--admin-token` or
COSTPROXY_ADMIN_TOKEN) or straight to the store named by a config file (`--config`); both
print the same JSON, because both run the same operations (proxy.access.service).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, BinaryIO, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from proxy.access import service as access_service
from proxy.accounting.export import FORMATS, ExportQuery, export_chunks
from proxy.accounting.spend import SpendQueryError
from proxy.admin.models import CustomerPut, KeyCreate, KeyRotate
from proxy.config import Config, load_config
from proxy.errors import ConfigError, ProxyError
from proxy.store.base import Store
from proxy.store.factory import make_store

__all__ = ["add_admin_commands"]

Direct = Callable[[Store], Awaitable[dict | None]]
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Call:
    """One admin operation: as an HTTP request, and as a direct store operation."""

    method: str
    path: str
    body: BaseModel | None
    direct: Direct
    changes: bool = False


class CliError(Exception):
    pass


def _remote(args: argparse.Namespace, call: Call) -> dict | None:
    token = args.admin_token or os.environ.get("COSTPROXY_ADMIN_TOKEN")
    if not token:
        raise CliError("give --admin-token or set COSTPROXY_ADMIN_TOKEN")
    data = None if call.body is None else call.body.model_dump_json(exclude_unset=True).encode()
    request = urllib.request.Request(
        args.url.rstrip("/") + call.path,
        data=data,
        method=call.method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            body = resp.read()
    except urllib.error.HTTPError as exc:
        raise CliError(_error_message(exc.code, exc.read())) from None
    except urllib.error.URLError as exc:
        raise CliError(f"cannot reach {args.url}: {exc.reason}") from None
    return orjson.loads(body) if body else None


def _error_message(status: int, body: bytes) -> str:
    try:
        return f"{status}: {orjson.loads(body)['error']['message']}"
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return f"HTTP {status}"


def _load(path: str) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        raise CliError(str(exc)) from None


async def _with_store(config: Config, fn: Callable[[Store], Awaitable[Any]]) -> Any:


    store = make_store(config.store)
    await store.open()
    try:
        return await fn(store)
    finally:
        await store.close()


def _direct(args: argparse.Namespace, call: Call) -> dict | None:
    async def run(store: Store) -> dict | None:
        result = await call.direct(store)
        if call.changes:
            await store.publish_change()  # running proxies drop their caches
        return result

    try:
        return asyncio.run(_with_store(_load(args.config), run))
    except ProxyError as exc:
        raise CliError(exc.message) from None


def _run(args: argparse.Namespace, call: Call) -> int:
    try:
        result = _remote(args, call) if args.url else _direct(args, call)
    except CliError as exc:
        print(f"costproxy: {exc}", file=sys.stderr)
        return 1
    if result is not None:
        print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    return 0


def _model(cls: type[M], **values: Any) -> M:
    try:
        return cls.model_validate({k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        raise SystemExit(f"costproxy: {exc.errors(include_url=False)[0]['msg']}") from None


def _quote(text: str) -> str:
    return urllib.parse.quote(text, safe="")


def _keys_call(args: argparse.Namespace) -> Call:
    match args.keys_command:
        case "create":
            body = _model(
                KeyCreate,
                customer=args.customer,
                name=args.name,
                trusted=args.trusted or None,
                models=args.models.split(",") if args.models else None,
                rpm=args.rpm,
                tpm=args.tpm,
                expires_at=args.expires_at,
            )
            return Call(
                "POST", "/admin/v1/keys", body, lambda s: access_service.create_key(s, body), True
            )
        case "list":
            query = f"?customer={_quote(args.customer)}" if args.customer else ""
            return Call(
                "GET",
                f"/admin/v1/keys{query}",
                None,
                lambda s: access_service.list_keys(s, args.customer),
            )
        case "revoke":
            return Call(
                "DELETE",
                f"/admin/v1/keys/{_quote(args.key_id)}",
                None,
                lambda s: access_service.revoke_key(s, args.key_id),
                True,
            )
        case _:
            rotate = _model(KeyRotate, grace_s=args.grace_s)
            return Call(
                "POST",
                f"/admin/v1/keys/{_quote(args.key_id)}/rotate",
                rotate,
                lambda s: access_service.rotate_key(s, args.key_id, rotate),
                True,
            )


def _customers_call(args: argparse.Namespace) -> Call:
    match args.customers_command:
        case "list":
            return Call("GET", "/admin/v1/customers", None, access_service.list_customers)
        case "put":
            metadata = dict(item.partition("=")[::2] for item in args.metadata or [])
            body = _model(
                CustomerPut, name=args.name, metadata=metadata, rpm=args.rpm, tpm=args.tpm
            )
            return Call(
                "PUT",
                f"/admin/v1/customers/{_quote(args.id)}",
                body,
                lambda s: access_service.put_customer(s, args.id, body),
                True,
            )
        case "get":
            return Call(
                "GET",
                f"/admin/v1/customers/{_quote(args.id)}",
                None,
                lambda s: access_service.get_customer(s, args.id),
            )
        case _:
            return Call(
                "DELETE",
                f"/admin/v1/customers/{_quote(args.id)}",
                None,
                lambda s: access_service.delete_customer(s, args.id),
                True,
            )


def cmd_keys(args: argparse.Namespace) -> int:
    return _run(args, _keys_call(args))


def cmd_customers(args: argparse.Namespace) -> int:
    return _run(args, _customers_call(args))


def _export_remote(args: argparse.Namespace, params: dict[str, str], out: BinaryIO) -> None:
    token = args.admin_token or os.environ.get("COSTPROXY_ADMIN_TOKEN")
    if not token:
        raise CliError("give --admin-token or set COSTPROXY_ADMIN_TOKEN")
    url = args.url.rstrip("/") + "/admin/v1/usage?" + urllib.parse.urlencode(params)
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=300) as resp:
            while chunk := resp.read(64 * 1024):
                out.write(chunk)
    except urllib.error.HTTPError as exc:
        raise CliError(_error_message(exc.code, exc.read())) from None
    except urllib.error.URLError as exc:
        raise CliError(f"cannot reach {args.url}: {exc.reason}") from None


def _export_direct(args: argparse.Namespace, query: ExportQuery, out: BinaryIO) -> None:
    async def run(store: Store) -> None:
        records = store.iter_usage(
            customer=query.customer, from_ms=query.from_ms, to_ms=query.to_ms
        )
        async for chunk in export_chunks(records, query.format):
            out.write(chunk)

    asyncio.run(_with_store(_load(args.config), run))


def cmd_export(args: argparse.Namespace) -> int:
    params = {
        k: v
        for k, v in {
            "customer": args.customer,
            "from": args.from_day,
            "to": args.to_day,
            "format": args.format,
        }.items()
        if v
    }
    try:
        query = ExportQuery.parse(params)
    except SpendQueryError as exc:
        print(f"costproxy export: {exc}", file=sys.stderr)
        return 2
    out = sys.stdout.buffer if args.output == "-" else open(args.output, "wb")  # noqa: SIM115
    try:
        if args.url:
            _export_remote(args, params, out)
        else:
            _export_direct(args, query, out)
    except CliError as exc:
        print(f"costproxy: {exc}", file=sys.stderr)
        return 1
    finally:
        if out is not sys.stdout.buffer:
            out.close()
    return 0


def _target(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--url", help="a running proxy's admin URL, e.g. http://127.0.0.1:8080")
    where.add_argument("--config", "-c", default="config/costproxy.yaml", help="use its store")
    parser.add_argument("--admin-token", help="default: $COSTPROXY_ADMIN_TOKEN")


def add_admin_commands(sub: argparse._SubParsersAction) -> None:
    keys = sub.add_parser("keys", help="issue, list, revoke and rotate API keys")
    key_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = key_sub.add_parser("create", help="issue a key (prints its secret once)")
    create.add_argument("--customer")
    create.add_argument("--name")
    create.add_argument("--trusted", action="store_true")
    create.add_argument("--models", help="comma list of allowed models (default: all)")
    create.add_argument("--rpm", type=int)
    create.add_argument("--tpm", type=int)
    create.add_argument("--expires-at", help="ISO 8601 time")
    listing = key_sub.add_parser("list", help="list keys (never their secrets)")
    listing.add_argument("--customer")
    revoke = key_sub.add_parser("revoke", help="revoke a key on every instance")
    revoke.add_argument("key_id")
    rotate = key_sub.add_parser("rotate", help="new secret; the old one works for --grace-s")
    rotate.add_argument("key_id")
    rotate.add_argument("--grace-s", type=int, default=3600)
    for parser in (create, listing, revoke, rotate):
        _target(parser)
    keys.set_defaults(func=cmd_keys)

    customers = sub.add_parser("customers", help="create, show, list and delete customers")
    cust_sub = customers.add_subparsers(dest="customers_command", required=True)
    put = cust_sub.add_parser("put", help="create or replace a customer")
    put.add_argument("id")
    put.add_argument("--name")
    put.add_argument("--metadata", action="append", metavar="KEY=VALUE")
    put.add_argument("--rpm", type=int)
    put.add_argument("--tpm", type=int)
    get = cust_sub.add_parser("get", help="show a customer and its spend this month")
    get.add_argument("id")
    cust_list = cust_sub.add_parser("list", help="list customers with their spend this month")
    delete = cust_sub.add_parser("delete", help="delete a customer and revoke its keys")
    delete.add_argument("id")
    for parser in (put, get, cust_list, delete):
        _target(parser)
    customers.set_defaults(func=cmd_customers)

    export = sub.add_parser("export", help="usage records for invoicing, as JSON Lines or CSV")
    export.add_argument("--customer")
    export.add_argument("--from", dest="from_day", help="UTC date, default: first of this month")
    export.add_argument("--to", dest="to_day", help="UTC date, inclusive")
    export.add_argument("--format", choices=list(FORMATS), default="jsonl")
    export.add_argument("--output", "-o", default="-", help="file (default: stdout)")
    _target(export)
    export.set_defaults(func=cmd_export)
