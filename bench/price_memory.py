"""`python -m bench.price_memory`: what the genai-prices catalogue costs the proxy process.

Starts `costproxy serve` twice on the benchmark's config: once as it is (every target priced
by the config's `prices:`, so the catalogue is never imported) and once with that entry
removed (the target is priced from the catalogue, imported at start). Prints idle RSS
after start-up and the time to the first /healthz answer of each, median of `--repeats`.
"""

from __future__ import annotations

import argparse
import statistics
import sys

import yaml

from bench import stack

__all__ = ["main"]


def _measure(workdir, name: str, config: dict) -> tuple[float, float]:
    """(RSS MiB once serving, seconds to the first answer) of one start."""
    port = stack.free_port()
    config = {**config, "server": {**config["server"], "port": port}}
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    argv = [sys.executable, "-m", "proxy", "--log-level", "WARNING", "serve", "--config", str(path)]
    server = stack._spawn(name, argv, port, workdir, stack._env())
    try:
        seconds = stack._wait_http(server, "/healthz")
        return server.stat.memory_kb()["VmRSS"] / 1024, seconds
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    workdir = stack.make_workdir()
    store = {"backend": "sqlite", "sqlite_path": str(workdir / "costproxy.db")}
    by_config = stack.proxy_config("http://127.0.0.1:9/v1", store, 0)
    by_catalogue = {**by_config, "prices": {}}
    rows = []
    for label, config in (
        ("prices: in the config", by_config),
        ("from the catalogue", by_catalogue),
    ):
        runs = [_measure(workdir, f"run{i}", config) for i in range(args.repeats)]
        rss = statistics.median(r for r, _ in runs)
        start = statistics.median(s for _, s in runs)
        rows.append((label, rss, start))
        print(f"{label:<24} idle RSS {rss:6.1f} MiB   start-up {start * 1000:6.0f} ms")
    print(
        f"{'catalogue cost':<24} idle RSS {rows[1][1] - rows[0][1]:+6.1f} MiB   "
        f"start-up {(rows[1][2] - rows[0][2]) * 1000:+6.0f} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
