"""PostgreSQL `LISTEN` for the event hub: wake as soon as any replica appends an event.

Every revocation-type write runs `pg_notify('tokengate_events', position)` in its own
transaction, so a notification arrives exactly when the event becomes visible. One dedicated
connection per process listens; if it breaks, the next wait reconnects, and until then the
hub's periodic re-read of the event log keeps it correct (just slower).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import psycopg
from psycopg import sql

log = logging.getLogger("tokengate.storage.listen")


class ChangeListener:
    """Waits for notifications on one channel over its own autocommit connection."""

    def __init__(self, conninfo: str, channel: str, connect_timeout: float = 5.0) -> None:
        self._conninfo = conninfo
        self._channel = channel
        self._connect_timeout = connect_timeout
        self._conn: psycopg.AsyncConnection[tuple[object, ...]] | None = None

    async def wait(self, timeout: float) -> None:
        """Return on the next notification, or after `timeout` seconds, or on a failure."""
        try:
            conn = await self._connection()
            async for _ in conn.notifies(timeout=timeout, stop_after=1):
                return
        except (psycopg.Error, OSError) as exc:
            log.warning("event LISTEN connection failed: %s", type(exc).__name__)
            await self.close()
            await asyncio.sleep(min(timeout, 1.0))

    async def _connection(self) -> psycopg.AsyncConnection[tuple[object, ...]]:
        if self._conn is None or self._conn.closed:
            conn = await psycopg.AsyncConnection.connect(
                self._conninfo, autocommit=True, connect_timeout=int(self._connect_timeout)
            )
            await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
            self._conn = conn
        return self._conn

    async def close(self) -> None:
        """Drop the listening connection."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error, OSError):
                await conn.close()
