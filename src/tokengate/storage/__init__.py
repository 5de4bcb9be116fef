"""Storage backends behind one Protocol: memory, SQLite (default), PostgreSQL."""

from __future__ import annotations

from tokengate.storage.base import (
    ClientStore,
    EventStore,
    StaleClient,
    StorageUnavailable,
    Store,
    TokenStore,
)
from tokengate.storage.factory import open_store

__all__ = [
    "ClientStore",
    "EventStore",
    "StaleClient",
    "StorageUnavailable",
    "Store",
    "TokenStore",
    "open_store",
]
