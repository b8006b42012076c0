"""Real server processes on loopback for the end-to-end tests: the proxy and the fake upstream."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

__all__ = ["ServerProcess", "free_port", "start_proxy", "start_upstream"]

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """`python -m proxy ARGS` (or `program ARGS`) in a subprocess, its output in a log file,
    ready when its health URL answers."""

    def __init__(
        self,
        args: list[str],
        *,
        port: int,
        health_path: str,
        env: dict[str, str],
        cwd: Path = REPO,
        program: tuple[str, ...] = (sys.executable, "-m", "proxy"),
        name: str | None = None,
    ) -> None:
        self.args = args
        self.program = program
        self.name = name or args[0]
        self.cwd = cwd
        self.port = port
        self.health_path = health_path
        self.env = env
        self.log_path = Path(tempfile.mkstemp(prefix="costproxy-", suffix=".log")[1])
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> ServerProcess:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [*self.program, *self.args],
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start:\n{self.logs()}")
            try:
                with urllib.request.urlopen(self.url + self.health_path, timeout=1):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} did not become ready in {timeout}s:\n{self.logs()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
        process, self.process = self.process, None
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(sig)
            try:
                return process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "COSTPROXY_"))}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def start_upstream(*extra_args: str) -> ServerProcess:
    port = free_port()
    return ServerProcess(
        ["mock-upstream", "--port", str(port), *extra_args],
        port=port,
        health_path="/v1/models",
        env=_env(),
    ).start()


def start_proxy(config: dict, directory: Path, env: dict[str, str] | None = None) -> ServerProcess:
    """Writes `config` as YAML (server.port filled in) and serves it."""
    port = free_port()
    # Each proxy process owns its journal (two instances may share one Redis). Set on the
    # caller's dict, so a test that rewrites the file later keeps it (a store change would
    # need a restart).
    store = config.setdefault("store", {})
    if "journal-auto-" in store.get("journal_path", "journal-auto-"):
        store["journal_path"] = str(directory / f"journal-auto-{port}")
    config = {**config, "server": {**config.get("server", {}), "host": "127.0.0.1", "port": port}}
    path = directory / f"costproxy-{port}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return ServerProcess(
        ["serve", "--config", str(path)], port=port, health_path="/healthz", env=_env(env)
    ).start()


def costproxy(*args: str, cwd: Path = REPO, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "proxy", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
