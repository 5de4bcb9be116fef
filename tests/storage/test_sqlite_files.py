"""SQLite's files: the WAL's size bound under sustained writes, exclusive mode, unusable files."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.storage.test_sqlite import token_for
from tokengate.core.credentials import new_access_token
from tokengate.storage.base import StorageUnavailable
from tokengate.storage.sqlite import SQLiteSettings, SQLiteStore
from tokengate.storage.sqlite.settings import MIB

pytestmark = pytest.mark.anyio

LIMIT = 4 * MIB


async def write_for(store: SQLiteStore, seconds: float, writers: int = 64) -> int:
    """Issue tokens from `writers` concurrent callers for `seconds`; the largest WAL seen."""
    largest = 0
    deadline = time.monotonic() + seconds
    assert store.wal is not None
    wal_size = store.wal.size

    async def writer() -> None:
        nonlocal largest
        while time.monotonic() < deadline:
            await store.add_token(token_for(new_access_token()))
            largest = max(largest, wal_size())

    await asyncio.gather(*(writer() for _ in range(writers)))
    return largest


@pytest.mark.parametrize(
    ("limit", "bounded"), [(LIMIT, True), (0, False)], ids=["bounded-4MiB", "unbounded"]
)
async def test_wal_stays_below_its_bound_under_sustained_writes(
    tmp_path: Path, limit: int, bounded: bool
) -> None:
    """Two seconds of writes at full speed: the -wal never reaches a 4 MiB bound (unbounded, the
    same load passes it, so the load is enough), and every write is readable afterwards."""
    path = tmp_path / "tokengate.db"
    store = SQLiteStore(str(path), settings=SQLiteSettings(wal_limit=limit))
    await store.open()
    try:
        largest = await write_for(store, 2.0)
        stored = await store.client_activity(0)
    finally:
        await store.close()
    print(f"largest WAL {largest / MIB:.1f} MiB, {stored['tgc_a'].issued_since} tokens")
    assert (largest < LIMIT) is bounded, f"largest WAL {largest / MIB:.1f} MiB"
    assert stored["tgc_a"].issued_since > 1000  # the load really was sustained


async def test_a_reader_pinning_the_wal_costs_disk_not_availability(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Another connection holding a read transaction stops the TRUNCATE: writes go on (paused at
    most ~1 s), a warning names the -wal; once it ends, the WAL comes back under the bound."""
    path = tmp_path / "tokengate.db"
    wal = path.with_name("tokengate.db-wal")
    store = SQLiteStore(str(path), settings=SQLiteSettings(wal_limit=LIMIT))
    await store.open()
    pin = sqlite3.connect(path, isolation_level=None)
    try:
        await store.add_token(token_for(new_access_token()))
        pin.execute("BEGIN")
        pin.execute("SELECT COUNT(*) FROM tokens").fetchall()  # holds its snapshot in the WAL
        with caplog.at_level(logging.WARNING, "tokengate.storage"):
            started = time.monotonic()
            largest = await write_for(store, 3.0)
            elapsed = time.monotonic() - started
        assert largest >= LIMIT  # the pinned WAL could not be truncated
        assert elapsed < 4.5  # each stuck checkpoint paused writes for ~1 s, not busy_timeout
        assert any(str(wal) in r.getMessage() for r in caplog.records), caplog.text
        pin.execute("COMMIT")
        await asyncio.sleep(1.5)  # the background checkpointer gets its TRUNCATE through
        await store.add_token(token_for(new_access_token()))
        assert store.wal is not None
        assert store.wal.size() < LIMIT
    finally:
        pin.close()
        await store.close()


async def test_exclusive_mode_uses_no_shm_and_locks_other_processes_out(tmp_path: Path) -> None:
    """`exclusive`: reads and writes work, no -shm file exists, another process is refused."""
    path = tmp_path / "tokengate.db"
    store = SQLiteStore(str(path), settings=SQLiteSettings(exclusive=True))
    await store.open()
    try:
        tokens = [token_for(new_access_token()) for _ in range(50)]
        await asyncio.gather(*(store.add_token(t) for t in tokens))
        assert await store.get_token(tokens[-1].token_hash) == tokens[-1]
        assert not path.with_name("tokengate.db-shm").exists()
        other = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-c", "import sqlite3, sys; sqlite3.connect(sys.argv[1], timeout=0.1)"
             ".execute('SELECT COUNT(*) FROM tokens').fetchall()", str(path)],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert other.returncode != 0
        assert "database is locked" in other.stderr
    finally:
        await store.close()


@pytest.mark.parametrize("suffix", ["", "-wal", "-shm"], ids=["db", "wal", "shm"])
async def test_a_file_that_cannot_be_written_is_refused_at_open_by_name(
    tmp_path: Path, suffix: str
) -> None:
    """A database file that is not a regular, writable file stops `open` with its name."""
    path = tmp_path / "tokengate.db"
    blocked = tmp_path / f"tokengate.db{suffix}"
    blocked.mkdir()  # a directory: unusable even for root, who may write read-only files
    with pytest.raises(StorageUnavailable, match=f"{blocked} is not a regular file"):
        await SQLiteStore(str(path)).open()


async def test_exclusive_mode_ignores_a_leftover_shm(tmp_path: Path) -> None:
    """`exclusive` never opens the -shm, so an unusable one left behind does not matter."""
    path = tmp_path / "tokengate.db"
    (tmp_path / "tokengate.db-shm").mkdir()
    store = SQLiteStore(str(path), settings=SQLiteSettings(exclusive=True))
    await store.open()
    try:
        await store.add_token(token := token_for(new_access_token()))
        assert await store.get_token(token.token_hash) == token
    finally:
        await store.close()
