"""Waiting for another process's SQLite write lock: retry with exponential backoff.

The writer connection has no busy handler (SQLite's would sleep on the event loop), so a busy
`BEGIN IMMEDIATE` is retried here with `asyncio.sleep` until `busy_timeout`. Switching to WAL
may report SQLITE_BUSY without calling any busy handler, so it is retried the same way, with
blocking sleeps, on the opening thread.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

_T = TypeVar("_T")
MAX_DELAY = 0.05  # seconds: long enough to let a batch commit, short enough to stay fair


def is_busy(exc: sqlite3.OperationalError) -> bool:
    """True when the statement failed because another connection holds the lock."""
    return exc.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


async def retry_while_busy(attempt: Callable[[], _T], timeout: float, first: float) -> _T:
    """`attempt()` until it is not busy; sleeps on the loop between tries."""
    for delay in _delays(asyncio.get_running_loop().time, timeout, first):
        try:
            return attempt()
        except sqlite3.OperationalError as exc:  # rolled back: safe to run again
            if not is_busy(exc):
                raise
        await asyncio.sleep(delay)
    return attempt()  # past the deadline: the last try's error is the caller's


def retry_while_busy_blocking(attempt: Callable[[], _T], timeout: float, first: float) -> _T:
    """Like `retry_while_busy`, sleeping on the calling thread (never the loop's)."""
    for delay in _delays(time.monotonic, timeout, first):
        try:
            return attempt()
        except sqlite3.OperationalError as exc:
            if not is_busy(exc):
                raise
        time.sleep(delay)
    return attempt()


def _delays(clock: Callable[[], float], timeout: float, first: float) -> Iterator[float]:
    deadline = clock() + timeout
    delay = first
    while clock() <= deadline:
        yield delay
        delay = min(delay * 2, MAX_DELAY)
