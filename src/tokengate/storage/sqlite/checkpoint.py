"""WAL checkpoints off the loop thread: the writer has automatic checkpoints turned off.

A background task runs a PASSIVE checkpoint (which never waits for readers or writers) every
second, on its own connection and on the store's helper thread.
"""

from __future__ import annotations

import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor

from tokengate.storage.sqlite.connect import connect

CHECKPOINT_INTERVAL = 1.0  # seconds between background WAL checkpoints


async def checkpoint_forever(path: str, busy_timeout: float, thread: ThreadPoolExecutor) -> None:
    """Copy the WAL back into the database every interval until cancelled."""
    loop = asyncio.get_running_loop()
    conn = await loop.run_in_executor(thread, connect, path, busy_timeout)
    try:
        while True:
            await asyncio.sleep(CHECKPOINT_INTERVAL)
            try:
                await loop.run_in_executor(thread, _checkpoint, conn)
            except sqlite3.Error:  # busy or I/O trouble: try again next interval
                continue
    finally:
        await asyncio.shield(loop.run_in_executor(thread, conn.close))


def _checkpoint(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
