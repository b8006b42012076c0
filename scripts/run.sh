#!/usr/bin/env bash
# Sets up and runs the proxy on the embedded SQLite store (config/quickstart.yaml).
# Without OPENAI_API_KEY it routes to the bundled fake upstream and says so.
# Extra arguments go to `costproxy quickstart` (e.g. --port 8081).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "costproxy needs Python 3.11 or newer (found: $("$PYTHON" --version 2>&1))." >&2
  exit 1
fi
if ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
  echo "Python's venv module is missing: apt-get install -y python3-venv" >&2
  exit 1
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e .
exec .venv/bin/costproxy quickstart "$@"
