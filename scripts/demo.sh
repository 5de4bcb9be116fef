#!/usr/bin/env bash
# Set up (idempotent) and run the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/tokengate demo "$@"
