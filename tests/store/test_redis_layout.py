"""The Redis key layout and hash-field parsing (pure: no Redis needed)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.crc import key_slot

from proxy.accounting.records import AggregateRow, Totals, WhatIfRow
from proxy.store.redis_layout import (
    KeyLayout,
    escape,
    rows_from_hash,
    unescape,
    what_if_rows_from_hash,
)


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("acme", "acme"),
        ("a:b", "a:b"),
        ("x}y{", "x%7Dy%7B"),
        ("100%", "100%25"),
        ("new\nline\x1f\x7f", "new%0Aline%1F%7F"),
        ("客户 ünï", "客户 ünï"),
    ],
)
def test_escape(raw: str, escaped: str) -> None:
    assert escape(raw) == escaped
    assert unescape(escaped) == raw


@given(st.text())
def test_escaping_is_reversible_and_brace_free(text: str) -> None:
    escaped = escape(text)
    assert unescape(escaped) == text  # so distinct names never share keys
    assert not {"{", "}", "\x1f"} & set(escaped)


@given(st.text(), st.sampled_from(["d", "dt", "de", "m", "rid"]))
def test_every_key_of_a_customer_hashes_to_the_customers_slot(customer: str, kind: str) -> None:
    layout = KeyLayout("costproxy:")
    tag = f"c:{escape(customer)}"
    key = f"{layout.customer(customer)}{kind}:2026-11-28"
    assert key_slot(key.encode()) == key_slot(tag.encode())
    assert key_slot(layout.log(customer).encode()) == key_slot(tag.encode())


def test_key_names() -> None:
    layout = KeyLayout("costproxy:")
    assert layout.day("acme", "base", "2026-11-28") == "costproxy:{c:acme}:d:2026-11-28"
    assert layout.day("a}b", "tag", "2026-11-28") == "costproxy:{c:a%7Db}:dt:2026-11-28"
    assert layout.day("acme", "end_user", "2026-11-28") == "costproxy:{c:acme}:de:2026-11-28"
    assert layout.month("acme", "2026-11") == "costproxy:{c:acme}:m:2026-11"
    assert layout.log("acme") == "costproxy:{c:acme}:log"
    assert layout.request_ids("acme", "2026-11-28") == "costproxy:{c:acme}:rid:2026-11-28"
    assert layout.customers == "costproxy:customers"
    assert layout.request("r1") == "costproxy:req:r1"


@pytest.mark.parametrize("prefix", ["cost{proxy}:", "a}"])
def test_prefix_with_braces_is_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="key_prefix"):
        KeyLayout(prefix)


def test_rows_from_hash_ignores_metrics_it_does_not_know() -> None:
    fields = {
        "team=a\x1fr%7B\x1fp\x1fm\x1fcost_nusd": "12",
        "team=a\x1fr%7B\x1fp\x1fm\x1frequests": "2",
        "team=a\x1fr%7B\x1fp\x1fm\x1fmetric_from_the_future": "5",
        "\x1fr%7B\x1fp\x1fm\x1frequests": "1",
    }

    rows = rows_from_hash("acme", "2026-11-28", "tag", fields)

    assert rows == [
        AggregateRow(
            "acme", "2026-11-28", "r{", "p", "m", Totals(cost_nusd=12, requests=2), "team=a"
        ),
        AggregateRow("acme", "2026-11-28", "r{", "p", "m", Totals(requests=1), ""),
    ]


def test_rows_from_hash_refuses_malformed_fields() -> None:
    with pytest.raises(ValueError, match="malformed"):
        rows_from_hash("acme", "2026-11-28", "base", {"r\x1fp\x1frequests": "1"})


def test_what_if_rows_from_hash() -> None:
    fields = {
        "ai21/jamba%7B\x1fr\x1fp\x1fm\x1fcost_nusd": "12",
        "ai21/jamba%7B\x1fr\x1fp\x1fm\x1frequests": "2",
        "ai21/jamba%7B\x1fr\x1fp\x1fm\x1fwhat_if_nusd": "7",
        "ai21/jamba%7B\x1fr\x1fp\x1fm\x1fmetric_from_the_future": "5",
    }

    assert what_if_rows_from_hash("acme", "2026-11-28", fields) == [
        WhatIfRow(
            "acme", "2026-11-28", "r", "p", "m", "ai21/jamba{", Totals(cost_nusd=12, requests=2), 7
        )
    ]
    with pytest.raises(ValueError, match="malformed"):
        what_if_rows_from_hash("acme", "2026-11-28", {"r\x1fp\x1fm\x1frequests": "1"})
