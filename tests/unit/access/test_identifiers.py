"""One spelling per identifier (NFKC; tag names case-folded)."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.access.auth import Attribution, Principal, check_end_user_source, parse_tags
from proxy.access.identifiers import normal_id, normal_tag, normal_tag_name
from proxy.errors import BadRequestError, PermissionDeniedError


@pytest.mark.parametrize(
    ("spelling", "expected"),
    [
        ("acme", "acme"),
        ("ａcme", "acme"),  # fullwidth: NFC alone keeps it apart
        ("cafe\u0301", "café"),  # combining accent: NFC's canonical composition
        ("ｶﾌｪ", "カフェ"),  # halfwidth katakana
        ("ﬁnance", "finance"),  # ligature
        ("Acme", "Acme"),  # case is kept in ids
    ],
)
def test_normal_id(spelling: str, expected: str) -> None:
    assert normal_id(spelling) == expected


@pytest.mark.parametrize(
    ("tag", "expected"),
    [("Env=Prod", "env=Prod"), ("ＥＮＶ=ｐrod", "env=prod"), ("Straße=x", "strasse=x")],
)
def test_normal_tag(tag: str, expected: str) -> None:
    assert normal_tag(tag) == expected


def test_parse_tags_counts_one_spelling() -> None:
    assert parse_tags("Feature=story, ＥＮＶ=ｐrod") == ("env=prod", "feature=story")


@given(st.text(max_size=40))
def test_normalising_twice_changes_nothing(text: str) -> None:
    once = normal_id(text)
    assert normal_id(once) == once == unicodedata.normalize("NFKC", text)
    assert normal_tag_name(normal_tag_name(text)) == normal_tag_name(text)


TRUSTED = Principal("backend", None, True)
UNTRUSTED = Principal("acme-app", "acme", False)


@pytest.mark.parametrize(
    ("mode", "principal", "end_user", "error"),
    [
        ("any", UNTRUSTED, "p1", None),
        ("trusted", UNTRUSTED, None, None),
        ("trusted", UNTRUSTED, "p1", PermissionDeniedError),
        ("trusted", TRUSTED, "p1", None),
        ("required", TRUSTED, "p1", None),
        ("required", TRUSTED, None, BadRequestError),
        ("required", UNTRUSTED, None, PermissionDeniedError),
        ("required", UNTRUSTED, "p1", PermissionDeniedError),
    ],
)
def test_end_user_source(mode, principal, end_user, error) -> None:
    attribution = Attribution("acme", end_user, ())
    if error is None:
        check_end_user_source(principal, attribution, mode)
    else:
        with pytest.raises(error):
            check_end_user_source(principal, attribution, mode)
