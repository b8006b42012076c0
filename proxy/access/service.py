"""Admin operations on keys and customers, over a store: shared by the HTTP API and the
CLI's direct mode, so both answer with the same JSON. The caller announces changes.

Listings include the keys and customers of the config file (`source: config`) beside
those made at run time (`source: runtime`); a customer in both is listed once, as stored.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from proxy.access.auth import valid_label
from proxy.access.identifiers import normal_id
from proxy.access.keys import (
    Customer,
    IssuedKey,
    display_prefix,
    mint_secret,
    new_key_id,
    secret_sha256,
)
from proxy.accounting.spend import totals_json
from proxy.admin.models import (
    CustomerList,
    CustomerOut,
    CustomerPut,
    KeyCreate,
    KeyCreated,
    KeyList,
    KeyOut,
    KeyRotate,
    KeyRotated,
    iso,
)
from proxy.config import Config, CustomerConfig
from proxy.errors import BadRequestError, NotFoundError
from proxy.store.base import Store
from proxy.store.buckets import utc_month

__all__ = [
    "configured_customers",
    "create_key",
    "delete_customer",
    "get_customer",
    "get_key",
    "list_customers",
    "list_keys",
    "put_customer",
    "revoke_key",
    "rotate_key",
]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


async def create_key(store: Store, body: KeyCreate) -> dict:
    now = _now_ms()
    expires_ms = None
    if body.expires_at is not None:
        expires_ms = int(body.expires_at.timestamp() * 1000)
        if expires_ms <= now:
            raise BadRequestError(
                "'expires_at' is in the past.", code="invalid_value", param="expires_at"
            )
    secret = mint_secret()
    key = IssuedKey(
        id=new_key_id(),
        prefix=display_prefix(secret),
        customer=body.customer,
        name=body.name,
        created_ms=now,
        expires_ms=expires_ms,
        trusted=body.trusted,
        models=None if body.models is None else tuple(body.models),
        rpm=body.rpm,
        tpm=body.tpm,
        max_in_flight=body.max_in_flight,
    )
    await store.create_key(key, secret_sha256(secret))
    return KeyCreated(**KeyOut.of(key).model_dump(), key=secret).model_dump()


async def get_key(store: Store, key_id: str) -> dict:
    key = await store.get_key(key_id)
    if key is None:
        raise NotFoundError(f"No key {key_id!r}.", code="key_not_found")
    return KeyOut.of(key).model_dump()


async def list_keys(store: Store, customer: str | None, config: Config | None = None) -> dict:
    configured = [
        KeyOut.of_config(key)
        for key in (config.keys if config is not None else ())
        if customer is None or key.customer == customer
    ]
    issued = [KeyOut.of(k) for k in await store.list_keys(customer)]
    return KeyList(keys=[*configured, *issued]).model_dump()


async def revoke_key(store: Store, key_id: str) -> None:
    if not await store.revoke_key(key_id):
        raise NotFoundError(f"No key {key_id!r}.", code="key_not_found")


async def rotate_key(store: Store, key_id: str, body: KeyRotate) -> dict:
    secret = mint_secret()
    valid_until = _now_ms() + body.grace_s * 1000
    key = await store.rotate_key(key_id, secret_sha256(secret), display_prefix(secret), valid_until)
    if key is None:
        raise NotFoundError(f"No key {key_id!r}.", code="key_not_found")
    return KeyRotated(
        id=key.id, key=secret, prefix=key.prefix, old_key_valid_until=iso(valid_until) or ""
    ).model_dump()


def check_customer_id(customer_id: str) -> str:
    customer_id = normal_id(customer_id)
    if not valid_label(customer_id):
        raise BadRequestError(
            "A customer id is 1-128 printable characters.", code="invalid_customer", param="id"
        )
    return customer_id


async def _spend(store: Store, customer_id: str) -> dict:
    month = utc_month(int(datetime.now(UTC).timestamp() * 1000))
    return totals_json(await store.monthly_totals(customer_id, month))


async def put_customer(store: Store, customer_id: str, body: CustomerPut) -> dict:
    now = _now_ms()
    customer = Customer(
        id=check_customer_id(customer_id),
        name=body.name,
        metadata=dict(body.metadata),
        rpm=body.rpm,
        tpm=body.tpm,
        max_in_flight=body.max_in_flight,
        created_ms=now,
        updated_ms=now,
    )
    stored = await store.put_customer(customer)
    return CustomerOut.of(stored, await _spend(store, stored.id)).model_dump()


def configured_customers(config: Config | None) -> set[str]:
    """Customer ids the config names: under `customers:`, or as a key's customer."""
    if config is None:
        return set()
    return {*config.customers, *(key.customer for key in config.keys if key.customer)}


def _settings(config: Config | None, customer_id: str) -> CustomerConfig | None:
    return None if config is None else config.customers.get(customer_id)


async def get_customer(store: Store, customer_id: str, config: Config | None = None) -> dict:
    customer = await store.get_customer(check_customer_id(customer_id))
    if customer is not None:
        return CustomerOut.of(customer, await _spend(store, customer.id)).model_dump()
    if customer_id in configured_customers(config):
        settings = _settings(config, customer_id)
        spend = await _spend(store, customer_id)
        return CustomerOut.of_config(customer_id, settings, spend).model_dump()
    raise NotFoundError(f"No customer {customer_id!r}.", code="customer_not_found")


async def list_customers(store: Store, config: Config | None = None) -> dict:
    stored = {c.id: c for c in await store.list_customers()}
    listed = []
    for customer_id in sorted(stored.keys() | configured_customers(config)):
        spend = await _spend(store, customer_id)
        if customer_id in stored:
            listed.append(CustomerOut.of(stored[customer_id], spend))
        else:
            settings = _settings(config, customer_id)
            listed.append(CustomerOut.of_config(customer_id, settings, spend))
    return CustomerList(customers=listed).model_dump()


async def delete_customer(store: Store, customer_id: str) -> None:
    if not await store.delete_customer(check_customer_id(customer_id)):
        raise NotFoundError(f"No customer {customer_id!r}.", code="customer_not_found")
