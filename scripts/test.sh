#!/usr/bin/env bash
# Sets up everything and runs the whole test suite (ruff, then pytest).
# Works on a fresh Debian/Ubuntu machine with Python 3.11+; installs the Debian packages
# the tests need (redis-server, prometheus, chromium) when they are missing, without leaving them
# as enabled system services. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "costproxy needs Python 3.11 or newer (found: $("$PYTHON" --version 2>&1))." >&2
  exit 1
fi
bash scripts/test-deps.sh

# The virtual environment: installed again only when pyproject.toml changes.
stamp=.venv/.costproxy-installed-test
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -x .venv/bin/pytest ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
  echo "$want" >"$stamp"
  echo "$want" >.venv/.costproxy-installed # what scripts/run.sh needs is installed too
fi

.venv/bin/ruff check .
.venv/bin/mypy  # the files and strictness are in pyproject.toml [tool.mypy]
exec .venv/bin/pytest -q -p no:cacheprovider "$@"
