"""SQLite backend (the default): `SQLiteStore`, one file shared by every process; see `store`."""

from __future__ import annotations

from tokengate.storage.sqlite.settings import SQLiteSettings
from tokengate.storage.sqlite.store import SQLiteStore

__all__ = ["SQLiteSettings", "SQLiteStore"]
