"""The Redis key and hash-field layout of `RedisStore` (pure: no I/O).

Per-customer keys share the hash tag `{c:<customer>}`, so one customer's keys live in one
Redis Cluster slot and a single Lua script may touch all of them:

    <prefix>{c:<customer>}:d:<day>     hash "route␟provider␟model␟metric" -> int
    <prefix>{c:<customer>}:dt:<day>    hash "tag␟route␟provider␟model␟metric" -> int
    <prefix>{c:<customer>}:de:<day>    hash "end_user␟route␟provider␟model␟metric" -> int
    <prefix>{c:<customer>}:dw:<day>    hash "alternative␟route␟provider␟model␟metric" -> int
                                       (metric: the base metrics plus "what_if_nusd")
    <prefix>{c:<customer>}:m:<month>   hash "metric" -> int
    <prefix>{c:<customer>}:log         stream of {"record": <UsageRecord JSON>}
    <prefix>{c:<customer>}:rid:<day>   hash request_id -> stream entry id (idempotency)
    <prefix>customers                  set of customer names
    <prefix>req:<request_id>           string "<customer>\\n<day>" (get_usage lookup)

(␟ is "\\x1f".) Escaping rule: in the customer part of a key and in every hash-field part,
"{", "}", "%" and the control characters U+0000-U+001F and U+007F are percent-encoded as
"%XX". So a customer can neither end the hash tag early nor forge a separator, and escaped
names are unique. Everything else (":", spaces, any Unicode) is kept as is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import unquote

from proxy.accounting.records import METRIC_FIELDS, AggregateRow, Breakdown, Totals, WhatIfRow

__all__ = [
    "FIELD_SEP",
    "KeyLayout",
    "base_field",
    "escape",
    "rows_from_hash",
    "totals_from_hash",
    "unescape",
    "what_if_rows_from_hash",
]

FIELD_SEP = "\x1f"
_UNSAFE = re.compile(r"[{}%\x00-\x1f\x7f]")
_DAY_KIND: dict[Breakdown, str] = {"base": "d", "tag": "dt", "end_user": "de"}
_KNOWN_METRICS = frozenset(METRIC_FIELDS)


def escape(text: str) -> str:
    """Percent-encode the characters that could break the key or field layout."""
    if _UNSAFE.search(text) is None:  # the usual case: nothing to encode, no new string
        return text
    return _UNSAFE.sub(lambda m: f"%{ord(m[0]):02X}", text)


def unescape(text: str) -> str:
    return unquote(text)


@dataclass(frozen=True, slots=True)
class KeyLayout:
    prefix: str = "costproxy:"

    def __post_init__(self) -> None:
        # Redis Cluster hashes the first {...} of a key: braces in the prefix would hide
        # the customer's hash tag.
        if "{" in self.prefix or "}" in self.prefix:
            raise ValueError(f"key_prefix must not contain '{{' or '}}': {self.prefix!r}")

    @property
    def customers(self) -> str:
        return f"{self.prefix}customers"

    def request(self, request_id: str) -> str:
        return f"{self.prefix}req:{request_id}"

    def customer(self, customer: str) -> str:
        """The common start of every key of `customer`, hash tag included."""
        return f"{self.prefix}{{c:{escape(customer)}}}:"

    def day(self, customer: str, breakdown: Breakdown, day: str) -> str:
        return f"{self.customer(customer)}{_DAY_KIND[breakdown]}:{day}"

    def what_if_day(self, customer: str, day: str) -> str:
        return f"{self.customer(customer)}dw:{day}"

    def month(self, customer: str, month: str) -> str:
        return f"{self.customer(customer)}m:{month}"

    def log(self, customer: str) -> str:
        return f"{self.customer(customer)}log"

    def request_ids(self, customer: str, day: str) -> str:
        return f"{self.customer(customer)}rid:{day}"

    def record_keys(self, customer: str, day: str) -> tuple[str, ...]:
        """The KEYS of the record_usage script, in its order; the customer escaped once."""
        c = self.customer(customer)
        return (
            f"{c}rid:{day}",
            f"{c}log",
            f"{c}{_DAY_KIND['base']}:{day}",
            f"{c}{_DAY_KIND['tag']}:{day}",
            f"{c}{_DAY_KIND['end_user']}:{day}",
            f"{c}m:{day[:7]}",
            f"{c}dw:{day}",
        )


@lru_cache(maxsize=1024)  # a handful of (route, provider, model) per deployment
def base_field(route: str, provider: str, model: str) -> str:
    """The "route␟provider␟model" part shared by every daily hash field."""
    return FIELD_SEP.join((escape(route), escape(provider), escape(model)))


def rows_from_hash(
    customer: str, day: str, breakdown: Breakdown, fields: dict[str, str]
) -> list[AggregateRow]:
    """The aggregate rows held in one daily hash (as returned by HGETALL)."""
    with_dim = breakdown != "base"
    rows: dict[str, AggregateRow] = {}
    for field, value in fields.items():
        # The row's part is split and unescaped once per row, not once per metric.
        ident, _, metric = field.rpartition(FIELD_SEP)
        if not ident:
            raise ValueError(f"malformed aggregate field {field!r} in {breakdown} of {day}")
        # A newer proxy may add metrics during a rolling deploy; this one cannot show them.
        if metric not in _KNOWN_METRICS:
            continue
        row = rows.get(ident)
        if row is None:
            parts = ident.split(FIELD_SEP)
            if "%" in ident:  # rare: only escaped names need decoding
                parts = [unescape(part) for part in parts]
            if len(parts) != 3 + with_dim:
                raise ValueError(f"malformed aggregate field {field!r} in {breakdown} of {day}")
            dim = parts[0] if with_dim else None
            route, provider, model = parts[with_dim:]
            row = rows[ident] = AggregateRow(customer, day, route, provider, model, dim=dim)
        setattr(row.totals, metric, getattr(row.totals, metric) + int(value))
    return list(rows.values())


def what_if_rows_from_hash(customer: str, day: str, fields: dict[str, str]) -> list[WhatIfRow]:
    """The what-if rows held in one daily what-if hash (as returned by HGETALL)."""
    rows: dict[tuple[str, ...], WhatIfRow] = {}
    for field, value in fields.items():
        parts = [unescape(part) for part in field.split(FIELD_SEP)]
        if len(parts) != 5:
            raise ValueError(f"malformed what-if field {field!r} of {day}")
        alternative, route, provider, model, metric = parts
        if metric != "what_if_nusd" and metric not in _KNOWN_METRICS:
            continue  # from a newer proxy (see rows_from_hash)
        key = (alternative, route, provider, model)
        row = rows.get(key)
        if row is None:
            row = rows[key] = WhatIfRow(customer, day, route, provider, model, alternative)
        if metric == "what_if_nusd":
            row.what_if_nusd += int(value)
        else:
            setattr(row.totals, metric, getattr(row.totals, metric) + int(value))
    return list(rows.values())


def totals_from_hash(fields: dict[str, str]) -> Totals:
    """Totals from a hash of "metric" -> int (the monthly hash)."""
    totals = Totals()
    for metric, value in fields.items():
        if metric in _KNOWN_METRICS:
            setattr(totals, metric, int(value))
    return totals
