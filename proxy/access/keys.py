"""Issued API keys and customers as values: minting a secret, its digest, its display form.

Pure: no I/O. A secret exists only in `mint_secret()`'s return value and in the one
response that hands it out; everything stored or listed carries its SHA-256 or prefix.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = [
    "ISSUED_KEY_PREFIX",
    "Customer",
    "IssuedKey",
    "display_prefix",
    "mint_secret",
    "new_key_id",
    "secret_sha256",
]

ISSUED_KEY_PREFIX = "cp-"
_DISPLAY_CHARS = 8  # "cp-" and 5 random characters: enough to tell keys apart in a list


def mint_secret() -> str:
    """A new key: "cp-" and 32 random bytes, URL-safe base64 (43 characters)."""
    return ISSUED_KEY_PREFIX + secrets.token_urlsafe(32)


def secret_sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def display_prefix(secret: str) -> str:
    return secret[:_DISPLAY_CHARS]


def new_key_id() -> str:
    return "key_" + secrets.token_hex(8)


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A key as stored and listed. Its secret is not here, by construction."""

    id: str
    prefix: str
    customer: str | None
    name: str | None
    created_ms: int
    expires_ms: int | None = None
    last_used_ms: int | None = None
    trusted: bool = False
    models: tuple[str, ...] | None = None  # None: every model
    rpm: int | None = None
    tpm: int | None = None
    max_in_flight: int | None = None

    def live(self, now_ms: int) -> bool:
        return self.expires_ms is None or now_ms < self.expires_ms

    def to_dict(self) -> dict[str, Any]:
        data = _without_unset(asdict(self))
        data["models"] = None if self.models is None else list(self.models)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IssuedKey:
        models = data.get("models")
        return cls(**{**_known(cls, data), "models": None if models is None else tuple(models)})


@dataclass(frozen=True, slots=True)
class Customer:
    id: str
    name: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    rpm: int | None = None
    tpm: int | None = None
    created_ms: int = 0
    updated_ms: int = 0
    max_in_flight: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return _without_unset(asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Customer:
        return cls(**_known(cls, data))


# Fields added after the first release are stored only when set, so that an older
# instance sharing the store (a rolling deploy) reads what it knows; and a field this
# version does not know is ignored.
_LATER_FIELDS = ("max_in_flight",)


def _without_unset(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in _LATER_FIELDS or v is not None}


def _known(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}
