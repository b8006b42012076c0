"""scripts/test-deps.sh leaves the host as it found it: the server packages it installs for
the tests (redis-server, prometheus) do not stay enabled system services.

Run in a sandbox: a PATH without redis-server or prometheus, a stand-in for apt-get that
"installs" them as Debian does (the program, and the enablement symlinks its postinst
makes), and a stand-in systemd directory; no-system-service.sh is the real script.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.support.procs import REPO

# What Debian's packages leave behind: the programs, and `systemctl enable`'s symlinks.
FAKE_APT_GET = """#!/bin/bash
echo "apt-get $*" >>"$SANDBOX/apt.log"
[ "$1" = install ] || exit 0
for package in "$@"; do
  case $package in
    redis-server)
      touch "$SANDBOX/bin/redis-server"
      ln -s /lib/systemd/system/redis-server.service "$SYSTEMD_ETC/multi-user.target.wants/"
      ln -s /lib/systemd/system/redis-server.service "$SYSTEMD_ETC/redis.service" ;;
    prometheus)
      touch "$SANDBOX/bin/prometheus" "$SANDBOX/bin/promtool"
      ln -s /lib/systemd/system/prometheus.service "$SYSTEMD_ETC/multi-user.target.wants/" ;;
  esac
done
chmod +x "$SANDBOX"/bin/*
"""
TOOLS = ("bash", "env", "cat", "dirname", "basename", "readlink", "rm", "ln", "touch", "chmod")


def sandbox(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in TOOLS:
        (bin_dir / tool).symlink_to(shutil.which(tool) or f"/bin/{tool}")
    (bin_dir / "id").write_text("#!/bin/bash\necho 0\n")  # as root: no sudo involved
    (bin_dir / "apt-get").write_text(FAKE_APT_GET)
    for script in ("id", "apt-get"):
        (bin_dir / script).chmod(0o755)
    wants = tmp_path / "etc" / "multi-user.target.wants"
    wants.mkdir(parents=True)
    # Someone else's service, enabled before: it must stay.
    (wants / "postgresql.service").symlink_to("/lib/systemd/system/postgresql.service")
    return {
        "PATH": str(bin_dir),
        "SANDBOX": str(tmp_path),
        "SYSTEMD_ETC": str(tmp_path / "etc"),
        "SYSTEMD_RUN": str(tmp_path / "no-systemd-running"),
        "PYTHON": str(Path(os.__file__).parents[2] / "bin" / "python3"),
    }


def run_deps(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(REPO / "scripts/test-deps.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def links(tmp_path: Path) -> list[str]:
    etc = tmp_path / "etc"
    return sorted(str(p.relative_to(etc)) for p in etc.rglob("*") if p.is_symlink())


def test_installed_servers_are_not_left_as_enabled_services(tmp_path: Path):
    env = sandbox(tmp_path)
    result = run_deps(env)
    assert result.returncode == 0, result.stderr
    assert "Installing redis-server prometheus (Debian packages)" in result.stdout
    assert "prometheus.service: no longer enabled" in result.stdout
    assert (tmp_path / "bin" / "redis-server").exists()  # the program stays
    assert links(tmp_path) == ["multi-user.target.wants/postgresql.service"]

    again = run_deps(env)  # nothing missing now: apt-get is not called again
    assert again.returncode == 0, again.stderr
    calls = (tmp_path / "apt.log").read_text().splitlines()
    assert [c for c in calls if c.startswith("apt-get install")] == [
        "apt-get install -y -qq --no-install-recommends redis-server prometheus"
    ]


def test_a_service_that_was_there_before_is_left_alone(tmp_path: Path):
    env = sandbox(tmp_path)
    (tmp_path / "bin" / "redis-server").write_text("#!/bin/bash\n")
    (tmp_path / "bin" / "redis-server").chmod(0o755)
    wants = tmp_path / "etc" / "multi-user.target.wants"
    (wants / "redis-server.service").symlink_to("/lib/systemd/system/redis-server.service")
    result = run_deps(env)
    assert result.returncode == 0, result.stderr
    assert "Installing prometheus (Debian packages)" in result.stdout
    assert links(tmp_path) == [
        "multi-user.target.wants/postgresql.service",
        "multi-user.target.wants/redis-server.service",
    ]
