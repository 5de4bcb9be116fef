"""One SQLite group transaction: built on the loop thread, committed on the commit thread.

Every SQLite call releases and re-takes the GIL, so the ops run where the requests are, on the
loop thread; the COMMIT is one call that spends most of its time in fsync with the GIL
released, so it alone goes to a thread (see `store` for the measurements).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tokengate.storage.base import StaleClient
from tokengate.storage.sqlite.busy import retry_while_busy

Op = Callable[[sqlite3.Connection], Any]


async def run_group(
    conn: sqlite3.Connection,
    ops: Sequence[Op],
    busy_timeout: float,
    committer: ThreadPoolExecutor | None,
) -> list[Any]:
    """Run `ops` in one transaction and commit it; one outcome per op (an exception fails it).

    Another process's write lock is waited for without blocking the loop. Without a
    `committer` (`:memory:`) the COMMIT runs inline.
    """
    outcomes = await retry_while_busy(lambda: _run_ops(conn, ops), busy_timeout, first=0.0005)
    if committer is None:
        _commit_or_roll_back(conn)
        return outcomes
    done = asyncio.get_running_loop().run_in_executor(committer, _commit_or_roll_back, conn)
    try:
        await asyncio.shield(done)
    except asyncio.CancelledError:
        await asyncio.wait([done])  # the connection is busy until the commit returns
        raise
    return outcomes


def _run_ops(conn: sqlite3.Connection, ops: Sequence[Op]) -> list[Any]:
    """Open a transaction and run `ops` in it (the caller commits). A duplicate (`ValueError`)
    fails only its own op: SQLite undoes just the failing statement, and each op that can
    raise it is a single INSERT."""
    outcomes: list[Any] = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        for op in ops:
            try:
                outcomes.append(op(conn))
            except (ValueError, StaleClient) as exc:
                outcomes.append(exc)
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return outcomes


def _commit_or_roll_back(conn: sqlite3.Connection) -> None:
    try:
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
