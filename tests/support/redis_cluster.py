"""A throwaway 3-master Redis Cluster on loopback ports, owned by the tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["RedisCluster"]

_BUS_OFFSET = 10_000  # Redis Cluster's bus listens on port + 10000


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _cluster_ports(count: int) -> list[int]:
    """Ports whose cluster-bus port (+10000) is free too."""
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port + _BUS_OFFSET < 65536 and _free(port + _BUS_OFFSET) and port not in ports:
            ports.append(port)
    return ports


class RedisCluster:
    """`start()` runs 3 cluster-enabled redis-servers and joins them, no replicas."""

    def __init__(self, masters: int = 3, startup_timeout: float = 15.0) -> None:
        server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
        if server is None or cli is None:
            raise RuntimeError("redis-server and redis-cli are needed (apt-get install redis)")
        self.server, self.cli = server, cli
        self.masters = masters
        self.startup_timeout = startup_timeout
        self.ports: list[int] = []
        self.dir = Path(tempfile.mkdtemp(prefix="costproxy-cluster-"))
        self._processes: list[subprocess.Popen[bytes]] = []

    @property
    def nodes(self) -> list[str]:
        return [f"127.0.0.1:{port}" for port in self.ports]

    def start(self) -> None:
        self.ports = _cluster_ports(self.masters)
        for port in self.ports:
            node_dir = self.dir / str(port)
            node_dir.mkdir()
            self._processes.append(
                subprocess.Popen(
                    [
                        self.server,
                        *("--port", str(port), "--bind", "127.0.0.1", "--dir", str(node_dir)),
                        *("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"),
                        *("--save", "", "--appendonly", "no", "--logfile", "redis.log"),
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        for port in self.ports:
            self._wait(lambda p=port: self._cli(p, "PING") == "PONG", "PING")
        subprocess.run(
            [
                self.cli,
                "--cluster",
                "create",
                *self.nodes,
                *("--cluster-replicas", "0", "--cluster-yes"),
            ],
            check=True,
            capture_output=True,
            timeout=self.startup_timeout,
        )
        for port in self.ports:
            self._wait(
                lambda p=port: "cluster_state:ok" in self._cli(p, "CLUSTER", "INFO"),
                "cluster_state:ok",
            )

    def close(self) -> None:
        for process in self._processes:
            process.kill()
            process.wait()
        self._processes.clear()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _cli(self, port: int, *command: str) -> str:
        result = subprocess.run(
            [self.cli, "-p", str(port), *command], capture_output=True, text=True, timeout=5
        )
        return result.stdout.strip()

    def _wait(self, ready, what: str) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while not ready():
            if time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"redis cluster: no {what} in {self.startup_timeout}s")
            time.sleep(0.05)
