#!/usr/bin/env bash
# The Debian packages the tests run as real processes (redis-server, prometheus, and
# chromium, which the console's browser tests drive through Playwright: no browser is ever
# downloaded) and Python's venv module: installed when missing (as root, or through sudo), and what this
# installs is left as a program only, never as an enabled system service.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
{ command -v prometheus >/dev/null && command -v promtool >/dev/null; } || missing+=(prometheus)
[ -x /usr/bin/chromium ] || missing+=(chromium)
"$PYTHON" -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
((${#missing[@]})) || exit 0

if [ "$(id -u)" = 0 ]; then sudo=(); elif command -v sudo >/dev/null; then sudo=(sudo); else
  echo "The tests need: ${missing[*]}. Install them with: apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "Installing ${missing[*]} (Debian packages) ..."
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"

# Debian enables (and where systemd runs, starts) a server package's service: the tests
# start their own servers on free ports, so nothing installed here stays a service.
units=()
for package in "${missing[@]}"; do
  case $package in
    redis-server) units+=(redis-server.service) ;;
    prometheus) units+=(prometheus.service) ;;
  esac
done
if ((${#units[@]})); then
  "${sudo[@]}" env SYSTEMD_ETC="${SYSTEMD_ETC:-}" SYSTEMD_RUN="${SYSTEMD_RUN:-}" \
    bash scripts/no-system-service.sh "${units[@]}"
fi
