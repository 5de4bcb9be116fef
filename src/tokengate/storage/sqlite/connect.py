"""Opening SQLite connections: the writer (WAL, FULL sync, schema migrated), the reader.

The schema is brought to the latest version under `BEGIN IMMEDIATE` (see `migrations`), so
processes opening one new file at once create it exactly once; `user_version` records it.

No file is memory-mapped where we can help it (`mmap_size = 0`): a mapped file that another
process truncates kills this one with SIGBUS. The WAL index (`-shm`) is always mapped in
shared mode; `exclusive` opens the file through the `unix-excl` VFS instead, which takes an
exclusive lock per *process* (this process's connections still share the file: writer,
reader, checkpointer) and keeps the WAL index on the heap, so no `-shm` is used at all.
`PRAGMA locking_mode = EXCLUSIVE` would do the same per *connection*, locking the store's own
reader and checkpointer out.
"""

from __future__ import annotations

import os
import sqlite3
import urllib.parse
from collections.abc import Sequence

from tokengate.storage import migrations
from tokengate.storage.schema import SQLITE, digest_key
from tokengate.storage.sqlite.busy import retry_while_busy_blocking


def connect(path: str, busy_timeout: float, *, exclusive: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode, usable from any thread, mapping no file."""
    # isolation_level=None: no implicit transactions; writes say BEGIN IMMEDIATE themselves.
    # check_same_thread=False: connections are opened on a helper thread, used on the loop's.
    target, uri = (_exclusive_uri(path), True) if exclusive else (path, False)
    conn = sqlite3.connect(
        target, timeout=busy_timeout, isolation_level=None, check_same_thread=False, uri=uri
    )
    conn.execute("PRAGMA mmap_size = 0")
    return conn


def open_writer(
    path: str, busy_timeout: float, *, exclusive: bool = False, wal_limit: int = 0
) -> sqlite3.Connection:
    """The connection that writes: WAL, synchronous=FULL, schema migrated, no busy handler."""
    conn = connect(path, busy_timeout, exclusive=exclusive)
    try:
        _enable_wal(conn, path, busy_timeout)
        conn.execute("PRAGMA synchronous = FULL")
        migrate(conn)
        # From here on this connection is used on the event loop: never sleep in SQLite's busy
        # handler (the caller retries asynchronously) and never checkpoint inline.
        conn.execute("PRAGMA busy_timeout = 0")
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        # Whenever the WAL restarts without a TRUNCATE (a PASSIVE one caught up while writes
        # were idle, another process checkpointed), SQLite cuts the file back to the trigger.
        conn.execute(f"PRAGMA journal_size_limit = {wal_limit // 2 or -1}")
    except BaseException:
        conn.close()
        raise
    return conn


def open_reader(path: str, busy_timeout: float, *, exclusive: bool = False) -> sqlite3.Connection:
    """A read-only connection for the loop thread's lookups."""
    conn = connect(path, busy_timeout, exclusive=exclusive)
    conn.execute("PRAGMA query_only = ON")
    return conn


def _exclusive_uri(path: str) -> str:
    return "file:" + urllib.parse.quote(os.path.abspath(path)) + "?vfs=unix-excl"


def migrate(
    conn: sqlite3.Connection, steps: Sequence[migrations.Migration] = migrations.MIGRATIONS
) -> None:
    """Bring the schema to the latest version under the write lock; `user_version` records it."""
    conn.create_function(migrations.SQLITE_UNHEX, 1, _unhex, deterministic=True)
    conn.execute("BEGIN IMMEDIATE")
    try:
        found = int(conn.execute("PRAGMA user_version").fetchone()[0])
        latest = migrations.latest_version(steps)
        for statement in migrations.plan(found, SQLITE, steps):
            conn.execute(statement)
        if found != latest:
            conn.execute(f"PRAGMA user_version = {latest}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _unhex(value: object) -> bytes | None:
    """Migration 3's decoder: a stored hex digest's bytes, None for anything else."""
    return digest_key(value) if isinstance(value, str) else None


def _enable_wal(conn: sqlite3.Connection, path: str, busy_timeout: float) -> None:
    # Switching to WAL takes an exclusive lock and, unlike other statements, may report
    # SQLITE_BUSY without calling the busy handler, so racing processes retry here.
    def switch() -> object:
        return conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]

    mode = retry_while_busy_blocking(switch, busy_timeout, first=0.001)
    if str(mode).lower() != "wal":
        raise RuntimeError(f"SQLite database {path!r} cannot use WAL (journal_mode={mode})")
