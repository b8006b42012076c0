"""How `costproxy prices` prints: aligned tables of the prices JSON. Pure (stdout only)."""

from __future__ import annotations

from typing import Any

from proxy.accounting.price_diff import ModelChange

__all__ = ["aligned", "print_change", "print_list", "print_part", "print_show"]


def aligned(columns: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += [
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    return "\n".join(lines)


def _notes(entry: dict[str, Any]) -> str:
    now = entry["now"]
    notes = []
    if now["standard"]["tiers"]:
        notes.append("tiers above " + ", ".join(
            f"{t['above_input_tokens']:,}" for t in now["standard"]["tiers"]))  # fmt: skip
    if now["variants"]:
        notes.append("variants " + ", ".join(sorted(now["variants"])))
    dated = [v["from"] for v in entry["versions"] if v["from"]]
    if dated:
        notes.append("from " + ", ".join(dated))
    if any(len(v["day_parts"]) > 1 for v in entry["versions"]):
        notes.append(f"by time of day (now: from {now['from_utc']} UTC)")
    return "; ".join(notes)


def _source(entry: dict[str, Any]) -> str:
    source = entry["source"]
    if source["kind"] == "config":
        return f"config {source['key']}"
    return f"{source['catalogue']} {source['key']}"


def print_list(report: dict[str, Any]) -> None:
    print(f"Prices in force at {report['at']} (USD per 1M tokens)")
    rows = []
    for e in report["targets"]:
        if not e["priced"]:
            rows.append([e["provider"], e["model"], "UNPRICED", "-", "-", "-", e["reason"]])
            continue
        tokens = e["now"]["standard"]["usd_per_mtok"]
        rows.append([e["provider"], e["model"], _source(e), tokens["input"],
                     tokens["cached_input"], tokens["output"], _notes(e)])  # fmt: skip
    columns = ["provider", "model", "source", "input", "cached", "output", "notes"]
    print(aligned(columns, rows))


def print_part(label: str, part: dict[str, Any]) -> None:
    """One table: a row per dimension, a column per variant (standard first)."""
    columns = {"standard": part["standard"], **part["variants"]}
    dims = list(part["standard"]["usd_per_mtok"])
    rows = [[d, *(c["usd_per_mtok"][d] for c in columns.values())] for d in dims]
    rows.append(["per_request_usd", *(c["per_request_usd"] for c in columns.values())])
    rows.append(["per_web_search_usd", *(c["per_web_search_usd"] for c in columns.values())])
    print(label)
    table = aligned(["usd_per_mtok", *columns], rows)
    print("\n".join("  " + line for line in table.splitlines()))
    for name, rates in columns.items():
        for tier in rates["tiers"]:
            changed = ", ".join(f"{k} {v}" for k, v in tier["usd_per_mtok"].items()
                                if v != rates["usd_per_mtok"][k])  # fmt: skip
            print(f"  {name} above {tier['above_input_tokens']:,} input tokens: {changed}")


def print_show(entry: dict[str, Any]) -> None:
    print(f"{entry['provider']}/{entry['model']} (billed under {entry['price_namespace']})")
    if entry["routes"]:
        print(f"routes: {', '.join(entry['routes'])}")
    if not entry["priced"]:
        print(f"no price: {entry['reason']}")
        return
    source = entry["source"]
    print(f"source: {_source(entry)}")
    if source.get("not_billed"):
        print(f"catalogue prices not billed: {', '.join(source['not_billed'])}")
    if source.get("rounded"):
        print(f"rounded to the femto-dollar: {'; '.join(source['rounded'])}")
    for version in entry["versions"]:
        since = version["from"] or "the start"
        for part in version["day_parts"]:
            daily = "" if len(version["day_parts"]) == 1 else f", daily from {part['from_utc']} UTC"
            print_part(f"from {since}{daily}:", part)


def print_change(change: ModelChange) -> None:
    print(f"  {change.kind} {change.key}")
    for leaf in change.changes:
        print(f"      {leaf.path}: {leaf.old} -> {leaf.new}")
