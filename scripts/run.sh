#!/usr/bin/env bash
# Runs the proxy with the quickstart config on the embedded SQLite store in ./data/.
# Without OPENAI_API_KEY it routes every model to the bundled fake upstream and says so.
# Extra arguments go to `costproxy quickstart`: --port N (the proxy; default 8080),
# --fake-port N (the fake upstream; default 9000), --config FILE, --data-dir DIR.
#
# The first start creates .venv/ and installs costproxy into it (a minute at most); later
# starts skip that until pyproject.toml changes (its hash is kept in .venv/).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
stamp=.venv/.costproxy-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)

if [ ! -x .venv/bin/costproxy ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "costproxy needs Python 3.11 or newer (found: $("$PYTHON" --version 2>&1))." >&2
    exit 1
  fi
  if ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
    echo "Python's venv module is missing: apt-get install -y python3-venv" >&2
    exit 1
  fi
  if [ ! -x .venv/bin/python ]; then
    echo "First start: creating a virtual environment in .venv/ ($("$PYTHON" --version 2>&1)) ..."
    "$PYTHON" -m venv .venv
  fi
  echo "Installing costproxy and its dependencies into .venv/ (once, until pyproject.toml changes) ..."
  .venv/bin/python -m pip install -q --disable-pip-version-check -e .
  echo "$want" >"$stamp"
  echo "Installed. Starting the proxy ..."
fi
exec .venv/bin/costproxy quickstart "$@"
