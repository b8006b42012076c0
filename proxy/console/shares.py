"""Read-only customer links: create, list, revoke. Shared by the console and the CLI."""

from __future__ import annotations

from proxy.access.shares import ShareLink, mint_share_secret, new_share_id, share_sha256
from proxy.store.base import Store

__all__ = ["MAX_DAYS", "create_share", "share_url"]

MAX_DAYS = 366
_DAY_MS = 86_400_000


async def create_share(
    store: Store, customer: str, days: int, now_ms: int
) -> tuple[ShareLink, str]:
    """A new link valid for `days` days, and its secret (shown once: only its digest is
    stored)."""
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"a link is valid for 1 to {MAX_DAYS} days, not {days}")
    secret = mint_share_secret()
    share = ShareLink(
        id=new_share_id(),
        customer=customer,
        sha256=share_sha256(secret),
        created_ms=now_ms,
        expires_ms=now_ms + days * _DAY_MS,
    )
    await store.put_share(share)
    return share, secret


def share_url(base_url: str, secret: str) -> str:
    return f"{base_url.rstrip('/')}/ui/share/{secret}"
