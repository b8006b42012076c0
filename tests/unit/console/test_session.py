"""Console sessions: what a cookie proves, and what it cannot be made to prove."""

from __future__ import annotations

import base64

import orjson

from proxy.console.session import ADMIN_TTL_MS, SessionSigner

NOW = 1_800_000_000_000
signer = SessionSigner("admin-token-0123456789")


def test_a_cookie_round_trips_until_it_expires() -> None:
    session = signer.admin(NOW)
    cookie = signer.dump(session)
    assert signer.load(cookie, NOW + 1) == session
    assert signer.load(cookie, NOW + ADMIN_TTL_MS - 1) == session
    assert signer.load(cookie, NOW + ADMIN_TTL_MS) is None


def test_a_share_session_ends_with_its_link() -> None:
    session = signer.share(NOW, "acme", "ab" * 32, link_expires_ms=NOW + 5_000)
    assert (session.kind, session.customer, session.expires_ms) == ("share", "acme", NOW + 5_000)
    assert session.may_see("acme") and not session.may_see("globex")
    assert signer.load(signer.dump(session), NOW + 5_000) is None


def test_a_forged_or_foreign_cookie_proves_nothing() -> None:
    share = signer.share(NOW, "acme", "ab" * 32, link_expires_ms=NOW + 10**9)
    body, mac = signer.dump(share).split(".")
    # Turning a customer's link into the operator's session breaks the signature.
    data = orjson.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    forged = base64.urlsafe_b64encode(orjson.dumps({**data, "k": "admin"})).rstrip(b"=")
    assert signer.load(f"{forged.decode()}.{mac}", NOW) is None
    # Another admin token (a changed one) signs differently: every session ends.
    assert SessionSigner("another-admin-token-xyz").load(signer.dump(share), NOW) is None
    for junk in ("", "x", "a.b.c", "!!!.???", f"{body}.", None):
        assert signer.load(junk, NOW) is None


def test_csrf_tokens_belong_to_one_session() -> None:
    one, two = signer.admin(NOW), signer.admin(NOW)
    assert signer.csrf_ok(one, signer.csrf(one))
    assert not signer.csrf_ok(one, signer.csrf(two))
    assert not signer.csrf_ok(one, "")
    assert not signer.csrf_ok(one, None)
