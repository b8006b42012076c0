"""The benchmark harness still runs end to end (no timing is asserted: benchmarks are not tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EVERY_SCENARIO = "saturation,customers,budgets,open,stream,open_streams,soak"


def test_quick_bench_writes_well_formed_json(tmp_path: Path) -> None:
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--quick",
            "--out",
            str(tmp_path),
            "--scenarios",
            EVERY_SCENARIO,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    [path] = tmp_path.glob("*.json")
    document = json.loads(path.read_text())
    assert set(document["summary"]) == {"direct", "proxy-sqlite", "proxy-redis"}
    for target in ("proxy-sqlite", "proxy-redis"):
        figures = document["summary"][target]
        assert figures["saturation.rps"]["median"] > 0
        assert "ratio" in figures["saturation.rps"]
        assert "added" in figures["open300.p50_ms"]
        assert figures["saturation.cpu_us"]["median"] > 0
        assert figures["open_streams.peak_rss_mb"]["median"] > 0
        assert document["runs"][target][0]["saturation.errors"] == 0
        assert figures["soak.rss_last_mb"]["median"] > 0
        assert figures["budgets.rps"]["median"] > 0
        assert document["runs"][target][0]["budgets.errors"] == 0
        assert document["runs"][target][0]["soak.errors"] == 0
    assert "saturation req/s" in document["table"]


def test_price_memory_bench_runs() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench.price_memory", "--repeats", "1"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "from the catalogue" in run.stdout and "catalogue cost" in run.stdout


def test_console_bench_times_every_page_on_both_stores(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--scenarios", "console", "--console-records", "3000",
         "--repeats", "1", "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    [path] = tmp_path.glob("console-*.json")
    document = json.loads(path.read_text())
    assert document["records"] == 3000
    for store in ("sqlite", "redis"):
        pages = document["stores"][store]["pages"]
        assert len(pages) == 10
        assert all(page["server_ms_p50"] > 0 for page in pages.values())
