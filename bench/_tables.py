"""Token tables of a chosen size for the scale benchmark: bulk rows by SQL, cold tokens spread.

Bulk rows are written by the database itself (PostgreSQL `generate_series`, SQLite a recursive
CTE) in the tokens table's real format, whatever the schema of the code under test says it is
(`BYTEA` digest, or the older 64 hex characters). Among them, evenly spread through the heap,
sit `cold` real tokens: raw values made here with their hashes, issued to the bench client and
never introspected before, so each one's first introspection is a storage lookup (a token cache
miss) that touches a random index leaf and a random heap page, as in a long-running table.
"""

from __future__ import annotations

import contextlib
import secrets
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from tokengate.core.credentials import hash_value, new_access_token, new_jti

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
BULK_CLIENTS = 1000  # bulk rows name this many (made-up) client ids
TTL = 3600


@dataclass(frozen=True)
class Cold:
    """Real tokens planted among the bulk rows: raw values (to introspect) and their hashes."""

    values: list[str]
    hashes: list[str]
    jtis: list[str]

    @classmethod
    def make(cls, count: int) -> Cold:
        values = [new_access_token() for _ in range(count)]
        return cls(values, [hash_value(v) for v in values], [new_jti() for _ in range(count)])


@contextlib.contextmanager
def postgres_database(label: str, admin_url: str = ADMIN_URL) -> Iterator[str]:
    """A database of this run's own (`tg_scale_<hex>_<label>`), dropped afterwards."""
    name = f"tg_scale_{secrets.token_hex(4)}_{label}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
    try:
        yield urlunsplit(urlsplit(admin_url)._replace(path="/" + name))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            conn.execute(drop)


def _pg_key_is_text(conn: psycopg.Connection[tuple[object, ...]]) -> bool:
    found = conn.execute(
        "SELECT data_type FROM information_schema.columns"
        " WHERE table_name = 'tokens' AND column_name = 'token_hash'"
    ).fetchone()
    assert found is not None, "the schema is not there: create a client first"
    return found[0] == "text"


def _positions(rows: int, count: int) -> list[int]:
    """`count` row numbers in 1..rows, evenly spread."""
    return [1 + (i * rows) // count for i in range(count)]


def load_postgres(url: str, rows: int, cold: Cold, client_id: str, *, expired: int = 0) -> None:
    """Fill `tokens` with `rows` rows (the cold ones among them) plus `expired` expired rows;
    indexes rebuilt afterwards (the primary key at fillfactor 70, the fill of a B-tree grown by
    random inserts), then VACUUM ANALYZE, as autovacuum leaves a table at rest."""
    now = int(time.time())
    with psycopg.connect(url, autocommit=True) as conn:
        text_key = _pg_key_is_text(conn)
        conn.execute("ALTER TABLE tokens DROP CONSTRAINT tokens_pkey")
        conn.execute("DROP INDEX tokens_client_id, tokens_expires_at")
        conn.execute("CREATE TEMPORARY TABLE cold (n BIGINT PRIMARY KEY, h BYTEA, jti TEXT)")
        with conn.cursor().copy("COPY cold (n, h, jti) FROM STDIN") as copy:
            for n, h, jti in zip(
                _positions(rows, len(cold.hashes)), cold.hashes, cold.jtis, strict=True
            ):
                copy.write_row((n, bytes.fromhex(h), jti))
        key = "encode({}, 'hex')" if text_key else "{}"
        bulk = f"""
            INSERT INTO tokens
            SELECT {key.format("COALESCE(c.h, sha256(int8send(g)))")},
                   COALESCE(c.jti, md5(g::text)),
                   CASE WHEN c.h IS NULL
                        THEN 'tgc_' || substr(md5((g %% {BULK_CLIENTS})::text), 1, 24)
                        ELSE %(client)s END,
                   'read write', '[]', %(now)s - g %% 600, %(now)s + {TTL} - g %% 600, NULL
            FROM generate_series(1, %(rows)s) g LEFT JOIN cold c ON c.n = g
        """
        conn.execute(bulk, {"client": client_id, "now": now, "rows": rows})  # type: ignore[arg-type]
        if expired:
            gone = f"""
                INSERT INTO tokens
                SELECT {key.format("sha256(int8send(-g))")}, md5((-g)::text),
                       'tgc_' || substr(md5((g %% {BULK_CLIENTS})::text), 1, 24),
                       'read write', '[]', %(now)s - 7200 - g %% 600, %(now)s - 60 - g %% 600, NULL
                FROM generate_series(1, %(rows)s) g
            """
            conn.execute(gone, {"now": now, "rows": expired})  # type: ignore[arg-type]
        conn.execute(
            "ALTER TABLE tokens ADD CONSTRAINT tokens_pkey PRIMARY KEY (token_hash)"
            " WITH (fillfactor = 70)"
        )
        conn.execute("CREATE INDEX tokens_client_id ON tokens (client_id)")
        conn.execute("CREATE INDEX tokens_expires_at ON tokens (expires_at)")
        conn.execute("VACUUM ANALYZE tokens")


def prewarm(url: str) -> None:
    """Read the tokens table and its key index into shared buffers (`pg_prewarm`), as a server
    that has run for a while holds them when `shared_buffers` is sized for them."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
        conn.execute("SELECT pg_prewarm('tokens'), pg_prewarm('tokens_pkey')")


@dataclass(frozen=True)
class Footprint:
    """What the tokens table takes on disk."""

    rows: int
    total: int  # pg_total_relation_size: heap, TOAST, every index
    parts: dict[str, int]

    @property
    def per_token(self) -> float:
        return self.total / self.rows


def postgres_footprint(url: str) -> Footprint:
    """Bytes of the table and of each of its indexes."""
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT COUNT(*) FROM tokens").fetchone()
        total = conn.execute("SELECT pg_total_relation_size('tokens')").fetchone()
        heap = conn.execute("SELECT pg_relation_size('tokens')").fetchone()
        indexes = conn.execute(
            "SELECT indexrelid::regclass::text, pg_relation_size(indexrelid)"
            " FROM pg_index WHERE indrelid = 'tokens'::regclass ORDER BY 1"
        ).fetchall()
    assert rows is not None
    assert total is not None
    assert heap is not None
    parts = {"heap": int(heap[0]), **{str(n): int(s) for n, s in indexes}}
    return Footprint(int(rows[0]), int(total[0]), parts)


def load_sqlite(path: str, rows: int, cold: Cold, client_id: str, *, expired: int = 0) -> None:
    """The SQLite twin of `load_postgres`: cold rows at their spread rowids, the rest by CTE."""
    now = int(time.time())
    positions = _positions(rows, len(cold.hashes))
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        text_key = conn.execute(
            "SELECT type FROM pragma_table_info('tokens') WHERE name = 'token_hash'"
        ).fetchone() == ("TEXT",)
        conn.execute("BEGIN")
        cold_rows = [
            (n, h if text_key else bytes.fromhex(h), jti, client_id, now, now + TTL)
            for n, h, jti in zip(positions, cold.hashes, cold.jtis, strict=True)
        ]
        conn.executemany(
            "INSERT INTO tokens (rowid, token_hash, jti, client_id, scopes, audiences,"
            " issued_at, expires_at) VALUES (?, ?, ?, ?, 'read write', '[]', ?, ?)",
            cold_rows,
        )
        key = "lower(hex(randomblob(32)))" if text_key else "randomblob(32)"
        bulk = f"""
            WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < ?)
            INSERT OR IGNORE INTO tokens (rowid, token_hash, jti, client_id, scopes, audiences,
                                          issued_at, expires_at)
            SELECT n, {key}, lower(hex(randomblob(16))),
                   'tgc_' || substr(lower(hex(randomblob(12))), 1, 24), 'read write', '[]', ?, ?
            FROM g
        """
        conn.execute(bulk, (rows, now, now + TTL))
        if expired:
            gone = bulk.replace("SELECT n,", "SELECT n + ?,", 1)
            conn.execute(gone, (expired, rows, now - 7200, now - 60))
        conn.execute("COMMIT")
        conn.execute("ANALYZE")


def count_rows(url_or_path: str) -> int:
    """Rows in `tokens` (PostgreSQL URL or SQLite path)."""
    if url_or_path.startswith("postgresql://"):
        with psycopg.connect(url_or_path) as conn:
            row = conn.execute("SELECT COUNT(*) FROM tokens").fetchone()
    else:
        with contextlib.closing(sqlite3.connect(url_or_path)) as conn:
            row = conn.execute("SELECT COUNT(*) FROM tokens").fetchone()
    assert row is not None
    return int(row[0])


def slices(values: Sequence[str], parts: int) -> list[list[str]]:
    """`values` cut into `parts` disjoint, equal slices."""
    size = len(values) // parts
    return [list(values[i * size : (i + 1) * size]) for i in range(parts)]
