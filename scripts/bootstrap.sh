#!/usr/bin/env bash
# Create .venv (if missing) and install liqmap into it, with the extras named in $1 (e.g. "dev").
# Used by up.sh and test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
target="."
if [ -n "${1:-}" ]; then
  target=".[$1]"
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e "$target"
