#!/usr/bin/env bash
# Set up (idempotent) and run the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh server   # what the demo needs: the servers, not the test toolchain
exec .venv/bin/tokengate demo "$@"
