"""WAL checkpoints off the loop thread, and the bound on the `-wal` file's size.

The writer has automatic checkpoints off (they would run inline, on the loop). A background
task runs a PASSIVE checkpoint (which never waits) on its own connection and the store's
helper thread. Under a steady writer PASSIVE alone never lets the WAL restart: it copies what
was committed when it began, and by the time it ends the writer has appended more, so the
file grew without bound (800 MiB in 30 s). Hence the bound: once the `-wal` file passes half
of `wal_limit`, writes pause (they queue and join the next batch) while a TRUNCATE checkpoint
copies the rest, waits for readers to leave the WAL, and truncates it to zero bytes. The
background PASSIVE has copied most pages by then, so the pause is short. A checkpoint that
cannot finish (another process holds a read transaction open) is logged and retried; writes
go on meanwhile, so a stuck reader elsewhere costs disk, never availability.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor

CHECKPOINT_INTERVAL = 1.0  # seconds between background PASSIVE checkpoints
TRUNCATE_WAIT = 1.0  # seconds a TRUNCATE waits for other processes' readers and writers
# Seconds before writes pause again for a TRUNCATE that was stuck, doubling while it stays so.
RETRY_AFTER_STUCK = (2.0, 30.0)

log = logging.getLogger("tokengate.storage")


class WalBound:
    """Keeps `path`-wal below `limit` bytes (0: unbounded) for the writer of this process."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: str,
        limit: int,
        thread: ThreadPoolExecutor,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._conn = conn
        self._wal = path + "-wal"
        self._trigger = limit // 2
        self._thread = thread
        self._clock = clock
        self._writing = asyncio.Lock()
        self._stuck_until = 0.0
        self._backoff = RETRY_AFTER_STUCK[0]

    @contextlib.asynccontextmanager
    async def writing(self) -> AsyncIterator[None]:
        """Held around each group transaction; first brings an oversized WAL back to zero."""
        async with self._writing:
            if self._due():
                await self._truncate()
            yield

    async def run_forever(self, interval: float = CHECKPOINT_INTERVAL) -> None:
        """PASSIVE every `interval`; TRUNCATE (writes paused) once the WAL is past its trigger."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self._in_thread(_passive)
            except sqlite3.Error:  # busy or I/O trouble: try again next interval
                continue
            if self._due():
                async with self._writing:
                    await self._truncate()

    async def close(self) -> None:
        """Close the checkpoint connection."""
        await asyncio.shield(self._in_thread(lambda conn: conn.close()))

    def size(self) -> int:
        """The `-wal` file's size in bytes (0 when there is none)."""
        try:
            return os.stat(self._wal).st_size
        except FileNotFoundError:
            return 0

    def _due(self) -> bool:
        """Past the trigger, and no TRUNCATE found stuck within RETRY_AFTER_STUCK."""
        if self._trigger == 0 or self._clock() < self._stuck_until:
            return False
        return self.size() >= self._trigger

    async def _truncate(self) -> None:
        try:
            busy = await self._in_thread(_truncate)
        except sqlite3.Error as exc:
            busy, reason = True, str(exc)
        else:
            reason = "another process holds a read transaction or the write lock"
        if not busy:
            self._backoff = RETRY_AFTER_STUCK[0]
        else:
            self._stuck_until = self._clock() + self._backoff
            self._backoff = min(self._backoff * 2, RETRY_AFTER_STUCK[1])
            log.warning(
                "SQLite WAL %s is %d bytes, past its bound's trigger (%d), and could not be"
                " checkpointed (next try in %g s): %s",
                self._wal, self.size(), self._trigger, self._stuck_until - self._clock(), reason,
            )  # fmt: skip

    async def _in_thread(self, call: Callable[[sqlite3.Connection], object]) -> object:
        return await asyncio.get_running_loop().run_in_executor(self._thread, call, self._conn)


def _passive(conn: sqlite3.Connection) -> object:
    return conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


def _truncate(conn: sqlite3.Connection) -> bool:
    """A TRUNCATE checkpoint, waiting at most TRUNCATE_WAIT; True if it could not finish."""
    conn.execute(f"PRAGMA busy_timeout = {int(TRUNCATE_WAIT * 1000)}")
    busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return bool(busy)
