"""A real PostgreSQL for tests: reachability check and a throwaway database per test.

The server is the one at `TOKENGATE_TEST_POSTGRES_URL` (default: the local `test` database).
Locally, tests skip when it is unreachable; under `CI=true` they fail, so CI cannot go green
without having run them.
"""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
CONNECT_TIMEOUT = 3


def server_url() -> str:
    """The URL of the test server's administrative database."""
    return os.environ.get("TOKENGATE_TEST_POSTGRES_URL", DEFAULT_URL)


@functools.cache
def postgres_available() -> str | None:
    """None when the server answers, else why not (a skip reason). Checked once per run."""
    url = server_url()
    try:
        with psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"PostgreSQL not reachable at {url}: {' '.join(str(exc).split())}"
    return None


def require_postgres() -> None:
    """Skip the calling test when PostgreSQL is unreachable; fail instead under `CI=true`."""
    reason = postgres_available()
    if reason is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: PostgreSQL tests must run, not skip)")
    pytest.skip(reason)


def database_url(name: str) -> str:
    """The server URL pointing at database `name` instead (query parameters kept)."""
    parts = urlsplit(server_url())
    return urlunsplit(parts._replace(path="/" + name))


@contextlib.contextmanager
def fresh_database() -> Iterator[str]:
    """Create an empty database `tg_test_<hex>`, yield its URL, drop it (even if in use)."""
    require_postgres()
    name = f"tg_test_{secrets.token_hex(6)}"
    _admin(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
    try:
        yield database_url(name)
    finally:
        _admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _admin(statement: sql.Composed) -> None:
    with psycopg.connect(server_url(), autocommit=True, connect_timeout=CONNECT_TIMEOUT) as conn:
        conn.execute(statement)
