"""A throwaway Prometheus server on a free loopback port, owned by the tests, and promtool.

Both come from Debian's `prometheus` package. A missing binary is an error that says how to
install it, never a skip: the dashboards and alert rules are only proven against the real thing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import yaml

from tests.support.procs import ServerProcess, free_port

__all__ = ["PrometheusServer", "promtool"]

_INSTALL = "apt-get update && apt-get install -y --no-install-recommends prometheus"


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(
            f"{name} not found: install Debian's prometheus package with `{_INSTALL}` "
            "(scripts/test.sh does this)"
        )
    return path


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_binary("promtool"), *args], capture_output=True, text=True, timeout=60, check=False
    )


class PrometheusServer:
    """Scrapes `targets` of one job every `scrape_interval`, evaluates `rule_files`."""

    def __init__(
        self,
        *,
        job: str,
        targets: list[str],
        rule_files: list[Path],
        bearer_token: str | None = None,
        scrape_interval: str = "1s",
    ) -> None:
        self.executable = _binary("prometheus")
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="costproxy-prometheus-"))
        scrape: dict = {"job_name": job, "static_configs": [{"targets": targets}]}
        if bearer_token is not None:
            scrape["authorization"] = {"credentials": bearer_token}
        config = {
            "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
            "rule_files": [str(path) for path in rule_files],
            "scrape_configs": [scrape],
        }
        (self.dir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self._server = ServerProcess(
            [
                f"--config.file={self.dir / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            port=self.port,
            health_path="/-/ready",
            env=dict(os.environ),
            program=(self.executable,),
            name="prometheus",
        )

    @property
    def url(self) -> str:
        return self._server.url

    def start(self, timeout: float = 20.0) -> PrometheusServer:
        self._server.start(timeout)
        return self

    def logs(self) -> str:
        return self._server.logs()[-4000:]

    def close(self) -> None:
        self._server.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
