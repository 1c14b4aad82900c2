#!/usr/bin/env bash
# `make test`: the suite, with a throwaway PostgreSQL cluster for the bank's database tests when
# none is given (DUETTO_TEST_PG_DSN) and PostgreSQL is installed; .ci/run starts its own first.
# Without either, the PostgreSQL variants skip locally and fail under CI=true.
#
#   bash scripts/run-tests.sh .venv/bin/python -m pytest tests
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${DUETTO_TEST_PG_DSN:-}" ] \
   && { ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1 || command -v pg_ctl >/dev/null; }; then
  eval "$(bash scripts/start-postgres.sh)"
  trap 'bash scripts/start-postgres.sh --stop "$DUETTO_TEST_PG_DIR"' EXIT
fi
"$@"
