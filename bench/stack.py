"""The processes under test: fake upstream, redis-server and proxies, each pinned to a core.

Only loopback, only ports picked here; never the machine's shared Redis.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml

__all__ = [
    "ADMIN_TOKEN",
    "TRUSTED_KEY",
    "Cores",
    "ProcStat",
    "Server",
    "free_port",
    "proxy_config",
    "start_proxy",
    "start_redis",
    "start_upstream",
]

REPO = Path(__file__).resolve().parents[1]
TRUSTED_KEY = "sk-bench-trusted-0123456789"
ADMIN_TOKEN = "bench-admin-token-0123456789"
UPSTREAM_KEY = "sk-bench-upstream-0123456789"
BUDGETED_CUSTOMER = "budgeted"
_ENV = {"B_TRUSTED_KEY": TRUSTED_KEY, "B_ADMIN_TOKEN": ADMIN_TOKEN, "B_UPSTREAM_KEY": UPSTREAM_KEY}
_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True, slots=True)
class Cores:
    """Where each side runs: the proxy alone on one core, everything else on the other."""

    proxy: str | None
    others: str | None

    @classmethod
    def detect(cls) -> Cores:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2 or shutil.which("taskset") is None:
            return cls(None, None)
        return cls(str(cpus[0]), ",".join(str(c) for c in cpus[1:]))


def _pinned(core: str | None, argv: list[str]) -> list[str]:
    # taskset execs the command, so the Popen pid is the server's own pid.
    return ["taskset", "-c", core, *argv] if core is not None else argv


class ProcStat:
    """CPU time and memory of one process, from /proc (Linux)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def cpu_s(self) -> float:
        """utime + stime of every thread so far, in seconds."""
        with open(f"/proc/{self.pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        # After the ")" that ends comm: field 3 is state, so utime (14) and stime (15)
        # are at offsets 11 and 12.
        return (int(fields[11]) + int(fields[12])) / _TICKS

    def memory_kb(self) -> dict[str, int]:
        """VmRSS (now) and VmHWM (peak since start), in KiB."""
        out = {}
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    name, value = line.split(":", 1)
                    out[name] = int(value.split()[0])
        return out


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def stat(self) -> ProcStat:
        return ProcStat(self.process.pid)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]


def _spawn(name: str, argv: list[str], port: int, workdir: Path, env: dict[str, str]) -> Server:
    log_path = workdir / f"{name}.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            argv, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
    return Server(name, process, port, log_path)


def _wait_http(server: Server, path: str, timeout: float = 20.0) -> float:
    """Seconds until `path` answers; raises with the server's log if it never does."""
    begin = time.perf_counter()
    while time.perf_counter() - begin < timeout:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited at start-up:\n{server.logs()}")
        try:
            with urllib.request.urlopen(server.url + path, timeout=1):
                return time.perf_counter() - begin
        except OSError:
            time.sleep(0.01)
    server.stop()
    raise RuntimeError(f"{server.name} not ready after {timeout}s:\n{server.logs()}")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "COSTPROXY_"))}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(_ENV)
    return env


def start_upstream(core: str | None, workdir: Path, port: int | None = None) -> Server:
    port = port or free_port()
    argv = [sys.executable, "-m", "proxy", "mock-upstream", "--port", str(port)]
    server = _spawn("upstream", _pinned(core, argv), port, workdir, _env())
    _wait_http(server, "/v1/models")
    return server


def start_redis(core: str | None, workdir: Path) -> Server:
    executable = shutil.which("redis-server")
    if executable is None:
        raise RuntimeError("redis-server not found: apt-get install -y redis-server")
    port = free_port()
    argv = [
        executable, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
        "--appendonly", "no", "--dir", str(workdir),
    ]  # fmt: skip
    server = _spawn("redis", _pinned(core, argv), port, workdir, _env())
    begin = time.perf_counter()
    while time.perf_counter() - begin < 10:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(64).startswith(b"+PONG"):
                    return server
        except OSError:
            time.sleep(0.01)
    server.stop()
    raise RuntimeError(f"redis-server did not start:\n{server.logs()}")


def proxy_config(upstream_url: str, store: dict, port: int) -> dict:
    """Like the tests' base config: one provider (the fake upstream), a trusted key."""
    return {
        "server": {"host": "127.0.0.1", "port": port, "shutdown_timeout_s": 5},
        "store": store,
        "admin": {"token": "${B_ADMIN_TOKEN}"},
        "providers": {
            "openai": {
                "kind": "openai",
                "base_url": upstream_url + "/v1",
                "forward_headers": ["x-mock-*"],
                "api_key": "${B_UPSTREAM_KEY}",
                "max_connections": 4000,  # 1,000 open streams must not queue in the pool
            }
        },
        "models": {"gpt-4o-mini": {"targets": [{"provider": "openai", "model": "gpt-4o-mini"}]}},
        "prices": {
            "openai/gpt-4o-mini": {"input": "0.15", "cached_input": "0.075", "output": "0.60"}
        },
        "keys": [{"key": "${B_TRUSTED_KEY}", "trusted": True, "name": "bench"}],
        # The `budgets` scenario's customer: a monthly hard budget it never reaches, so every
        # request reserves and settles (two more store round trips) and none is refused.
        "customers": {
            BUDGETED_CUSTOMER: {"budgets": [{"period": "monthly", "limit_usd": "1000000"}]}
        },
        # A log line per request costs ~8 µs: the bench measures the accounting path.
        "request_log": {"enabled": False},
    }


def start_proxy(
    name: str, core: str | None, workdir: Path, upstream_url: str, store: dict
) -> tuple[Server, float]:
    """The proxy under `costproxy serve`, and its start-up time to the first answer."""
    port = free_port()
    config_path = workdir / f"{name}.yaml"
    store = {**store, "journal_path": str(workdir / f"journal-{name}")}  # one per instance
    config_path.write_text(yaml.safe_dump(proxy_config(upstream_url, store, port)))
    argv = [sys.executable, "-m", "proxy", "--log-level", "WARNING", "serve"]
    argv += ["--config", str(config_path)]
    server = _spawn(name, _pinned(core, argv), port, workdir, _env())
    return server, _wait_http(server, "/healthz")


def make_workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="costproxy-bench-"))
