"""`python -m bench`: direct vs through the proxy (SQLite and Redis), side by side, one run.

Starts the fake upstream, a redis-server of its own and two proxies (the proxy pinned to
one core, everything else, this load generator included, on the other), runs every
scenario against every target in turn, repeats, then prints the table and writes JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import orjson

from bench import loadgen, report, stack
from bench.console import run_console
from bench.httpclient import build_request

__all__ = ["main"]

RESULTS = Path(__file__).resolve().parent / "results"
# ~200 tokens of English (cl100k / o200k), the prompt of every chat request.
_PROMPT = (
    "You are a careful assistant. Summarise the following notes for a weekly report, keeping "
    "every figure exact and every name spelled as written. "
    + " ".join(
        f"Note {i}: the team shipped the billing export, fixed two latency regressions and "
        "agreed to review the on-call rota next week."
        for i in range(1, 9)
    )
)
_CUSTOMERS = 10_000
# budgets: saturation for a customer with a budget (reserve and settle on every request).
DEFAULT_SCENARIOS = ("saturation", "customers", "budgets", "open", "stream", "open_streams")
# soak: 100,000 requests over 10,000 customers, RSS every tenth (a leak shows as growth).
# console: the console's pages over 1,000,000 seeded records (bench/console.py), on its own.
SCENARIOS = (*DEFAULT_SCENARIOS, "soak", "console")


@dataclass(frozen=True, slots=True)
class Plan:
    repeats: int
    duration_s: float  # saturation and 10k-customer runs
    max_requests: int  # cap on a closed-loop run
    open_duration_s: float
    rates: tuple[int, ...]
    stream_count: int
    open_stream_count: int
    open_stream_chunk_delay_ms: int
    scenarios: tuple[str, ...] = DEFAULT_SCENARIOS
    soak_requests: int = 100_000

    @classmethod
    def build(cls, args: argparse.Namespace) -> Plan:
        scenarios = tuple(s for s in args.scenarios.split(",") if s)
        unknown = set(scenarios) - set(SCENARIOS)
        if unknown:
            raise SystemExit(f"unknown scenarios {sorted(unknown)}; known: {', '.join(SCENARIOS)}")
        if args.quick:
            return cls(1, 2.0, 200, 0.3, (100, 300, 500), 20, 50, 5, scenarios, 2_000)
        return cls(
            args.repeats,
            args.duration,
            10**7,
            args.duration,
            (100, 300, 500),
            300,
            1000,
            50,
            scenarios,
        )


@dataclass(slots=True)
class Target:
    name: str
    base_url: str  # ".../v1"
    api_key: str
    process: stack.ProcStat | None  # whose CPU and RSS are measured

    @property
    def host_port(self) -> tuple[str, int]:
        parts = urlsplit(self.base_url)
        return parts.hostname or "127.0.0.1", parts.port or 80

    def factory(
        self,
        *,
        stream: bool = False,
        customers: int = 1,
        customer: str = "c0",
        extra: dict[str, str] | None = None,
    ) -> Callable[[int], bytes]:
        host, port = self.host_port
        path = urlsplit(self.base_url).path.rstrip("/") + "/chat/completions"
        payload: dict = {
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": _PROMPT}],
            "max_tokens": 256,
        }
        if stream:
            payload["stream"] = True
        body = orjson.dumps(payload)
        headers = {
            "Authorization": f"Bearer {self.api_key}",
            "Content-Type": "application/json",
            **(extra or {}),
        }
        if customers == 1:
            raw = build_request(
                f"{host}:{port}", path, body, {**headers, "X-Customer-Id": customer}
            )
            return lambda i: raw
        prebuilt = [
            build_request(f"{host}:{port}", path, body, {**headers, "X-Customer-Id": f"c{n}"})
            for n in range(customers)
        ]
        return lambda i: prebuilt[i % customers]


def _cpu(target: Target) -> float | None:
    return target.process.cpu_s() if target.process is not None else None


def _per_request_us(before: float | None, after: float | None, count: int) -> float | None:
    if before is None or after is None or not count:
        return None
    return (after - before) / count * 1e6


async def _measure(target: Target, plan: Plan) -> dict[str, float | None]:
    """Every scenario once against one target: a flat dict of figures."""
    host, port = target.host_port
    out: dict[str, float | None] = {}

    async def closed(prefix: str, make: Callable[[int], bytes]) -> None:
        pool = loadgen.Pool(host, port)
        try:
            before = _cpu(target)
            result = await loadgen.closed_loop(
                pool,
                make,
                concurrency=64,
                duration_s=plan.duration_s,
                max_requests=plan.max_requests,
            )
            after = _cpu(target)
        finally:
            pool.close()
        summary = result.summary()
        out[f"{prefix}.rps"] = summary["rps"]
        out[f"{prefix}.p50_ms"] = summary.get("latency_ms", {}).get("p50")
        out[f"{prefix}.p99_ms"] = summary.get("latency_ms", {}).get("p99")
        out[f"{prefix}.cpu_us"] = _per_request_us(before, after, result.requests)
        out[f"{prefix}.errors"] = result.errors
        _note_error(target, prefix, result)

    if "saturation" in plan.scenarios:
        await closed("saturation", target.factory())
    if "customers" in plan.scenarios:
        await closed("customers", target.factory(customers=_CUSTOMERS))
    if "budgets" in plan.scenarios:
        await closed("budgets", target.factory(customer=stack.BUDGETED_CUSTOMER))

    for rate in plan.rates if "open" in plan.scenarios else ():
        pool = loadgen.Pool(host, port)
        try:
            before = _cpu(target)
            result = await loadgen.open_loop(
                pool, target.factory(), rate=rate, duration_s=plan.open_duration_s
            )
            after = _cpu(target)
        finally:
            pool.close()
        summary = result.summary()
        latency = summary.get("latency_ms", {})
        for q in ("p50", "p90", "p99"):
            out[f"open{rate}.{q}_ms"] = latency.get(q)
            out[f"open{rate}.service_{q}_ms"] = summary.get("service_ms", {}).get(q)
        out[f"open{rate}.cpu_us"] = _per_request_us(before, after, result.requests)
        out[f"open{rate}.errors"] = result.errors
        _note_error(target, f"open{rate}", result)

    if "stream" in plan.scenarios:
        await _stream(target, plan, out)
    if "open_streams" in plan.scenarios:
        await _open_streams(target, plan, out)
    if "soak" in plan.scenarios:
        await _soak(target, plan, out)
    if target.process is not None:
        out["rss_after_mb"] = target.process.memory_kb()["VmRSS"] / 1024
    return out


async def _stream(target: Target, plan: Plan, out: dict[str, float | None]) -> None:
    pool = loadgen.Pool(*target.host_port)
    try:
        before = _cpu(target)
        make = target.factory(stream=True, extra={"x-mock-chunks": "50"})
        result = await loadgen.streams(pool, make, count=plan.stream_count, concurrency=1)
        after = _cpu(target)
    finally:
        pool.close()
    summary = result.summary()
    out["stream.ttft_p50_ms"] = summary.get("ttft_ms", {}).get("p50")
    out["stream.ttft_p99_ms"] = summary.get("ttft_ms", {}).get("p99")
    out["stream.total_p50_ms"] = summary.get("latency_ms", {}).get("p50")
    out["stream.cpu_us"] = _per_request_us(before, after, result.requests)
    out["stream.errors"] = result.errors
    _note_error(target, "stream", result)


async def _open_streams(target: Target, plan: Plan, out: dict[str, float | None]) -> None:
    peak_kb = 0

    def sample() -> None:
        nonlocal peak_kb
        if target.process is not None:
            peak_kb = max(peak_kb, target.process.memory_kb()["VmRSS"])

    extra = {"x-mock-chunks": "50", "x-mock-chunk-delay-ms": str(plan.open_stream_chunk_delay_ms)}
    result, most_open = await loadgen.open_streams(
        loadgen.Pool(*target.host_port),
        target.factory(stream=True, extra=extra),
        count=plan.open_stream_count,
        sample=sample,
    )
    out["open_streams.peak_rss_mb"] = peak_kb / 1024 if peak_kb else None
    out["open_streams.most_open"] = most_open
    out["open_streams.errors"] = result.errors
    _note_error(target, "open_streams", result)


async def _soak(target: Target, plan: Plan, out: dict[str, float | None]) -> None:
    """RSS after each tenth of `soak_requests` closed-loop requests over 10,000 customers:
    the first tenth fills every cache, so growth after it is what a leak would look like."""
    step = plan.soak_requests // 10
    pool = loadgen.Pool(*target.host_port)
    rss_mb: list[float] = []
    errors = 0
    try:
        for _ in range(10):
            result = await loadgen.closed_loop(
                pool,
                target.factory(customers=_CUSTOMERS),
                concurrency=64,
                duration_s=3600.0,
                max_requests=step,
            )
            errors += result.errors
            _note_error(target, "soak", result)
            if target.process is not None:
                rss_mb.append(target.process.memory_kb()["VmRSS"] / 1024)
    finally:
        pool.close()
    if rss_mb:
        out["soak.rss_first_mb"] = rss_mb[0]
        out["soak.rss_last_mb"] = rss_mb[-1]
        out["soak.growth_mb"] = rss_mb[-1] - rss_mb[0]
    out["soak.errors"] = errors


def _note_error(target: Target, scenario: str, result: loadgen.LoadResult) -> None:
    if result.errors:
        print(
            f"  ! {target.name} {scenario}: {result.errors} errors, first: {result.first_error}",
            file=sys.stderr,
        )


async def _run_all(targets: list[Target], plan: Plan) -> dict[str, list[dict]]:
    # Warm-up: connection pools, the tokenizer and store schema of each proxy.
    for target in targets:
        pool = loadgen.Pool(*target.host_port)
        await loadgen.closed_loop(
            pool, target.factory(), concurrency=16, duration_s=1.0, max_requests=500
        )
        stream = target.factory(stream=True, extra={"x-mock-chunks": "50"})
        await loadgen.streams(pool, stream, count=20, concurrency=4)
        pool.close()
    runs: dict[str, list[dict]] = {t.name: [] for t in targets}
    for repeat in range(plan.repeats):
        # Targets interleaved within a repeat, so drift over time hits each alike.
        for target in targets:
            began = time.perf_counter()
            runs[target.name].append(await _measure(target, plan))
            took = time.perf_counter() - began
            print(f"repeat {repeat + 1}/{plan.repeats} {target.name}: {took:.1f}s", flush=True)
    return runs


def _machine(cores: stack.Cores) -> dict:
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        cpu = platform.processor()
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "proxy_core": cores.proxy,
        "other_cores": cores.others,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }


def _git_commit() -> str | None:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=stack.REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a few hundred requests, 1 repeat")
    parser.add_argument("--repeats", type=int, default=5, help="repeats (default 5)")
    parser.add_argument(
        "--duration", type=float, default=5.0, help="seconds per closed or open-loop run"
    )
    parser.add_argument(
        "--scenarios",
        default=",".join(DEFAULT_SCENARIOS),
        help=f"comma list of {', '.join(SCENARIOS)} (default: all but soak)",
    )
    parser.add_argument(
        "--stores", default="sqlite,redis", help="proxies to measure: sqlite,redis (or none)"
    )
    parser.add_argument("--compare-url", help="another OpenAI-compatible proxy, e.g. http://h:p/v1")
    parser.add_argument("--compare-key", default="sk-anything", help="its API key")
    parser.add_argument("--compare-pid", type=int, help="its pid, to measure its CPU and RSS")
    parser.add_argument(
        "--upstream-port", type=int, help="fixed port for the fake upstream (for --compare-url)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="directory for the JSON")
    parser.add_argument(
        "--console-records", type=int, default=1_000_000, help="records the console scenario seeds"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    plan = Plan.build(args)
    if "console" in plan.scenarios:
        run_console(args, args.out)
        plan = Plan.build(argparse.Namespace(**{**vars(args), "scenarios": ",".join(
            s for s in plan.scenarios if s != "console")}))  # fmt: skip
        if not plan.scenarios:
            return 0
    cores = stack.Cores.detect()
    if cores.others is not None:
        # The load generator shares the fake upstream's core, never the proxy's.
        os.sched_setaffinity(0, {int(c) for c in cores.others.split(",")})
    workdir = stack.make_workdir()
    servers: list[stack.Server] = []
    startup: dict[str, float] = {}
    try:
        upstream = stack.start_upstream(cores.others, workdir, args.upstream_port)
        servers.append(upstream)
        print(f"fake upstream: {upstream.url}/v1 (pid {upstream.process.pid})", flush=True)
        targets = [Target("direct", upstream.url + "/v1", "none", upstream.stat)]
        stores = [s for s in args.stores.split(",") if s and s != "none"]
        for store in stores:
            if store == "redis":
                redis = stack.start_redis(cores.others, workdir)
                servers.append(redis)
                redis_url = f"redis://127.0.0.1:{redis.port}/0"
                config = {"backend": "redis", "redis_url": redis_url, "key_prefix": "bench:"}
            elif store == "sqlite":
                config = {"backend": "sqlite", "sqlite_path": str(workdir / "bench.db")}
            else:
                raise SystemExit(f"unknown store {store!r}: sqlite or redis")
            proxy, started_s = stack.start_proxy(
                f"proxy-{store}", cores.proxy, workdir, upstream.url, config
            )
            servers.append(proxy)
            startup[f"proxy-{store}"] = round(started_s, 3)
            targets.append(
                Target(f"proxy-{store}", proxy.url + "/v1", stack.TRUSTED_KEY, proxy.stat)
            )
        if args.compare_url:
            compare_stat = stack.ProcStat(args.compare_pid) if args.compare_pid else None
            targets.append(
                Target("compare", args.compare_url.rstrip("/"), args.compare_key, compare_stat)
            )
        loop = _new_loop()
        try:
            runs = loop.run_until_complete(_run_all(targets, plan))
        finally:
            loop.close()
    finally:
        for server in reversed(servers):
            server.stop()
    summary = report.summarise(runs)
    text = report.table(summary)
    print()
    print(text)
    print()
    print("startup to first answer (s):", startup)
    print("direct = the fake upstream alone; its CPU/RSS columns are the fake upstream's.")
    print("'vs direct': added ms (proxy - direct) [min…max over repeats], or throughput ratio.")
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = args.out / f"{stamp}.json"
    document = {
        "created": stamp,
        "commit": _git_commit(),
        "machine": _machine(cores),
        "plan": {**asdict(plan), "concurrency": 64},
        "startup_s": startup,
        "summary": summary,
        "runs": runs,
        "table": text,
    }
    path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    print(f"wrote {path}")
    return 0
