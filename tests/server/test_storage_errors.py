"""Storage outages are classified in the storage layer: 503 for outages, no driver in the server."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import psycopg
import psycopg_pool
import pytest

from tokengate.server.errors import is_storage_outage
from tokengate.storage.base import StorageUnavailable


def test_the_server_imports_no_database_driver() -> None:
    """Importing the server app loads neither psycopg nor psycopg_pool."""
    src = Path(__file__).resolve().parents[2] / "src"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")]),
    }
    code = (
        "import tokengate.server.app, sys;"
        " assert 'psycopg' not in sys.modules, 'psycopg';"
        " assert 'psycopg_pool' not in sys.modules, 'psycopg_pool'"
    )
    subprocess.run([sys.executable, "-c", code], env=env, check=True)


@pytest.mark.parametrize(
    "exc",
    [
        pytest.param(StorageUnavailable("down"), id="storage-unavailable"),
        pytest.param(sqlite3.OperationalError("database is locked"), id="sqlite-unmapped"),
        pytest.param(psycopg.OperationalError("connection refused"), id="psycopg-unmapped"),
        pytest.param(psycopg_pool.PoolTimeout("no connection"), id="pool-timeout-unmapped"),
        pytest.param(ConnectionResetError(), id="connection-error"),
        pytest.param(TimeoutError(), id="timeout"),
    ],
)
def test_outages_are_recognised(exc: Exception) -> None:
    """StorageUnavailable, and the drivers' outage errors if a store lets one escape."""
    assert is_storage_outage(exc)


@pytest.mark.parametrize(
    "exc",
    [
        pytest.param(RuntimeError("bug"), id="bug"),
        pytest.param(sqlite3.IntegrityError("constraint"), id="sqlite-integrity"),
        pytest.param(psycopg.errors.UniqueViolation("duplicate"), id="psycopg-integrity"),
        pytest.param(ValueError("duplicate"), id="value-error"),
    ],
)
def test_other_errors_are_not_outages(exc: Exception) -> None:
    """Anything else stays a 500: a bug must not hide behind Retry-After."""
    assert not is_storage_outage(exc)
