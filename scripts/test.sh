#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite: lint, types, unit, storage conformance, e2e.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
bash scripts/services.sh
.venv/bin/ruff check src tests bench
.venv/bin/ruff format --check src tests bench
.venv/bin/mypy
# pytest exits 5 when it collects no test; set -e makes that (like any failure) fail the run.
.venv/bin/pytest -q -p no:cacheprovider "$@"
