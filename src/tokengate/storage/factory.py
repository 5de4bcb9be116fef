"""Pick a backend from a database URL: `memory://`, `sqlite:///path`, `postgresql://...`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tokengate.storage.base import Store

if TYPE_CHECKING:
    from tokengate.storage.sqlite.settings import SQLiteSettings

DEFAULT_DATABASE_URL = "sqlite:///tokengate.db"


def open_store(url: str, *, sqlite: SQLiteSettings | None = None) -> Store:
    """Build (not yet open) the backend named by `url`; raises `ValueError` for unknown schemes.
    `sqlite` applies to a SQLite URL only."""
    if url in ("memory://", "memory:"):
        from tokengate.storage.memory import MemoryStore

        return MemoryStore()
    if url.startswith("sqlite:"):
        from tokengate.storage.sqlite import SQLiteStore

        return SQLiteStore(sqlite_path(url), settings=sqlite)
    if url.startswith(("postgresql://", "postgres://")):
        from tokengate.storage.postgres import PostgresStore

        return PostgresStore(url)
    raise ValueError(f"unsupported database URL scheme: {url.split(':', 1)[0]!r}")


def sqlite_path(url: str) -> str:
    """`sqlite:///rel.db` → `rel.db`; `sqlite:////abs.db` → `/abs.db`; `sqlite://:memory:`."""
    rest = url[len("sqlite:") :]
    if rest.startswith("///"):
        return rest[3:]
    if rest.startswith("//"):
        return rest[2:]
    return rest
