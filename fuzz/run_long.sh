#!/usr/bin/env bash
# The long fuzz run: >= 100,000 examples per endpoint. Arguments go to fuzz/run_long.py
# (--examples N, --only server,resource,gateway); PYTHON overrides the interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-.venv/bin/python}" fuzz/run_long.py "$@"
