"""SQLite file settings: the WAL's size bound and exclusive (one-process) mode."""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class SQLiteSettings:
    """How a `SQLiteStore` treats its files.

    `wal_limit`: bytes the `-wal` file may reach; past half of it writes pause for one
    TRUNCATE checkpoint (see `checkpoint`); 0 leaves the WAL unbounded (background PASSIVE
    checkpoints only, which a steady writer outruns). `exclusive`: open the file through
    SQLite's `unix-excl` VFS, which locks out every other process and keeps the WAL index in
    this process's heap, so no `-shm` file is shared or memory-mapped (see `connect`).
    """

    wal_limit: int = 64 * MIB
    exclusive: bool = False

    def __post_init__(self) -> None:
        if self.wal_limit != 0 and self.wal_limit < 4 * MIB:
            raise ValueError("the WAL limit must be 0 (unbounded) or at least 4 MiB")
