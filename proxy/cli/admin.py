"""`costproxy keys|customers|export`: the admin API from the shell.

Each command runs over HTTP against a running proxy or straight on the store of a config
(see proxy.cli.target); both print the same JSON, because both run the same operations
(proxy.access.service).
"""

from __future__ import annotations

import argparse
import sys
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, BinaryIO, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from proxy.access import service as access_service
from proxy.accounting.export import FORMATS, ExportQuery, export_chunks
from proxy.accounting.spend import SpendQueryError
from proxy.admin.models import CustomerPut, KeyCreate, KeyRotate
from proxy.cli.target import Direct, Remote, Target, add_target_options, resolve
from proxy.config import Config
from proxy.store.base import Store

__all__ = ["add_admin_commands"]

Operation = Callable[[Store, Config], Awaitable[Any]]
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Call:
    """One admin operation: as an HTTP request, and as the same operation on a store."""

    method: str
    path: str
    body: BaseModel | None
    direct: Operation
    changes: bool = False


def _perform(args: argparse.Namespace, call: Call) -> Any:
    target = resolve(args)
    if isinstance(target, Direct):
        config = target.config
        return target.run(lambda store: call.direct(store, config), changes=call.changes)
    body = None if call.body is None else call.body.model_dump(mode="json", exclude_unset=True)
    return target.call(call.method, call.path, body)


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
                max_in_flight=args.max_in_flight,
                expires_at=args.expires_at,
            )
            return Call(
                "POST",
                "/admin/v1/keys",
                body,
                lambda s, _: access_service.create_key(s, body),
                True,
            )
        case "list":
            query = f"?customer={_quote(args.customer)}" if args.customer else ""
            return Call(
                "GET",
                f"/admin/v1/keys{query}",
                None,
                lambda s, c: access_service.list_keys(s, args.customer, c),
            )
        case "revoke":
            return Call(
                "DELETE",
                f"/admin/v1/keys/{_quote(args.key_id)}",
                None,
                lambda s, _: access_service.revoke_key(s, args.key_id),
                True,
            )
        case _:
            rotate = _model(KeyRotate, grace_s=args.grace_s)
            return Call(
                "POST",
                f"/admin/v1/keys/{_quote(args.key_id)}/rotate",
                rotate,
                lambda s, _: access_service.rotate_key(s, args.key_id, rotate),
                True,
            )


def _customers_call(args: argparse.Namespace) -> Call:
    match args.customers_command:
        case "list":
            return Call(
                "GET", "/admin/v1/customers", None, lambda s, c: access_service.list_customers(s, c)
            )
        case "put":
            metadata = dict(item.partition("=")[::2] for item in args.metadata or [])
            body = _model(
                CustomerPut,
                name=args.name,
                metadata=metadata,
                rpm=args.rpm,
                tpm=args.tpm,
                max_in_flight=args.max_in_flight,
            )
            return Call(
                "PUT",
                f"/admin/v1/customers/{_quote(args.id)}",
                body,
                lambda s, _: access_service.put_customer(s, args.id, body),
                True,
            )
        case "get":
            return Call(
                "GET",
                f"/admin/v1/customers/{_quote(args.id)}",
                None,
                lambda s, c: access_service.get_customer(s, args.id, c),
            )
        case _:
            return Call(
                "DELETE",
                f"/admin/v1/customers/{_quote(args.id)}",
                None,
                lambda s, _: access_service.delete_customer(s, args.id),
                True,
            )


def _run(args: argparse.Namespace, call: Call, confirmation: str | None = None) -> int:
    """Perform `call`; print its JSON answer, or `confirmation` for a call without one."""
    result = _perform(args, call)
    if confirmation is None:
        print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    else:
        print(confirmation)
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    confirmation = None
    if args.keys_command == "revoke":
        confirmation = f"revoked {args.key_id}: every proxy on its store refuses it within 1 s"
    return _run(args, _keys_call(args), confirmation)


def cmd_customers(args: argparse.Namespace) -> int:
    confirmation = None
    if args.customers_command == "delete":
        confirmation = (
            f"deleted customer {args.id} and revoked its issued keys (its usage records stay)"
        )
    return _run(args, _customers_call(args), confirmation)


def _export_to(target: Target, params: dict[str, str], out: BinaryIO) -> None:
    query = ExportQuery.parse(params)
    if isinstance(target, Remote):
        target.download("/admin/v1/usage?" + urllib.parse.urlencode(params), out)
        return

    async def write(store: Store) -> None:
        records = store.iter_usage(
            customer=query.customer, from_ms=query.from_ms, to_ms=query.to_ms
        )
        async for chunk in export_chunks(records, query.format):
            out.write(chunk)

    target.run(write)


def cmd_export(args: argparse.Namespace) -> int:
    values = {"customer": args.customer, "from": args.from_day, "to": args.to_day,
              "format": args.format}  # fmt: skip
    params = {k: v for k, v in values.items() if v}
    try:
        ExportQuery.parse(params)  # a bad date is refused before anything is opened
    except SpendQueryError as exc:
        print(f"costproxy export: {exc}", file=sys.stderr)
        return 2
    target = resolve(args)
    if args.output == "-":
        _export_to(target, params, sys.stdout.buffer)
    else:
        with open(args.output, "wb") as out:
            _export_to(target, params, out)
    return 0


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
    create.add_argument(
        "--max-in-flight", type=int, help="requests in flight at once (on each instance)"
    )
    create.add_argument("--expires-at", help="ISO 8601 time")
    listing = key_sub.add_parser("list", help="list keys, the config's and issued ones")
    listing.add_argument("--customer")
    revoke = key_sub.add_parser("revoke", help="revoke an issued key on every instance")
    revoke.add_argument("key_id")
    rotate = key_sub.add_parser("rotate", help="new secret; the old one works for --grace-s")
    rotate.add_argument("key_id")
    rotate.add_argument("--grace-s", type=int, default=3600)
    for parser in (create, listing, revoke, rotate):
        add_target_options(parser)
    keys.set_defaults(func=cmd_keys)

    customers = sub.add_parser("customers", help="create, show, list and delete customers")
    cust_sub = customers.add_subparsers(dest="customers_command", required=True)
    put = cust_sub.add_parser("put", help="create or replace a customer")
    put.add_argument("id")
    put.add_argument("--name")
    put.add_argument("--metadata", action="append", metavar="KEY=VALUE")
    put.add_argument("--rpm", type=int)
    put.add_argument("--tpm", type=int)
    put.add_argument(
        "--max-in-flight", type=int, help="requests in flight at once (on each instance)"
    )
    get = cust_sub.add_parser("get", help="show a customer and its spend this month")
    get.add_argument("id")
    cust_list = cust_sub.add_parser("list", help="list customers with their spend this month")
    delete = cust_sub.add_parser("delete", help="delete a customer and revoke its keys")
    delete.add_argument("id")
    for parser in (put, get, cust_list, delete):
        add_target_options(parser)
    customers.set_defaults(func=cmd_customers)

    export = sub.add_parser("export", help="usage records for invoicing, as JSON Lines or CSV")
    export.add_argument("--customer")
    export.add_argument("--from", dest="from_day", help="UTC date, default: first of this month")
    export.add_argument("--to", dest="to_day", help="UTC date, inclusive")
    export.add_argument("--format", choices=list(FORMATS), default="jsonl")
    export.add_argument("--output", "-o", default="-", help="file (default: stdout)")
    add_target_options(export)
    export.set_defaults(func=cmd_export)
