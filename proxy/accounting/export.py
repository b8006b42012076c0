"""Usage export for invoicing: the query, and records as CSV or JSON Lines chunks. Pure.

Records arrive as an async iterator (the store reads them a page at a time) and leave as
~64 KiB chunks, so an export of any size holds one page and one chunk in memory. Each
record carries `time` (ISO-8601 UTC) beside `ts_ms`. In CSV, a text cell that a
spreadsheet would run as a formula (it begins with =, +, -, @, a tab or a carriage return;
a client chooses its end-user id and tags) is written with a leading apostrophe, as
spreadsheet applications expect (OWASP's advice on CSV injection).
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Literal

import orjson

from proxy.accounting.record_view import RECORD_JSON_FIELDS, record_json
from proxy.accounting.records import UsageRecord
from proxy.accounting.spend import SpendQuery, SpendQueryError

__all__ = ["COLUMNS", "FORMATS", "ExportQuery", "export_chunks", "spreadsheet_safe"]

FORMATS: dict[str, str] = {"jsonl": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}
Format = Literal["jsonl", "csv"]
COLUMNS: tuple[str, ...] = RECORD_JSON_FIELDS
CHUNK_BYTES = 64 * 1024


def _day_start_ms(day) -> int:
    return int(datetime.combine(day, time(), UTC).timestamp()) * 1000


@dataclass(frozen=True, slots=True)
class ExportQuery:
    customer: str | None
    from_ms: int
    to_ms: int  # exclusive
    format: Format
    from_day: str
    to_day: str

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> ExportQuery:
        """`customer`, `from`, `to` (UTC dates, inclusive) as in the spend API; `format`."""
        fmt = params.get("format") or "jsonl"
        if fmt not in FORMATS:
            raise SpendQueryError(f"'format' must be one of {', '.join(FORMATS)}, got {fmt!r}")
        spend = SpendQuery.parse(
            {k: v for k, v in params.items() if k in ("customer", "from", "to")}
        )
        return cls(
            customer=spend.customer,
            from_ms=_day_start_ms(spend.from_day),
            to_ms=_day_start_ms(spend.to_day) + 86_400_000,
            format=fmt,  # type: ignore[arg-type]
            from_day=spend.from_day.isoformat(),
            to_day=spend.to_day.isoformat(),
        )

    @property
    def filename(self) -> str:
        who = (
            "all"
            if self.customer is None
            else "".join(c if c.isalnum() or c in "-_" else "_" for c in self.customer)
        )
        return f"usage-{who}-{self.from_day}-{self.to_day}.{self.format}"


def _row(record: UsageRecord) -> dict:
    return record_json(record)  # the admin API's record, line for line


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: object) -> object:
    """A CSV cell as a spreadsheet will show it, never run it: text that begins like a
    formula gets a leading apostrophe. Numbers are left alone."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def _csv_value(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, list):
        value = ";".join(value)
    elif isinstance(value, dict):
        value = orjson.dumps(value).decode()
    return spreadsheet_safe(value)


async def export_chunks(records: AsyncIterator[UsageRecord], fmt: Format) -> AsyncIterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if fmt == "csv":
        writer.writerow(COLUMNS)
    pending: list[bytes] = [buffer.getvalue().encode()]
    size = len(pending[0])
    async for record in records:
        if fmt == "csv":
            buffer.seek(0)
            buffer.truncate()
            row = _row(record)
            writer.writerow([_csv_value(row[c]) for c in COLUMNS])
            line = buffer.getvalue().encode()
        else:
            line = orjson.dumps(_row(record)) + b"\n"
        pending.append(line)
        size += len(line)
        if size >= CHUNK_BYTES:
            yield b"".join(pending)
            pending, size = [], 0
    if size:
        yield b"".join(pending)
