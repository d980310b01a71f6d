#!/usr/bin/env bash
# Set up and run the whole test suite: lint (ruff), types (mypy on the core), tests (pytest).
# Tests use DATABASE_URL when set, else an embedded PostgreSQL they start themselves.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh dev
.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
