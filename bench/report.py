"""From per-repeat measurements to medians, spread, added latency and ratios; the table. Pure."""

from __future__ import annotations

from statistics import median

__all__ = ["METRICS", "summarise", "table"]

# (key, label, kind): "ms" gets "added" (target - direct); "rate" gets a ratio; the rest
# are figures of the measured process alone (the proxy's, or the fake upstream's for direct).
METRICS: tuple[tuple[str, str, str], ...] = (
    ("saturation.rps", "saturation req/s (c=64)", "rate"),
    ("saturation.p50_ms", "  latency p50 ms", "ms"),
    ("saturation.p99_ms", "  latency p99 ms", "ms"),
    ("saturation.cpu_us", "  CPU µs/request", "us"),
    ("saturation.errors", "  errors", "count"),
    ("customers.rps", "10k customers req/s", "rate"),
    ("customers.cpu_us", "  CPU µs/request", "us"),
    ("customers.errors", "  errors", "count"),
    ("budgets.rps", "budgeted customer req/s", "rate"),
    ("budgets.p50_ms", "  latency p50 ms", "ms"),
    ("budgets.cpu_us", "  CPU µs/request", "us"),
    ("budgets.errors", "  errors", "count"),
    *(
        item
        for rate in (100, 300, 500)
        for item in (
            (f"open{rate}.p50_ms", f"{rate} req/s open loop p50 ms", "ms"),
            (f"open{rate}.p90_ms", "  p90 ms", "ms"),
            (f"open{rate}.p99_ms", "  p99 ms", "ms"),
            (f"open{rate}.cpu_us", "  CPU µs/request", "us"),
            (f"open{rate}.errors", "  errors", "count"),
        )
    ),
    ("stream.ttft_p50_ms", "stream TTFT p50 ms", "ms"),
    ("stream.ttft_p99_ms", "  TTFT p99 ms", "ms"),
    ("stream.total_p50_ms", "  total p50 ms (50 chunks)", "ms"),
    ("stream.cpu_us", "  CPU µs/stream", "us"),
    ("stream.errors", "  errors", "count"),
    ("open_streams.peak_rss_mb", "1,000 open streams peak RSS MB", "mb"),
    ("open_streams.most_open", "  streams open at once", "count"),
    ("open_streams.errors", "  errors", "count"),
    ("rss_after_mb", "RSS after the repeat MB", "mb"),
    ("soak.rss_first_mb", "soak RSS after 10k requests MB", "mb"),
    ("soak.rss_last_mb", "  RSS after 100k requests MB", "mb"),
    ("soak.growth_mb", "  growth MB", "mb"),
    ("soak.errors", "  errors", "count"),
)


def _spread(values: list[float]) -> dict:
    return {
        "median": round(median(values), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
        "n": len(values),
    }


def summarise(runs: dict[str, list[dict[str, float]]], baseline: str = "direct") -> dict:
    """runs: target -> one flat metric dict per repeat. Added latency and ratios are paired
    by repeat (target's repeat i against direct's repeat i), then summarised."""
    out: dict = {}
    base_runs = runs.get(baseline, [])
    for target, repeats in runs.items():
        metrics: dict = {}
        for key, _, kind in METRICS:
            values = [r[key] for r in repeats if r.get(key) is not None]
            if not values:
                continue
            entry = _spread(values)
            if target != baseline and base_runs:
                pairs = [
                    (r[key], b[key])
                    for r, b in zip(repeats, base_runs, strict=False)
                    if r.get(key) is not None and b.get(key) is not None
                ]
                if pairs and kind == "ms":
                    entry["added"] = _spread([t - b for t, b in pairs])
                if pairs and kind == "rate":
                    entry["ratio"] = _spread([t / b for t, b in pairs if b])
            metrics[key] = entry
        out[target] = metrics
    return out


def _fmt(value: float | None, kind: str) -> str:
    if value is None:
        return "-"
    if kind in ("rate", "us", "count"):
        return f"{value:,.0f}"
    if kind == "mb":
        return f"{value:,.1f}"
    return f"{value:.2f}"


def _cell(entry: dict | None, kind: str) -> str:
    if entry is None:
        return "-"
    text = _fmt(entry["median"], kind)
    if entry["n"] > 1 and entry["min"] != entry["max"]:
        text += f" [{_fmt(entry['min'], kind)}–{_fmt(entry['max'], kind)}]"
    return text


def _vs(entry: dict | None, kind: str) -> str:
    if entry is None:
        return ""
    if "added" in entry:
        added = entry["added"]
        return f"{added['median']:+.2f} [{added['min']:+.2f}…{added['max']:+.2f}]"
    if "ratio" in entry:
        ratio = entry["ratio"]
        return f"×{ratio['median']:.2f}"
    return ""


def table(summary: dict, baseline: str = "direct") -> str:
    """Rows: metrics; columns: direct, then each proxy and its added latency / ratio."""
    targets = list(summary)
    header = ["metric", baseline]
    for target in targets:
        if target != baseline:
            header += [target, "vs direct"]
    rows = [header]
    for key, label, kind in METRICS:
        if not any(key in summary[t] for t in targets):
            continue
        row = [label, _cell(summary.get(baseline, {}).get(key), kind)]
        for target in targets:
            if target != baseline:
                entry = summary[target].get(key)
                row += [_cell(entry, kind), _vs(entry, kind)]
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = []
    for n, row in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
