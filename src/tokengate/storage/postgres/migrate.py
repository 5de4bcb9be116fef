"""The PostgreSQL schema version and its migration under an advisory lock (see `migrations`).

The version lives in the `tokengate_meta` row `schema_version`, as the first release wrote it.
Concurrent first starts queue on a transaction-scoped advisory lock, so each step runs once.
"""

from __future__ import annotations

from collections.abc import Sequence

import psycopg
from psycopg.rows import TupleRow

from tokengate.storage import migrations
from tokengate.storage.schema import POSTGRES

SCHEMA_LOCK = int.from_bytes(b"tgschema", "big")  # pg_advisory_xact_lock key (bigint)

_META = "CREATE TABLE IF NOT EXISTS tokengate_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
_META_VERSION = "SELECT value FROM tokengate_meta WHERE key = 'schema_version'"
_META_SET_VERSION = (
    "INSERT INTO tokengate_meta (key, value) VALUES ('schema_version', %s)"
    " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
)


async def migrate(
    conn: psycopg.AsyncConnection[TupleRow],
    steps: Sequence[migrations.Migration] = migrations.MIGRATIONS,
) -> None:
    """Bring the schema to the latest version; call inside a transaction."""
    await conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
    await conn.execute(_META, prepare=False)
    row = await (await conn.execute(_META_VERSION)).fetchone()
    found = int(row[0]) if row is not None else 0
    latest = migrations.latest_version(steps)
    for statement in migrations.plan(found, POSTGRES, steps):
        await conn.execute(statement, prepare=False)
    if found != latest:
        await conn.execute(_META_SET_VERSION, (str(latest),))
