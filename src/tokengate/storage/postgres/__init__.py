"""PostgreSQL backend: `PostgresStore`, several replicas sharing one database; see `store`."""

from __future__ import annotations

from tokengate.storage.postgres.store import PostgresStore

__all__ = ["PostgresStore"]
