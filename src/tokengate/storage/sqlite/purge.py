"""Purging expired SQLite tokens: one purger per file, keyset batches off the event loop.

The purger takes an exclusive `flock` on `<database>-purge.lock` without waiting: every process
on the host that opens the file respects it and the kernel drops it when its holder dies
(SQLite's only lock is its write lock, which a purge must not hold for a whole run). Batches run
on their own connection on the store's helper thread, so a DELETE never blocks the loop; each is
one short write transaction, so the store's writer waits for one batch at most. Deleted pages
go to SQLite's freelist and new tokens reuse them: the file stops growing at its high-water mark
(only an offline `VACUUM` shrinks it).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import os
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from tokengate.storage.base import PurgeInProgress, PurgePace
from tokengate.storage.purge import paced
from tokengate.storage.sqlite.connect import connect

LOCK_SUFFIX = "-purge.lock"
# Oldest first from the keyset cursor (see `tokengate.storage.purge`).
_BATCH = (
    "DELETE FROM tokens WHERE rowid IN (SELECT rowid FROM tokens"
    " WHERE expires_at >= ? AND expires_at <= ? ORDER BY expires_at LIMIT ?)"
    " RETURNING expires_at"
)


@contextlib.contextmanager
def purge_lock(path: str) -> Iterator[None]:
    """Hold the file's purge lock for the block; `PurgeInProgress` if another process has it."""
    fd = os.open(path + LOCK_SUFFIX, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise PurgeInProgress(f"another process is purging {path}") from None
        yield
    finally:
        os.close(fd)  # releases the lock


def delete_batch(conn: sqlite3.Connection, cursor: int, before: int, limit: int) -> tuple[int, int]:
    """One transaction: up to `limit` tokens with `cursor` <= expires_at <= `before`; how many,
    and the newest expires_at among them (the next cursor)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        rows = conn.execute(_BATCH, (cursor, before, limit)).fetchall()
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return len(rows), max((row[0] for row in rows), default=cursor)


async def purge_file(
    path: str,
    busy_timeout: float,
    thread: ThreadPoolExecutor,
    before: int,
    pace: PurgePace,
    *,
    exclusive: bool = False,
) -> int:
    """Purge under the file's lock, batch by batch on `thread`; returns the rows deleted."""
    loop = asyncio.get_running_loop()
    with purge_lock(path):
        open_ = functools.partial(connect, path, busy_timeout, exclusive=exclusive)
        conn = await loop.run_in_executor(thread, open_)
        try:

            async def batch(cursor: int) -> tuple[int, int]:
                return await loop.run_in_executor(
                    thread, delete_batch, conn, cursor, before, pace.batch
                )

            return await paced(batch, pace)
        finally:
            await asyncio.shield(loop.run_in_executor(thread, conn.close))
