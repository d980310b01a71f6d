#!/usr/bin/env bash
# Set up and run the whole test suite: lint (ruff), types (mypy on the core), tests (pytest).
# Tests use DATABASE_URL when set, else an embedded PostgreSQL they start themselves.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh dev
# The web viewer's tests drive Debian's chromium (headless, through Playwright's Python driver;
# Playwright never downloads a browser of its own here).
if [ ! -x /usr/bin/chromium ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium
fi
# The interoperability tests run standard npm clients (graphql-ws, the graphql-http audit):
# installed from the committed lock file, never globally.
npm ci --prefix tests/api/interop/node --no-audit --no-fund --loglevel=error
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
