"""Classify unexpected exceptions: a storage outage is 503, anything else is 500."""

from __future__ import annotations

import sqlite3

import psycopg
import psycopg_pool

_OUTAGES: tuple[type[BaseException], ...] = (
    sqlite3.OperationalError,
    psycopg.OperationalError,
    psycopg_pool.PoolTimeout,
    ConnectionError,
    TimeoutError,
)


def is_storage_outage(exc: BaseException) -> bool:
    """True for errors that mean "the database is unreachable or busy right now"."""
    return isinstance(exc, _OUTAGES)
