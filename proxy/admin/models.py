"""Admin API bodies, in and out, as pydantic models: validation and the OpenAPI schemas."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from proxy.access.auth import key_id, valid_label
from proxy.access.identifiers import normal_id
from proxy.access.keys import Customer, IssuedKey
from proxy.access.ratelimit import MAX_LIMIT
from proxy.admin.routes import Body
from proxy.config import CustomerConfig, KeyConfig
from proxy.utc import iso_utc

__all__ = [
    "CustomerList",
    "CustomerOut",
    "CustomerPut",
    "ErrorBody",
    "KeyCreate",
    "KeyCreated",
    "KeyList",
    "KeyOut",
    "KeyRotate",
    "KeyRotated",
    "iso",
]

PerMinute = Annotated[int, Field(gt=0, le=MAX_LIMIT)]
InFlight = Annotated[
    int,
    Field(gt=0, le=10**6, description="Requests in flight at once, on each proxy instance."),
]
Label = Annotated[str, Field(min_length=1, max_length=128)]
# Where a key or customer comes from: the config file (changed by editing it), or the
# admin API / CLI at run time (stored).
Source = Annotated[
    Literal["config", "runtime"],
    Field(description="config: from the config file; runtime: made with the admin API or CLI"),
]


def iso(ms: int | None) -> str | None:
    return None if ms is None else iso_utc(ms)


def _check_label(value: str | None) -> str | None:
    if value is not None and not valid_label(value):
        raise ValueError("must be 1-128 printable characters without surrounding spaces")
    return value


def _check_customer(value: str | None) -> str | None:
    return _check_label(None if value is None else normal_id(value))


class KeyCreate(Body):
    customer: Label | None = None
    name: Label | None = None
    trusted: bool = False
    models: list[Label] | None = Field(None, max_length=256)
    rpm: PerMinute | None = None
    tpm: PerMinute | None = None
    max_in_flight: InFlight | None = None
    expires_at: datetime | None = None

    _customer = field_validator("customer")(_check_customer)
    _name = field_validator("name")(_check_label)

    @field_validator("expires_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value

    @model_validator(mode="after")
    def _customer_unless_trusted(self) -> KeyCreate:
        if self.customer is None and not self.trusted:
            raise ValueError("'customer' is required unless the key is trusted")
        if self.trusted and self.customer is not None:
            raise ValueError("a trusted key names its customer per request: omit 'customer'")
        return self


class KeyRotate(Body):
    grace_s: int = Field(3600, ge=0, le=30 * 86_400)


class KeyOut(BaseModel):
    id: str
    source: Source = "runtime"
    prefix: str | None
    customer: str | None
    name: str | None
    trusted: bool
    models: list[str] | None
    rpm: int | None
    tpm: int | None
    max_in_flight: int | None = None
    created_at: str | None
    expires_at: str | None
    last_used_at: str | None

    @classmethod
    def of(cls, key: IssuedKey) -> KeyOut:
        return cls(
            id=key.id,
            prefix=key.prefix,
            customer=key.customer,
            name=key.name,
            trusted=key.trusted,
            models=None if key.models is None else list(key.models),
            rpm=key.rpm,
            tpm=key.tpm,
            max_in_flight=key.max_in_flight,
            created_at=iso(key.created_ms) or "",
            expires_at=iso(key.expires_ms),
            last_used_at=iso(key.last_used_ms),
        )

    @classmethod
    def of_config(cls, key: KeyConfig) -> KeyOut:
        """A key of the config file: its id is the one records and budgets name it by;
        no part of its secret is shown."""
        return cls(
            id=key_id(key),
            source="config",
            prefix=None,
            customer=key.customer,
            name=key.name,
            trusted=key.trusted,
            models=None,
            rpm=key.rpm,
            tpm=key.tpm,
            created_at=None,
            expires_at=None,
            last_used_at=None,
        )


class KeyCreated(KeyOut):
    key: str = Field(description="The secret: shown in this response only.")


class KeyRotated(BaseModel):
    id: str
    key: str = Field(description="The new secret: shown in this response only.")
    prefix: str
    old_key_valid_until: str


class KeyList(BaseModel):
    keys: list[KeyOut]


class CustomerPut(Body):
    name: Label | None = None
    metadata: dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=512)]] = (
        Field(default_factory=dict, max_length=64)
    )
    rpm: PerMinute | None = None
    tpm: PerMinute | None = None
    max_in_flight: InFlight | None = None


class SpendTotals(BaseModel):
    cost_usd: str
    requests: int
    unpriced_requests: int
    input_tokens: int
    cached_input_tokens: int
    output_tokens: int
    reasoning_tokens: int


class CustomerOut(BaseModel):
    id: str
    source: Source = "runtime"
    name: str | None
    metadata: dict[str, str]
    rpm: int | None
    tpm: int | None
    max_in_flight: int | None = None
    created_at: str | None
    updated_at: str | None
    spend_this_month: SpendTotals | None = None

    @classmethod
    def of(cls, customer: Customer, spend: dict | None = None) -> CustomerOut:
        return cls(
            id=customer.id,
            name=customer.name,
            metadata=customer.metadata,
            rpm=customer.rpm,
            tpm=customer.tpm,
            max_in_flight=customer.max_in_flight,
            created_at=iso(customer.created_ms) or "",
            updated_at=iso(customer.updated_ms) or "",
            spend_this_month=None if spend is None else SpendTotals(**spend),
        )

    @classmethod
    def of_config(
        cls, customer_id: str, customer: CustomerConfig | None, spend: dict | None = None
    ) -> CustomerOut:
        """A customer the config names (under `customers:` or as a key's customer)."""
        return cls(
            id=customer_id,
            source="config",
            name=None,
            metadata={},
            rpm=None if customer is None else customer.rpm,
            tpm=None if customer is None else customer.tpm,
            created_at=None,
            updated_at=None,
            spend_this_month=None if spend is None else SpendTotals(**spend),
        )


class CustomerList(BaseModel):
    customers: list[CustomerOut]


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str


class ErrorBody(BaseModel):
    error: ErrorDetail
