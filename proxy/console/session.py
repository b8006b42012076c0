"""Console sessions: a signed, expiring cookie and the CSRF token bound to it. Pure.

The cookie holds no secret: who it is for (the operator, or one customer through a shared
link), when it expires, and a random nonce, signed with HMAC-SHA256 under a key derived
from the admin token. So every instance behind a load balancer accepts it, a restart keeps
people logged in, and changing the admin token ends every session at once. The CSRF token
of a session is an HMAC of its nonce: a form from another site cannot know it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Literal

import orjson

__all__ = ["COOKIE", "Session", "SessionSigner"]

COOKIE = "costproxy_console"
ADMIN_TTL_MS = 12 * 3600 * 1000
SHARE_TTL_MS = 12 * 3600 * 1000


@dataclass(frozen=True, slots=True)
class Session:
    kind: Literal["admin", "share"]
    expires_ms: int
    nonce: str
    customer: str | None = None  # a shared link's customer
    share_sha256: str | None = None  # re-checked on every page: a revoked link ends here

    @property
    def is_admin(self) -> bool:
        return self.kind == "admin"

    def may_see(self, customer: str) -> bool:
        return self.is_admin or customer == self.customer


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionSigner:
    def __init__(self, admin_token: str) -> None:
        self._key = hmac.new(
            admin_token.encode(), b"costproxy console session v1", hashlib.sha256
        ).digest()

    def _mac(self, purpose: bytes, data: bytes) -> bytes:
        return hmac.new(self._key, purpose + b"\0" + data, hashlib.sha256).digest()

    def admin(self, now_ms: int) -> Session:
        return Session("admin", now_ms + ADMIN_TTL_MS, secrets.token_urlsafe(16))

    def share(self, now_ms: int, customer: str, sha256: str, link_expires_ms: int) -> Session:
        expires = min(now_ms + SHARE_TTL_MS, link_expires_ms)
        return Session("share", expires, secrets.token_urlsafe(16), customer, sha256)

    def dump(self, session: Session) -> str:
        payload = orjson.dumps(
            {
                "k": session.kind,
                "x": session.expires_ms,
                "n": session.nonce,
                "c": session.customer,
                "s": session.share_sha256,
            }
        )
        return f"{_b64(payload)}.{_b64(self._mac(b'session', payload))}"

    def load(self, cookie: str | None, now_ms: int) -> Session | None:
        """The session a cookie carries, or None when it is missing, forged or expired."""
        if not cookie or cookie.count(".") != 1:
            return None
        body, mac = cookie.split(".")
        try:
            payload, given = _unb64(body), _unb64(mac)
        except (ValueError, TypeError):
            return None
        if not hmac.compare_digest(given, self._mac(b"session", payload)):
            return None
        data = orjson.loads(payload)
        session = Session(data["k"], data["x"], data["n"], data["c"], data["s"])
        return session if now_ms < session.expires_ms else None

    def csrf(self, session: Session) -> str:
        return _b64(self._mac(b"csrf", session.nonce.encode()))

    def csrf_ok(self, session: Session, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(token, self.csrf(session))
