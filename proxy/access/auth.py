"""Client API keys and attribution: who is calling, and on whose behalf. Pure."""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from proxy.access.identifiers import normal_id, normal_tag_name
from proxy.access.keys import secret_sha256
from proxy.config import KeyConfig
from proxy.errors import AuthenticationError, BadRequestError, PermissionDeniedError

__all__ = [
    "Attribution",
    "KeyIndex",
    "Principal",
    "attribute",
    "bearer_matches",
    "check_end_user_source",
    "key_id",
    "parse_tags",
    "presented_key",
    "valid_label",
]

MAX_ID_LENGTH = 128
MAX_TAGS = 16
_TAG_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str  # safe to show: a name or a short hash prefix, never the secret
    customer: str | None
    trusted: bool
    models: frozenset[str] | None = None  # None: every model
    rpm: int | None = None
    tpm: int | None = None
    max_in_flight: int | None = None  # requests in flight at once, on one instance


@dataclass(frozen=True, slots=True)
class Attribution:
    customer: str
    end_user: str | None
    tags: tuple[str, ...]


def _digest(key: KeyConfig) -> str:
    if key.key_sha256:
        return key.key_sha256.lower()
    assert key.key is not None  # the config requires one of the two
    return secret_sha256(key.key.get_secret_value())


def key_id(key: KeyConfig) -> str:
    """The key's name, or a short prefix of its hash: safe to log and to show."""
    return key.name or f"key-{_digest(key)[:8]}"


class KeyIndex:
    """Keys by their SHA-256, so the index never holds a secret."""

    def __init__(self, keys: Iterable[KeyConfig]) -> None:
        self._by_hash: dict[str, Principal] = {}
        for key in keys:
            self._by_hash[_digest(key)] = Principal(
                key_id(key),
                key.customer,
                key.trusted,
                rpm=key.rpm,
                tpm=key.tpm,
                max_in_flight=key.max_in_flight,
            )

    def authenticate(self, headers: Mapping[str, str]) -> Principal:
        principal = self.lookup(presented_key(headers))
        if principal is None:
            raise AuthenticationError("Invalid API key.")
        return principal

    def lookup(self, secret: str) -> Principal | None:
        """The config key `secret` opens, or None."""
        # Looking up the SHA-256 of the presented key leaks nothing usable through timing:
        # an attacker cannot steer the digest's bytes toward a stored one, so this is as
        # good as a constant-time compare, at O(1) instead of one compare per key.
        return self._by_hash.get(secret_sha256(secret))

    def __len__(self) -> int:
        return len(self._by_hash)


def presented_key(headers: Mapping[str, str]) -> str:
    """The key the client sent; 401 when it sent none."""
    secret = _presented_key(headers)
    if secret is None:
        raise AuthenticationError(
            "Missing API key: send 'Authorization: Bearer <key>'.", code="missing_api_key"
        )
    return secret


def _presented_key(headers: Mapping[str, str]) -> str | None:
    """`Authorization: Bearer`, else the header Azure's clients (`api-key`) or Anthropic's
    (`x-api-key`) send the key in."""
    auth = headers.get("Authorization")
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        return None
    api_key = headers.get("api-key") or headers.get("x-api-key")
    return api_key.strip() if api_key and api_key.strip() else None


def bearer_matches(headers: Mapping[str, str], secret: str) -> bool:
    """Whether the request carries `Authorization: Bearer <secret>`, compared in constant
    time (an operator token has no digest index to hide behind)."""
    scheme, _, presented = headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        presented.strip().encode(), secret.encode()
    )


def valid_label(value: str, max_length: int = MAX_ID_LENGTH) -> bool:
    """A customer or end-user id: 1..max_length printable characters, no control chars."""
    return 0 < len(value) <= max_length and value.isprintable() and value.strip() == value


def parse_tags(header: str | None) -> tuple[str, ...]:
    """`X-Cost-Tags: feature=story,Env=prod` → ("env=prod", "feature=story"): names
    case-folded, names and values in their one spelling (see access.identifiers)."""
    if not header:
        return ()
    tags: dict[str, str] = {}
    for part in header.split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        key, value = normal_tag_name(key.strip()), normal_id(value.strip())
        if not sep or not key or not value:
            raise BadRequestError(
                f"X-Cost-Tags: {part!r} is not key=value", code="invalid_tags", param="X-Cost-Tags"
            )
        if len(key) > 64 or not set(key) <= _TAG_KEY_CHARS:
            raise BadRequestError(
                "X-Cost-Tags: tag names are 1-64 characters of letters, digits, '_', '.', '-'",
                code="invalid_tags",
                param="X-Cost-Tags",
            )
        if not valid_label(value, 128):
            raise BadRequestError(
                "X-Cost-Tags: tag values are 1-128 printable characters",
                code="invalid_tags",
                param="X-Cost-Tags",
            )
        tags[key] = value
    if len(tags) > MAX_TAGS:
        raise BadRequestError(
            f"X-Cost-Tags: at most {MAX_TAGS} tags", code="invalid_tags", param="X-Cost-Tags"
        )
    return tuple(sorted(f"{k}={v}" for k, v in tags.items()))


def attribute(principal: Principal, headers: Mapping[str, str], body_user: object) -> Attribution:
    if principal.trusted:
        customer = headers.get("X-Customer-Id")
        if customer is None:
            raise BadRequestError(
                "This key is trusted: send the customer in the X-Customer-Id header.",
                code="missing_customer",
                param="X-Customer-Id",
            )
        customer = normal_id(customer)
        if not valid_label(customer):
            raise BadRequestError(
                f"X-Customer-Id must be 1-{MAX_ID_LENGTH} printable characters.",
                code="invalid_customer",
                param="X-Customer-Id",
            )
    else:
        customer = principal.customer or ""
    if body_user is not None and not isinstance(body_user, str):
        raise BadRequestError("'user' must be a string.", code="invalid_type", param="user")
    # The header wins over the body's `user`; an empty value means "no end user" in both.
    end_user = headers.get("X-End-User-Id") or body_user or None
    if end_user is not None:
        end_user = normal_id(end_user)
    if end_user is not None and not valid_label(end_user, 256):
        raise BadRequestError(
            "The end user id (X-End-User-Id or 'user') must be 1-256 printable characters.",
            code="invalid_end_user",
            param="user",
        )
    return Attribution(customer, end_user, parse_tags(headers.get("X-Cost-Tags")))


def check_end_user_source(principal: Principal, attribution: Attribution, mode: str) -> None:
    """The customer's `end_user_ids` rule: who may name its end users (see CustomerConfig).

    With `trusted` an untrusted key may not name one (it could rotate ids to escape a
    per-end-user cap); with `required` every request names one, from a trusted key.
    """
    if mode == "any":
        return
    if not principal.trusted and (attribution.end_user is not None or mode == "required"):
        raise PermissionDeniedError(
            f"Customer {attribution.customer!r} takes end-user ids from trusted keys only: "
            "send this request through your backend's trusted key.",
            code="end_user_not_trusted",
            param="X-End-User-Id",
        )
    if mode == "required" and attribution.end_user is None:
        raise BadRequestError(
            f"Customer {attribution.customer!r} requires an end user: send X-End-User-Id "
            "(or the body's 'user').",
            code="missing_end_user",
            param="X-End-User-Id",
        )
