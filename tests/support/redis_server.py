"""A throwaway `redis-server` on a free loopback port, owned by the tests.

Never the machine's shared Redis: each instance has its own port and temp dir, so tests
may flush, kill and restart it freely.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

__all__ = ["RedisServer"]

_NOT_FOUND = (
    "redis-server not found: install it with `apt-get install -y redis-server` "
    "(the test command in the README does this)"
)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """Start with `start()` (or `with RedisServer() as server:`); `stop()` kills it.

    `restart()` comes back on the same port. With `persistent=True` every write is appended
    to an AOF fsynced at once, so data survives even a kill.
    """

    def __init__(self, *, persistent: bool = False, startup_timeout: float = 10.0) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            raise RuntimeError(_NOT_FOUND)
        self.executable = executable
        self.persistent = persistent
        self.startup_timeout = startup_timeout
        self.port = _free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="costproxy-redis-"))
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        if self._process is not None:
            return
        options = {
            "port": str(self.port),
            "bind": "127.0.0.1",
            "dir": str(self.dir),
            "logfile": str(self.dir / "redis.log"),
            "save": "",
            "appendonly": "yes" if self.persistent else "no",
            "appendfsync": "always",
        }
        self._process = subprocess.Popen(
            [
                self.executable,
                *(arg for name, value in options.items() for arg in (f"--{name}", value)),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait_until_ready()

    def stop(self) -> None:
        """Kill the server (no shutdown save): what a crash looks like to the client."""
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            process.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop the server and delete its directory."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _wait_until_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._process = None
                raise RuntimeError(f"redis-server exited at start-up: {self._log_tail()}")
            if self._answers_ping():
                return
            time.sleep(0.01)
        self.stop()
        raise RuntimeError(f"redis-server did not answer PING in time: {self._log_tail()}")

    def _answers_ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def _log_tail(self) -> str:
        try:
            return (self.dir / "redis.log").read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"
