"""The files one SQLite database lives in: checked before opening, named when they fail.

A database is the main file, its `-wal` and (in shared mode) its `-shm`, all created next to
each other, so the directory must be writable too. The check runs before any connection is
made, so a file this process cannot write is refused at start with its name, instead of
surfacing later as "attempt to write a readonly database" on the first token request.
"""

from __future__ import annotations

import logging
import os
import stat
import time
from collections.abc import Callable

log = logging.getLogger("tokengate.storage")
REPORT_EVERY = 10.0  # seconds: one log line per distinct failure per interval, not per request


def database_files(path: str, *, exclusive: bool) -> tuple[str, ...]:
    """The main file, its WAL and, unless `exclusive` (no shared index), its `-shm`."""
    return (path, path + "-wal") if exclusive else (path, path + "-wal", path + "-shm")


def unusable(path: str, *, exclusive: bool) -> str | None:
    """Why this process cannot read and write the database's files, naming one; None if it can."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.access(directory, os.W_OK | os.X_OK):
        uid = os.geteuid()
        return f"directory {directory} is missing or not writable by this process (uid {uid})"
    for name in database_files(path, exclusive=exclusive):
        try:
            mode = os.stat(name).st_mode
        except FileNotFoundError:
            continue
        if not stat.S_ISREG(mode):
            return f"{name} is not a regular file"
        if not os.access(name, os.R_OK | os.W_OK):
            return f"{name} is not readable and writable by this process (uid {os.geteuid()})"
    return None


class FailureLog:
    """Logs a storage failure with the database's path and any unusable file, rate-limited."""

    def __init__(
        self, path: str, *, exclusive: bool, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._path = path
        self._exclusive = exclusive
        self._clock = clock
        self._last: dict[str, float] = {}

    def describe(self, exc: Exception) -> str:
        """`SQLite PATH: error`, plus the file that is not usable when one is found."""
        problem = unusable(self._path, exclusive=self._exclusive)
        return f"SQLite {self._path}: {exc}" + ("" if problem is None else f" ({problem})")

    def report(self, exc: Exception) -> str:
        """Log `describe(exc)` unless the same error was logged within REPORT_EVERY; return it."""
        text = self.describe(exc)
        now = self._clock()
        if now - self._last.get(str(exc), -REPORT_EVERY) >= REPORT_EVERY:
            if len(self._last) > 100:  # distinct messages are few; never let them pile up
                self._last.clear()
            self._last[str(exc)] = now
            log.error("storage unavailable: %s", text)
        return text
