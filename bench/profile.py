"""`python -m bench.profile`: py-spy on the proxy at saturation, top frames by own and total time.

Same stack as the benchmark (fake upstream, own redis-server, proxy pinned to one core).
Needs py-spy (`pip install py-spy`) and the right to ptrace the proxy (root, or
kernel.yama.ptrace_scope=0).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

from bench import loadgen, stack
from bench.run import Target, _new_loop

__all__ = ["main", "top_frames"]


def top_frames(
    collapsed: str, limit: int = 25
) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """From py-spy's raw (collapsed) output: frames by share of own samples and of total."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in collapsed.splitlines():
        stacks, _, count = line.rpartition(" ")
        if not stacks:
            continue
        n = int(count)
        samples += n
        frames = stacks.split(";")
        own[frames[-1]] += n
        for frame in set(frames):
            total[frame] += n
    if not samples:
        return [], []
    return (
        [(f, c / samples) for f, c in own.most_common(limit)],
        [(f, c / samples) for f, c in total.most_common(limit)],
    )


async def _load(target: Target, seconds: float, stream: bool, customer: str = "c0") -> None:
    pool = loadgen.Pool(*target.host_port)
    extra = {"x-mock-chunks": "50"} if stream else None
    make = target.factory(stream=stream, customer=customer, extra=extra)
    await loadgen.closed_loop(pool, make, concurrency=64, duration_s=seconds, max_requests=10**7)
    pool.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--store", choices=("redis", "sqlite"), default="redis")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--stream", action="store_true", help="profile 50-chunk streams")
    parser.add_argument(
        "--budgets", action="store_true", help="as the budgeted customer (reserve and settle)"
    )
    parser.add_argument("--out", type=Path, default=Path("/tmp/costproxy-profile.txt"))
    args = parser.parse_args(argv)
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    cores = stack.Cores.detect()
    if cores.others is not None:
        os.sched_setaffinity(0, {int(c) for c in cores.others.split(",")})
    workdir = stack.make_workdir()
    servers: list[stack.Server] = []
    try:
        upstream = stack.start_upstream(cores.others, workdir)
        servers.append(upstream)
        if args.store == "redis":
            redis = stack.start_redis(cores.others, workdir)
            servers.append(redis)
            config = {"backend": "redis", "redis_url": f"redis://127.0.0.1:{redis.port}/0"}
        else:
            config = {"backend": "sqlite", "sqlite_path": str(workdir / "bench.db")}
        proxy, _ = stack.start_proxy("proxy", cores.proxy, workdir, upstream.url, config)
        servers.append(proxy)
        target = Target("proxy", proxy.url + "/v1", stack.TRUSTED_KEY, proxy.stat)
        loop = _new_loop()
        customer = stack.BUDGETED_CUSTOMER if args.budgets else "c0"
        loop.run_until_complete(_load(target, 1.0, args.stream, customer))  # warm-up
        spy = subprocess.Popen(
            [
                # --gil: only samples holding the GIL, i.e. Python work; a thread pool
                # worker waiting on its queue would otherwise count as busy.
                *(py_spy, "record", "--gil", "-r", "250", "-f", "raw", "-o", str(args.out)),
                *("-d", str(int(args.seconds)), "--pid", str(proxy.process.pid)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        loop.run_until_complete(_load(target, args.seconds, args.stream, customer))
        spy.wait()
        loop.close()
    finally:
        for server in reversed(servers):
            server.stop()
    own, total = top_frames(args.out.read_text())
    print("own time (self)")
    for frame, share in own:
        print(f"  {share:6.1%}  {frame}")
    print("total time (inclusive)")
    for frame, share in total:
        print(f"  {share:6.1%}  {frame}")
    print(f"collapsed stacks in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
