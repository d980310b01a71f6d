#!/usr/bin/env bash
# Set up and run the main job: migrate → ingest → materialize → serve.
# With no DATABASE_URL an embedded PostgreSQL is started under the user's data folder.
# Arguments go to `liqmap up` (e.g. --replay ../shared/data to run offline from recordings).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh ""
exec .venv/bin/liqmap up "$@"
