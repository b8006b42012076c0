"""proxy.access.auth: who is calling (API keys) and on whose behalf (customer, end user, tags)."""

from __future__ import annotations

import pytest

from proxy.access.auth import Attribution, KeyIndex, Principal, attribute, parse_tags, valid_label
from proxy.config import KeyConfig
from proxy.errors import AuthenticationError, BadRequestError

# sha256(b"sk-hashed-secret"), upper-cased as an operator might paste it
HASHED_SECRET_SHA256 = "D6845FBE9F665EAB6EC3592D5B20814A2A12F11B6CD7F94F7362E05C863C2345"

KEYS = KeyIndex(
    [
        KeyConfig.model_validate({"key": "sk-acme", "customer": "acme", "name": "acme-prod"}),
        KeyConfig.model_validate({"key": "sk-globex", "customer": "globex"}),
        KeyConfig.model_validate({"key_sha256": HASHED_SECRET_SHA256, "trusted": True}),
    ]
)
ACME = Principal("acme-prod", "acme", False)
# sha256(b"sk-globex") starts with 486e1dad
GLOBEX = Principal("key-486e1dad", "globex", False)
BACKEND = Principal("key-d6845fbe", None, True)


def test_index_holds_every_key() -> None:
    assert len(KEYS) == 3


@pytest.mark.parametrize(
    ("headers", "principal"),
    [
        ({"Authorization": "Bearer sk-acme"}, ACME),
        ({"Authorization": "bearer sk-acme"}, ACME),
        ({"Authorization": "BEARER sk-acme "}, ACME),
        ({"Authorization": "Bearer   sk-acme"}, ACME),
        ({"api-key": "sk-acme"}, ACME),
        ({"api-key": " sk-acme "}, ACME),
        ({"Authorization": "Bearer sk-globex"}, GLOBEX),
        ({"Authorization": "Bearer sk-hashed-secret"}, BACKEND),
        ({"Authorization": "Bearer sk-acme", "api-key": "sk-globex"}, ACME),  # Authorization wins
        ({"Authorization": "", "api-key": "sk-globex"}, GLOBEX),
    ],
)
def test_authenticate(headers: dict[str, str], principal: Principal) -> None:
    assert KEYS.authenticate(headers) == principal


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "missing_api_key"),
        ({"Authorization": "Basic c2stYWNtZQ=="}, "missing_api_key"),
        ({"Authorization": "sk-acme"}, "missing_api_key"),  # no scheme at all
        ({"Authorization": "Bearer"}, "missing_api_key"),
        ({"Authorization": "Bearer    "}, "missing_api_key"),
        ({"Authorization": "Basic x", "api-key": "sk-acme"}, "missing_api_key"),
        ({"api-key": ""}, "missing_api_key"),
        ({"api-key": "   "}, "missing_api_key"),
        ({"Authorization": "Bearer sk-wrong"}, "invalid_api_key"),
        ({"Authorization": "Bearer SK-ACME"}, "invalid_api_key"),  # keys are case-sensitive
        ({"Authorization": f"Bearer {HASHED_SECRET_SHA256}"}, "invalid_api_key"),  # not the hash
        ({"api-key": "sk-wrong"}, "invalid_api_key"),
    ],
)
def test_authenticate_rejects(headers: dict[str, str], code: str) -> None:
    with pytest.raises(AuthenticationError) as info:
        KEYS.authenticate(headers)
    assert info.value.code == code
    assert info.value.status == 401
    assert "sk-" not in info.value.message  # the presented key is never echoed back


# --- attribute ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("principal", "headers", "body_user", "expected"),
    [
        (ACME, {}, None, Attribution("acme", None, ())),
        (ACME, {"X-Customer-Id": "globex"}, None, Attribution("acme", None, ())),  # not trusted
        (BACKEND, {"X-Customer-Id": "globex"}, None, Attribution("globex", None, ())),
        (BACKEND, {"X-Customer-Id": "c" * 128}, None, Attribution("c" * 128, None, ())),
        (
            BACKEND,
            {"X-Customer-Id": "Ünïcode client"},
            None,
            Attribution("Ünïcode client", None, ()),
        ),
        (ACME, {"X-End-User-Id": "u-1"}, "u-2", Attribution("acme", "u-1", ())),
        (ACME, {}, "u-2", Attribution("acme", "u-2", ())),
        (ACME, {}, "", Attribution("acme", None, ())),
        (ACME, {"X-End-User-Id": ""}, None, Attribution("acme", None, ())),
        (ACME, {"X-End-User-Id": ""}, "u-3", Attribution("acme", "u-3", ())),
        (ACME, {"X-End-User-Id": "u" * 256}, None, Attribution("acme", "u" * 256, ())),
        (
            ACME,
            {"X-Cost-Tags": "team=search,env=prod"},
            None,
            Attribution("acme", None, ("env=prod", "team=search")),
        ),
    ],
)
def test_attribute(
    principal: Principal, headers: dict[str, str], body_user: object, expected: Attribution
) -> None:
    assert attribute(principal, headers, body_user) == expected


@pytest.mark.parametrize(
    ("principal", "headers", "body_user", "code", "param"),
    [
        (BACKEND, {}, None, "missing_customer", "X-Customer-Id"),
        (BACKEND, {"X-End-User-Id": "u"}, "u", "missing_customer", "X-Customer-Id"),
        (BACKEND, {"X-Customer-Id": ""}, None, "invalid_customer", "X-Customer-Id"),
        (BACKEND, {"X-Customer-Id": "bad\x00id"}, None, "invalid_customer", "X-Customer-Id"),
        (BACKEND, {"X-Customer-Id": "tab\there"}, None, "invalid_customer", "X-Customer-Id"),
        (BACKEND, {"X-Customer-Id": " padded"}, None, "invalid_customer", "X-Customer-Id"),
        (BACKEND, {"X-Customer-Id": "c" * 129}, None, "invalid_customer", "X-Customer-Id"),
        (ACME, {}, 123, "invalid_type", "user"),
        (ACME, {}, {"id": "u"}, "invalid_type", "user"),
        (ACME, {}, ["u"], "invalid_type", "user"),
        (ACME, {"X-End-User-Id": "u-1"}, 42, "invalid_type", "user"),
        (ACME, {}, "line\nbreak", "invalid_end_user", "user"),
        (ACME, {}, "u" * 257, "invalid_end_user", "user"),
        (ACME, {"X-End-User-Id": "bell\x07"}, None, "invalid_end_user", "user"),
        (ACME, {"X-Cost-Tags": "novalue"}, None, "invalid_tags", "X-Cost-Tags"),
    ],
)
def test_attribute_rejects(
    principal: Principal, headers: dict[str, str], body_user: object, code: str, param: str
) -> None:
    with pytest.raises(BadRequestError) as info:
        attribute(principal, headers, body_user)
    assert (info.value.code, info.value.param, info.value.status) == (code, param, 400)


@pytest.mark.parametrize(
    ("value", "max_length", "valid"),
    [
        ("acme", 128, True),
        ("a b", 128, True),
        ("x" * 128, 128, True),
        ("x" * 129, 128, False),
        ("x" * 200, 256, True),
        ("", 128, False),
        (" acme", 128, False),
        ("acme ", 128, False),
        ("ac\x1bme", 128, False),
        ("ac\u200bme", 128, False),  # zero-width space is not printable
        ("ac\x7fme", 128, False),
    ],
)
def test_valid_label(value: str, max_length: int, valid: bool) -> None:
    assert valid_label(value, max_length) is valid


# --- parse_tags -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "tags"),
    [
        (None, ()),
        ("", ()),
        (",, ,", ()),
        ("feature=story,env=prod", ("env=prod", "feature=story")),
        (" a = 1 , b=2 ,", ("a=1", "b=2")),
        ("a=1,a=2", ("a=2",)),  # one value per key: the last wins
        ("b=1,a=1,b=3", ("a=1", "b=3")),
        ("k=v=w", ("k=v=w",)),
        ("a.b-c_D9=x y", ("a.b-c_d9=x y",)),  # names case-folded
        ("k=" + "v" * 128, ("k=" + "v" * 128,)),
        ("k" * 64 + "=v", ("k" * 64 + "=v",)),
        (",".join(f"t{i:02d}=v" for i in range(16)), tuple(f"t{i:02d}=v" for i in range(16))),
        # 20 entries but only 16 distinct keys: within the limit
        (
            ",".join(f"t{i % 16:02d}=v{i}" for i in range(20)),
            tuple(sorted(f"t{i % 16:02d}=v{i}" for i in range(4, 20))),
        ),
    ],
)
def test_parse_tags(header: str | None, tags: tuple[str, ...]) -> None:
    assert parse_tags(header) == tags


@pytest.mark.parametrize(
    "header",
    [
        "novalue",
        "=v",
        "k=",
        "k=   ",
        "bad key=v",
        "k!=v",
        "ключ=v",
        "k" * 65 + "=v",
        "k=" + "v" * 129,
        "k=a\tb",
        "k=a\x00",
        ",".join(f"t{i:02d}=v" for i in range(17)),
    ],
)
def test_parse_tags_rejects(header: str) -> None:
    with pytest.raises(BadRequestError) as info:
        parse_tags(header)
    assert (info.value.code, info.value.param, info.value.status) == (
        "invalid_tags",
        "X-Cost-Tags",
        400,
    )
