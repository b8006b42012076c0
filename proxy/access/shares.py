"""Read-only customer links as values: minting the secret and its digest. Pure.

A link carries a random 256-bit secret; the store keeps only its SHA-256, so a leaked
store does not leak working links, and revoking a link is one store write.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import asdict, dataclass

__all__ = ["ShareLink", "mint_share_secret", "new_share_id", "share_sha256"]


def mint_share_secret() -> str:
    return "cps-" + secrets.token_urlsafe(32)


def share_sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_share_id() -> str:
    return "share_" + secrets.token_hex(8)


@dataclass(frozen=True, slots=True)
class ShareLink:
    id: str
    customer: str
    sha256: str
    created_ms: int
    expires_ms: int
    revoked_ms: int | None = None

    def live(self, now_ms: int) -> bool:
        return self.revoked_ms is None and now_ms < self.expires_ms

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ShareLink:
        return cls(**data)
