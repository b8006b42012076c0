"""The comparison as a table for people (the default output of `costproxy reconcile`). Pure."""

from __future__ import annotations

from typing import Any

from proxy.reconcile.figures import FIELDS

__all__ = ["render_table"]

_COLUMNS = ("day", "model", "side", *FIELDS, "")


def _cell(value: Any) -> str:
    return "-" if value is None else str(value)


def _aligned(rows: list[list[str]]) -> list[str]:
    """The header, a rule under it, then the rows, in columns as wide as their widest cell."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    ruled = [rows[0], ["-" * w for w in widths], *rows[1:]]
    return [
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in ruled
    ]


def _sides(day: str, model: str, entry: dict[str, Any], verdict: str) -> list[list[str]]:
    lines = []
    for side in ("proxy", "provider", "difference"):
        figures = [_cell(entry[side][name]) for name in FIELDS]
        first = side == "proxy"
        mark = verdict if side == "difference" else ""
        lines.append([day if first else "", model if first else "", side, *figures, mark])
    return lines


def render_table(result: dict[str, Any]) -> str:
    tolerance = result["tolerance_pct"]
    out = [
        f"Provider {result['provider']} against its {result['report']} report, "
        f"{result['from']} .. {result['to']} (UTC days); differences are provider - proxy; "
        f"tolerance: tokens {tolerance['tokens']}%, cost {tolerance['cost']}%",
        "",
    ]
    table: list[list[str]] = [list(_COLUMNS)]
    explanations: dict[int, list[str]] = {}
    for row in result["rows"]:
        verdict = "ok" if row["within_tolerance"] else "DIFFERS"
        table += _sides(row["day"], row["model"], row, verdict)
        if row["explained"]:
            explanations[len(table) + 1] = [
                f"  * {e['code']}: {e['message']}" for e in row["explained"]
            ]
    table += _sides("TOTAL", "", result["totals"], "")
    lines = _aligned(table)
    for index in sorted(explanations, reverse=True):
        lines[index:index] = explanations[index]
    out += lines
    if result["days_not_covered"]:
        out.append("")
        out.append("Days the report does not cover (yet):")
        out += [f"  {gap['day']}: {gap['why']}" for gap in result["days_not_covered"]]
    if result["notes"]:
        out.append("")
        out += [f"Note: {note}." for note in result["notes"]]
    out.append("")
    differing = sum(not row["within_tolerance"] for row in result["rows"])
    if result["matched"]:
        out.append("MATCHED: every figure is within the tolerance of the provider's report.")
    else:
        out.append(
            f"DIFFERENCES: {differing} of {len(result['rows'])} rows outside the tolerance"
            + (
                f", {len(result['days_not_covered'])} days not covered"
                if result["days_not_covered"]
                else ""
            )
            + "."
        )
    return "\n".join(out)
