#!/usr/bin/env bash
# Usage: no-system-service.sh UNIT...   (e.g. prometheus.service; as root)
#
# Debian enables the service of a server package it installs, and starts it where systemd
# runs. scripts/test.sh installs redis-server and prometheus only for the tests, which
# start their own servers on free ports: the packages it installs must not stay system
# services (a system Prometheus would hold port 9090, the port the compose stack uses).
#
# With systemd running: `systemctl disable --now`. Without (a container, a chroot): the
# enablement symlinks `systemctl enable` made are removed, aliases included.
# SYSTEMD_ETC and SYSTEMD_RUN name the two directories (for the tests of this script).
set -euo pipefail
etc=${SYSTEMD_ETC:-/etc/systemd/system}
run=${SYSTEMD_RUN:-/run/systemd/system}

for unit in "$@"; do
  if [ -d "$run" ] && command -v systemctl >/dev/null; then
    systemctl disable --now "$unit" >/dev/null 2>&1 || true
    echo "$unit: disabled and stopped (the tests start their own)"
    continue
  fi
  removed=0
  for link in "$etc"/*.wants/"$unit" "$etc"/*.service; do
    [ -L "$link" ] || continue
    # The unit's own wants-links, and aliases pointing at its unit file.
    if [ "$(basename "$link")" = "$unit" ] || [ "$(basename "$(readlink "$link")")" = "$unit" ]; then
      rm -f "$link"
      removed=$((removed + 1))
    fi
  done
  if ((removed)); then
    echo "$unit: no longer enabled (the tests start their own)"
  fi
done
