"""PostgreSQL backend: several server replicas sharing one database.

Tables live in the database named by the URL, in the first schema of its `search_path`; to use
a dedicated (existing) schema add `?options=-csearch_path%3Dtokengate` to the URL. Connections
come from a small pool; every session gets a `statement_timeout` (unless the URL's `options`
sets one), libpq `connect_timeout` and TCP keepalives, so no call waits forever.

A revocation-type write appends its event and calls `pg_notify('tokengate_events', position)`
in the same transaction. Event writers serialize on an advisory lock held until commit: a
sequence hands out positions in insert order, not commit order, and without the lock a reader
could see position 6 before 5 commits and, resuming after 6, miss 5 forever.

The hot paths, `get_token` and `add_token`, are coalesced: calls made while a batch is on the
wire share the next round trip (`= ANY(array)` lookups, one multi-row INSERT that commits them
all), which multiplies throughput on one event loop. A write's caller resumes after commit.

Only hashes are stored (RFC 6749 §10.3, RFC 9700 §4.9.3).
"""

from __future__ import annotations

from typing import Any, TypeVar

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from tokengate.core.models import AccessToken, Client, EventKind, RevocationEvent
from tokengate.storage.base import StaleClient
from tokengate.storage.batching import Coalescer
from tokengate.storage.pg_listen import ChangeListener
from tokengate.storage.rows import client_from_row, client_row, token_from_row, token_row

SCHEMA_VERSION = 1
NOTIFY_CHANNEL = "tokengate_events"
PURGE_CHUNK = 5000  # rows per purge statement, so a big purge never holds locks for long

_SCHEMA_LOCK = int.from_bytes(b"tgschema", "big")  # pg_advisory_xact_lock keys (bigint)
_EVENTS_LOCK = int.from_bytes(b"tgevents", "big")

_Conn = psycopg.AsyncConnection[TupleRow]
_In = TypeVar("_In")
_Out = TypeVar("_Out")

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS clients (
        client_id TEXT PRIMARY KEY, name TEXT NOT NULL, secret_hash TEXT NOT NULL,
        scopes TEXT NOT NULL, audiences TEXT NOT NULL, can_introspect BOOLEAN NOT NULL,
        token_ttl BIGINT NOT NULL, disabled BOOLEAN NOT NULL DEFAULT FALSE,
        created_at BIGINT NOT NULL, secret_rotated_at BIGINT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS tokens (
        token_hash TEXT PRIMARY KEY, jti TEXT NOT NULL, client_id TEXT NOT NULL,
        scopes TEXT NOT NULL, audiences TEXT NOT NULL, issued_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL, revoked_at BIGINT
    )""",
    "CREATE INDEX IF NOT EXISTS tokens_client_id ON tokens (client_id)",
    "CREATE INDEX IF NOT EXISTS tokens_expires_at ON tokens (expires_at)",
    """CREATE TABLE IF NOT EXISTS events (
        position BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, kind TEXT NOT NULL,
        client_id TEXT NOT NULL, token_hash TEXT, occurred_at BIGINT NOT NULL
    )""",
)
_META = "CREATE TABLE IF NOT EXISTS tokengate_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
_META_VERSION = "SELECT value FROM tokengate_meta WHERE key = 'schema_version'"
_META_SET_VERSION = (
    "INSERT INTO tokengate_meta (key, value) VALUES ('schema_version', %s)"
    " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
)

_CLIENTS_SELECT = (
    "SELECT client_id, name, secret_hash, scopes, audiences, can_introspect, token_ttl,"
    " disabled, created_at, secret_rotated_at FROM clients"
)
_CLIENTS_GET = _CLIENTS_SELECT + " WHERE client_id = %s"
_CLIENTS_LIST = _CLIENTS_SELECT + " ORDER BY created_at, client_id"
_CLIENTS_INSERT = (
    "INSERT INTO clients (client_id, name, secret_hash, scopes, audiences, can_introspect,"
    " token_ttl, disabled, created_at, secret_rotated_at)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
_CLIENTS_LOCK = (
    "SELECT client_id, secret_hash FROM clients WHERE client_id = ANY(%s) AND NOT disabled"
    " ORDER BY client_id FOR SHARE"
)
_TOKENS_SELECT = (
    "SELECT token_hash, jti, client_id, scopes, audiences, issued_at, expires_at, revoked_at"
    " FROM tokens WHERE token_hash"
)
# A batch of one takes the scalar form: binding an array costs ~100 µs more per round trip.
_TOKENS_GET_ONE = _TOKENS_SELECT + " = %s"
_TOKENS_GET_MANY = _TOKENS_SELECT + " = ANY(%s)"
# ON CONFLICT covers token_hash (jti: 128 random bits, unindexed); skipped rows are not returned.
_TOKENS_INSERT_ONE = (
    "INSERT INTO tokens (token_hash, jti, client_id, scopes, audiences, issued_at, expires_at,"
    " revoked_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
    " ON CONFLICT DO NOTHING RETURNING token_hash"
)
_TOKENS_INSERT_MANY = (
    "INSERT INTO tokens (token_hash, jti, client_id, scopes, audiences, issued_at, expires_at,"
    " revoked_at) SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[],"
    " %s::text[], %s::bigint[], %s::bigint[], %s::bigint[])"
    " ON CONFLICT DO NOTHING RETURNING token_hash"
)
_TOKENS_PURGE = (
    "DELETE FROM tokens WHERE token_hash IN"
    " (SELECT token_hash FROM tokens WHERE expires_at <= %s LIMIT %s)"
)
_EVENTS_INSERT = (
    "WITH e AS (INSERT INTO events (kind, client_id, token_hash, occurred_at)"
    " VALUES (%s, %s, %s, %s) RETURNING position)"
    " SELECT pg_notify(%s, position::text) FROM e"
)
_EVENTS_AFTER = (
    "SELECT position, kind, client_id, token_hash, occurred_at FROM events"
    " WHERE position > %s ORDER BY position LIMIT %s"
)


class PostgresStore:
    """A `Store` in PostgreSQL (`postgresql://` or `postgres://` URL), over a connection pool."""

    def __init__(
        self,
        url: str,
        *,
        min_size: int = 2,
        max_size: int = 10,
        connect_timeout: float = 5.0,
        statement_timeout: float = 10.0,
        pool_timeout: float = 10.0,
        prepare_threshold: int | None = 0,
    ) -> None:
        """`prepare_threshold=None` disables server-side prepared statements (PgBouncer)."""
        self._conninfo = _conninfo(url, connect_timeout, statement_timeout)
        self._connect_timeout = connect_timeout
        self._pool_args: dict[str, Any] = {
            "min_size": min_size,
            "max_size": max_size,
            "timeout": pool_timeout,
            "kwargs": {"autocommit": True, "prepare_threshold": prepare_threshold},
        }
        self._pool_or_none: AsyncConnectionPool[_Conn] | None = None
        self._token_reads = Coalescer(self._get_tokens)
        self._token_writes = Coalescer(self._add_tokens)
        self._listener = ChangeListener(self._conninfo, NOTIFY_CHANNEL, connect_timeout)

    async def open(self) -> None:
        """Fill the pool and create the schema under an advisory lock (safe to race)."""
        pool: AsyncConnectionPool[_Conn] = AsyncConnectionPool(
            self._conninfo, open=False, name="tokengate", **self._pool_args
        )
        try:
            await pool.open(wait=True, timeout=self._connect_timeout + 1.0)
            async with pool.connection() as conn, conn.transaction():
                await _create_schema(conn)
        except BaseException:
            await pool.close()
            raise
        self._pool_or_none = pool

    async def close(self) -> None:
        """Finish queued lookups and inserts, then close the pool."""
        await self._token_writes.drain()
        await self._token_reads.drain()
        await self._listener.close()
        pool, self._pool_or_none = self._pool_or_none, None
        if pool is not None:
            await pool.close()

    async def wait_for_change(self, timeout: float) -> None:
        """Return when another transaction appended an event (LISTEN), or after `timeout`."""
        await self._listener.wait(timeout)

    @property
    def _pool(self) -> AsyncConnectionPool[_Conn]:
        if self._pool_or_none is None:
            raise RuntimeError("PostgresStore is not open")
        return self._pool_or_none

    async def _one(self, sql: str, params: tuple[Any, ...]) -> TupleRow | None:
        async with self._pool.connection() as conn:
            return await (await conn.execute(sql, params)).fetchone()

    async def _all(self, sql: str, params: tuple[Any, ...] = ()) -> list[TupleRow]:
        async with self._pool.connection() as conn:
            return await (await conn.execute(sql, params)).fetchall()

    # -- clients (RFC 6749 §2) ---------------------------------------------------------------

    async def add_client(self, client: Client) -> None:
        try:
            async with self._pool.connection() as conn:
                await conn.execute(_CLIENTS_INSERT, client_row(client))
        except psycopg.errors.UniqueViolation as exc:
            raise ValueError(f"client {client.client_id} already stored") from exc

    async def get_client(self, client_id: str) -> Client | None:
        row = await self._one(_CLIENTS_GET, (client_id,))
        return client_from_row(row) if row is not None else None

    async def list_clients(self) -> list[Client]:
        return [client_from_row(row) for row in await self._all(_CLIENTS_LIST)]

    async def set_client_secret(self, client_id: str, secret_hash: str, at: int) -> bool:
        sql = "UPDATE clients SET secret_hash = %s, secret_rotated_at = %s WHERE client_id = %s"
        async with self._pool.connection() as conn, conn.transaction():
            if (await conn.execute(sql, (secret_hash, at, client_id))).rowcount == 0:
                return False
            await _emit(conn, EventKind.SECRET_ROTATED, client_id, at)
            return True

    async def disable_client(self, client_id: str, at: int) -> bool:
        sql = "UPDATE clients SET disabled = TRUE WHERE client_id = %s"
        revoke = "UPDATE tokens SET revoked_at = %s WHERE client_id = %s AND revoked_at IS NULL"
        async with self._pool.connection() as conn, conn.transaction():
            if (await conn.execute(sql, (client_id,))).rowcount == 0:
                return False
            await conn.execute(revoke, (at, client_id))
            await _emit(conn, EventKind.CLIENT_DISABLED, client_id, at)
            return True

    async def delete_client(self, client_id: str, at: int) -> bool:
        async with self._pool.connection() as conn, conn.transaction():
            sql = "DELETE FROM clients WHERE client_id = %s"
            if (await conn.execute(sql, (client_id,))).rowcount == 0:
                return False
            await conn.execute("DELETE FROM tokens WHERE client_id = %s", (client_id,))
            await _emit(conn, EventKind.CLIENT_DELETED, client_id, at)
            return True

    # -- tokens (RFC 7662, RFC 7009) ------------------------------------------------------------

    async def add_token(self, token: AccessToken, *, secret_hash: str | None = None) -> None:
        await self._token_writes.submit((token, secret_hash))

    async def get_token(self, token_hash: str) -> AccessToken | None:
        return await self._token_reads.submit(token_hash)

    async def _add_tokens(
        self, items: list[tuple[AccessToken, str | None]]
    ) -> list[Exception | None]:
        """One transaction for the batch: lock and check the issuing clients, one INSERT.

        `FOR SHARE` on the client rows orders each batch against a concurrent disable, delete
        or rotation: either that change commits first (and the token is refused) or it waits
        for this commit (and a disable then revokes the new token too).
        """
        async with self._pool.connection() as conn, conn.transaction():
            current = await _current_secrets(conn, items)
            stale = {id(t) for t, h in items if h is not None and current.get(t.client_id) != h}
            fresh = _deduplicated([t for t, _ in items if id(t) not in stale])
            stored = await _insert_tokens(conn, fresh) if fresh else set()
        outcomes: list[Exception | None] = []
        for token, _ in items:
            if id(token) in stale:
                outcomes.append(StaleClient(token.client_id))
            elif token.token_hash in stored:
                stored.discard(token.token_hash)  # a second token with the same hash is a duplicate
                outcomes.append(None)
            else:
                outcomes.append(ValueError(f"token {token.jti} already stored"))
        return outcomes

    async def _get_tokens(self, hashes: list[str]) -> list[AccessToken | Exception | None]:
        """One `= ANY` lookup for the batch."""
        sql, param = (
            (_TOKENS_GET_ONE, hashes[0]) if len(hashes) == 1 else (_TOKENS_GET_MANY, hashes)
        )
        async with self._pool.connection() as conn:
            rows = await (await conn.execute(sql, (param,))).fetchall()
        found = {row[0]: token_from_row(row) for row in rows}
        return [found.get(h) for h in hashes]

    async def revoke_token(self, token_hash: str, at: int) -> bool:
        sql = (
            "UPDATE tokens SET revoked_at = %s WHERE token_hash = %s AND revoked_at IS NULL"
            " RETURNING client_id"
        )
        async with self._pool.connection() as conn, conn.transaction():
            row = await (await conn.execute(sql, (at, token_hash))).fetchone()
            if row is None:
                return False
            await _emit(conn, EventKind.TOKEN_REVOKED, row[0], at, token_hash)
            return True

    async def purge_expired(self, before: int) -> int:
        total = 0
        async with self._pool.connection() as conn:
            while (n := (await conn.execute(_TOKENS_PURGE, (before, PURGE_CHUNK))).rowcount) > 0:
                total += n
        return total

    # -- events ------------------------------------------------------------------------------

    async def events_after(self, position: int, limit: int = 1000) -> list[RevocationEvent]:
        rows = await self._all(_EVENTS_AFTER, (position, limit))
        return [RevocationEvent(p, EventKind(k), c, h, at) for p, k, c, h, at in rows]

    async def last_position(self) -> int:
        row = await self._one("SELECT COALESCE(MAX(position), 0) FROM events", ())
        return int(row[0]) if row is not None else 0


async def _current_secrets(
    conn: _Conn, items: list[tuple[AccessToken, str | None]]
) -> dict[str, str]:
    """client_id → secret hash of the enabled clients the guarded tokens name, row-locked."""
    wanted = sorted({t.client_id for t, h in items if h is not None})
    if not wanted:
        return {}
    rows = await (await conn.execute(_CLIENTS_LOCK, (wanted,))).fetchall()
    return dict(rows)


def _deduplicated(tokens: list[AccessToken]) -> list[AccessToken]:
    """Drop repeats of a hash within one batch (the first one wins)."""
    hashes: set[str] = set()
    fresh: list[AccessToken] = []
    for t in tokens:
        if t.token_hash not in hashes:
            fresh.append(t)
        hashes.add(t.token_hash)
    return fresh


async def _insert_tokens(conn: _Conn, fresh: list[AccessToken]) -> set[str]:
    """Insert; returns the hashes actually stored (ON CONFLICT skips duplicates)."""
    if len(fresh) == 1:
        sql, params = _TOKENS_INSERT_ONE, list(token_row(fresh[0]))
    else:
        sql = _TOKENS_INSERT_MANY
        params = [list(c) for c in zip(*map(token_row, fresh), strict=True)]
    return {row[0] for row in await (await conn.execute(sql, params)).fetchall()}


async def _emit(
    conn: _Conn, kind: EventKind, client_id: str, at: int, token_hash: str | None = None
) -> None:
    """Append an event and notify listeners; the lock is held until commit (module doc)."""
    await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_EVENTS_LOCK,))
    await conn.execute(_EVENTS_INSERT, (kind.value, client_id, token_hash, at, NOTIFY_CHANNEL))


async def _create_schema(conn: _Conn) -> None:
    """Create missing tables; concurrent starts queue on the advisory lock."""
    await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
    await conn.execute(_META, prepare=False)
    row = await (await conn.execute(_META_VERSION)).fetchone()
    version = int(row[0]) if row is not None else 0
    if version > SCHEMA_VERSION:
        raise RuntimeError(
            f"database schema v{version} is newer than this tokengate (v{SCHEMA_VERSION})"
        )
    if version < SCHEMA_VERSION:
        for statement in _SCHEMA:
            await conn.execute(statement, prepare=False)
        await conn.execute(_META_SET_VERSION, (str(SCHEMA_VERSION),))


def _conninfo(url: str, connect_timeout: float, statement_timeout: float) -> str:
    """Add timeouts and keepalives to the URL's parameters, keeping any it already sets."""
    if not url.startswith(("postgresql://", "postgres://")):
        raise ValueError("PostgreSQL URL must start with postgresql:// or postgres://")
    params: dict[str, Any] = conninfo_to_dict(url)
    defaults = {
        "connect_timeout": max(1, round(connect_timeout)),
        "application_name": "tokengate",
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 10,
        "keepalives_count": 3,
    }
    for key, value in defaults.items():
        params.setdefault(key, value)
    options = str(params.get("options", ""))
    session = {
        "statement_timeout": round(statement_timeout * 1000),
        "idle_in_transaction_session_timeout": round(statement_timeout * 3000),
    }
    extra = [f"-c {name}={value}" for name, value in session.items() if name not in options]
    params["options"] = " ".join([options, *extra]).strip()
    return make_conninfo(**params)
