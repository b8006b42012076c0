"""The real report exports saved as TSV (tests/fixtures/reports/openai/*_real.tsv) turned
back into the pages the API returned: one bucket per distinct (start_time, end_time), one
result per row; an empty row is a bucket without results. Cells are copied as they are,
numbers as JSON numbers (the export wrote "59200.0"), "FALSE"/"TRUE" as booleans."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

__all__ = ["tsv_page"]

_TIMES = ("start_time", "end_time", "start_time_iso", "end_time_iso")
_TEXT = {"project_id", "user_id", "api_key_id", "model", "service_tier", "line_item",
         "organization_id", "organization_name", "amount_currency", "amount_value"}  # fmt: skip


def _cell(name: str, text: str) -> Any:
    if text == "":
        return None
    if text in ("TRUE", "FALSE"):
        return text == "TRUE"
    if name in _TEXT:
        return text
    return float(text)


def tsv_page(path: Path, result_object: str) -> dict[str, Any]:
    buckets: dict[tuple[int, int], list[dict[str, Any]]] = {}
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            span = (int(row["start_time"]), int(row["end_time"]))
            results = buckets.setdefault(span, [])
            values = {k: _cell(k, v) for k, v in row.items() if k not in _TIMES}
            if all(v is None for v in values.values()):
                continue  # the day had no result
            result: dict[str, Any] = {"object": result_object}
            if "amount_value" in values:
                result["amount"] = {
                    "value": values.pop("amount_value"),
                    "currency": values.pop("amount_currency"),
                }
            result.update(values)
            results.append(result)
    return {
        "object": "page",
        "data": [
            {"object": "bucket", "start_time": s, "end_time": e, "results": results}
            for (s, e), results in buckets.items()
        ],
        "has_more": False,
        "next_page": None,
    }
