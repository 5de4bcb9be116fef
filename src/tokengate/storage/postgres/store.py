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

A lost or refused connection, a `statement_timeout` or a pool timeout is raised as
`StorageUnavailable`. Only hashes are stored (RFC 6749 §10.3, RFC 9700 §4.9.3).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Iterator
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from tokengate.core.audit import AuditEntry
from tokengate.core.models import AccessToken, AdminToken, Client, EventKind, RevocationEvent
from tokengate.core.signing_keys import SigningKey
from tokengate.storage.base import (
    DEFAULT_PACE,
    ClientActivity,
    PurgeInProgress,
    PurgePace,
    StaleClient,
    StorageUnavailable,
)
from tokengate.storage.group_commit import GroupCommit
from tokengate.storage.postgres import sql as q
from tokengate.storage.postgres.listen import ChangeListener
from tokengate.storage.postgres.migrate import migrate
from tokengate.storage.purge import paced
from tokengate.storage.rows import (
    NO_CLIENT,
    NO_TOKEN,
    admin_token_from_row,
    admin_token_row,
    audit_from_row,
    audit_row,
    client_from_row,
    client_row,
    client_update_params,
    event_from_row,
    found_client,
    found_token,
    signing_key_from_row,
    signing_key_row,
    token_from_row,
    token_row,
)
from tokengate.storage.schema import CLIENT_SCOPES, digest_key, scopes_union

# Outages of this driver, raised as StorageUnavailable (a PoolTimeout is an OperationalError).
_OUTAGES = (psycopg.OperationalError, ConnectionError, TimeoutError)

PURGE_CHUNK = 5000  # assertion keys per purge statement
_EVENTS_LOCK = int.from_bytes(b"tgevents", "big")  # pg_advisory_xact_lock key (bigint)
_PURGE_LOCK = int.from_bytes(b"tgpurge_", "big")  # pg_try_advisory_lock key: one purger
_KEYS_LOCK = int.from_bytes(b"tgkeys__", "big")  # pg_advisory_xact_lock key: key-set writes

_Conn = psycopg.AsyncConnection[TupleRow]


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
        self._token_reads = GroupCommit(self._get_tokens)
        self._token_writes = GroupCommit(self._add_tokens)
        self._listener = ChangeListener(self._conninfo, q.NOTIFY_CHANNEL, connect_timeout)

    async def open(self) -> None:
        """Fill the pool and migrate the schema under an advisory lock (safe to race)."""
        pool: AsyncConnectionPool[_Conn] = AsyncConnectionPool(
            self._conninfo, open=False, name="tokengate", **self._pool_args
        )
        try:
            with _outages_raised_as_unavailable():
                await pool.open(wait=True, timeout=self._connect_timeout + 1.0)
                async with pool.connection() as conn, conn.transaction():
                    await migrate(conn)
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

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[_Conn]:
        """A pooled connection; this driver's outages leave as `StorageUnavailable`."""
        if self._pool_or_none is None:
            raise RuntimeError("PostgresStore is not open")
        with _outages_raised_as_unavailable():
            async with self._pool_or_none.connection() as conn:
                yield conn

    async def _one(self, sql: str, params: tuple[Any, ...]) -> TupleRow | None:
        async with self._connection() as conn:
            return await (await conn.execute(sql, params)).fetchone()

    async def _all(self, sql: str, params: tuple[Any, ...] = ()) -> list[TupleRow]:
        async with self._connection() as conn:
            return await (await conn.execute(sql, params)).fetchall()

    # -- clients (RFC 6749 §2) ---------------------------------------------------------------

    async def add_client(self, client: Client, *, audit: AuditEntry | None = None) -> None:
        try:
            async with self._connection() as conn, conn.transaction():
                await conn.execute(q.CLIENTS_INSERT, client_row(client))
                await _audit(conn, audit)
        except psycopg.errors.UniqueViolation as exc:
            raise ValueError(f"client {client.client_id} already stored") from exc

    async def get_client(self, client_id: str) -> Client | None:
        row = await self._one(q.CLIENTS_GET, (client_id,))
        return found_client(NO_CLIENT if row is None else (1, *row))

    async def list_clients(self) -> list[Client]:
        return [client_from_row(row) for row in await self._all(q.CLIENTS_LIST)]

    async def client_scopes(self) -> frozenset[str]:
        return scopes_union(row[0] for row in await self._all(CLIENT_SCOPES))

    async def update_client(
        self, client: Client, at: int, *, audit: AuditEntry | None = None
    ) -> bool:
        if client.disabled:
            raise ValueError("disable a client with disable_client")
        async with self._connection() as conn, conn.transaction():
            params = client_update_params(client)
            if (await conn.execute(q.CLIENTS_UPDATE, params)).rowcount == 0:
                return False
            await _emit(conn, EventKind.CLIENT_UPDATED, client.client_id, at)
            await _audit(conn, audit)
            return True

    async def set_client_secret(
        self,
        client_id: str,
        secret_hash: str,
        at: int,
        *,
        grace: int = 0,
        audit: AuditEntry | None = None,
    ) -> bool:
        params = (grace, grace, at + grace, secret_hash, at, client_id)
        async with self._connection() as conn, conn.transaction():
            if (await conn.execute(q.SECRET_SET, params)).rowcount == 0:
                return False
            await _emit(conn, EventKind.SECRET_ROTATED, client_id, at)
            await _audit(conn, audit)
            return True

    async def disable_client(
        self, client_id: str, at: int, *, audit: AuditEntry | None = None
    ) -> bool:
        sql = "UPDATE clients SET disabled = TRUE WHERE client_id = %s"
        revoke = "UPDATE tokens SET revoked_at = %s WHERE client_id = %s AND revoked_at IS NULL"
        async with self._connection() as conn, conn.transaction():
            if (await conn.execute(sql, (client_id,))).rowcount == 0:
                return False
            await conn.execute(revoke, (at, client_id))
            await _emit(conn, EventKind.CLIENT_DISABLED, client_id, at)
            await _audit(conn, audit)
            return True

    async def delete_client(
        self, client_id: str, at: int, *, audit: AuditEntry | None = None
    ) -> bool:
        async with self._connection() as conn, conn.transaction():
            sql = "DELETE FROM clients WHERE client_id = %s"
            if (await conn.execute(sql, (client_id,))).rowcount == 0:
                return False
            await conn.execute("DELETE FROM tokens WHERE client_id = %s", (client_id,))
            await _emit(conn, EventKind.CLIENT_DELETED, client_id, at)
            await _audit(conn, audit)
            return True

    async def client_activity(self, since: int) -> dict[str, ClientActivity]:
        rows = await self._all(q.ACTIVITY, (since,))
        return {row[0]: ClientActivity(int(row[1]), row[2]) for row in rows}

    # -- admin tokens and the audit log ---------------------------------------------------------

    async def add_admin_token(self, token: AdminToken, *, audit: AuditEntry | None = None) -> None:
        try:
            async with self._connection() as conn, conn.transaction():
                await conn.execute(q.ADMIN_TOKENS_INSERT, admin_token_row(token))
                await _audit(conn, audit)
        except psycopg.errors.UniqueViolation as exc:
            raise ValueError(f"admin token {token.token_id} already stored") from exc

    async def get_admin_token(self, token_hash: str) -> AdminToken | None:
        row = await self._one(q.ADMIN_TOKENS_GET, (token_hash,))
        return admin_token_from_row(row) if row is not None else None

    async def list_admin_tokens(self) -> list[AdminToken]:
        return [admin_token_from_row(row) for row in await self._all(q.ADMIN_TOKENS_LIST, ())]

    async def revoke_admin_token(
        self, token_id: str, at: int, *, audit: AuditEntry | None = None
    ) -> bool:
        async with self._connection() as conn, conn.transaction():
            if (await conn.execute(q.ADMIN_TOKENS_REVOKE, (at, token_id))).rowcount == 0:
                return False
            await _audit(conn, audit)
            return True

    async def append_audit(self, entry: AuditEntry) -> None:
        async with self._connection() as conn:
            await _audit(conn, entry)

    async def audit_after(
        self,
        position: int = 0,
        *,
        since: int = 0,
        client_id: str | None = None,
        limit: int = 1000,
    ) -> list[AuditEntry]:
        params = (position, since, client_id, client_id, limit)
        return [audit_from_row(row) for row in await self._all(q.AUDIT_AFTER, params)]

    # -- tokens (RFC 7662, RFC 7009) ------------------------------------------------------------

    async def add_token(self, token: AccessToken, *, secret_hash: str | None = None) -> None:
        await self._token_writes.submit((token, secret_hash))

    async def get_token(self, token_hash: str) -> AccessToken | None:
        key = digest_key(token_hash)
        return await self._token_reads.submit(key) if key is not None else None

    async def _add_tokens(
        self, items: list[tuple[AccessToken, str | None]]
    ) -> list[Exception | None]:
        """One transaction for the batch: lock and check the issuing clients, one INSERT.

        `FOR SHARE` on the client rows orders each batch against a concurrent disable, delete
        or rotation: either that change commits first (and the token is refused) or it waits
        for this commit (and a disable then revokes the new token too).
        """
        async with self._connection() as conn, conn.transaction():
            current = await _current_secrets(conn, items)
            stale = {id(t) for t, h in items if h is not None and not _holds(current, t, h)}
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

    async def _get_tokens(self, hashes: list[bytes]) -> list[AccessToken | Exception | None]:
        """One `= ANY` lookup for the batch."""
        sql, param = (
            (q.TOKENS_GET_ONE, hashes[0]) if len(hashes) == 1 else (q.TOKENS_GET_MANY, hashes)
        )
        async with self._connection() as conn:
            rows = await (await conn.execute(sql, (param,))).fetchall()
        found = {row[0]: token_from_row(row) for row in rows}
        return [found[h] if h in found else found_token(NO_TOKEN) for h in hashes]

    async def revoke_token(
        self, token_hash: str, at: int, *, audit: AuditEntry | None = None
    ) -> bool:
        sql = (
            "UPDATE tokens SET revoked_at = %s WHERE token_hash = %s AND revoked_at IS NULL"
            " RETURNING client_id"
        )
        key = digest_key(token_hash)
        if key is None:
            return False
        async with self._connection() as conn, conn.transaction():
            row = await (await conn.execute(sql, (at, key))).fetchone()
            if row is None:
                return False
            await _emit(conn, EventKind.TOKEN_REVOKED, row[0], at, token_hash)
            if audit is not None:
                await _audit(conn, dataclasses.replace(audit, client_id=row[0]))
            return True

    async def purge_expired(self, before: int, *, pace: PurgePace = DEFAULT_PACE) -> int:
        """Under a session advisory lock held on one pooled connection for the whole run: one
        purger across replicas (a replica that dies mid-purge drops it with its connection)."""
        async with self._connection() as conn:
            row = await (await conn.execute(q.PURGE_TRY_LOCK, (_PURGE_LOCK,))).fetchone()
            if row is None or not row[0]:
                raise PurgeInProgress("another replica is purging expired tokens")
            try:

                async def batch(cursor: int) -> tuple[int, int]:
                    params = (cursor, before, pace.batch)
                    found = await (await conn.execute(q.TOKENS_PURGE, params)).fetchone()
                    assert found is not None  # an aggregate always returns its row
                    return int(found[0]), cursor if found[1] is None else int(found[1])

                return await paced(batch, pace)
            finally:
                await _unlock_or_discard(conn)

    # -- client assertions (RFC 7523 §3) --------------------------------------------------------

    async def use_assertion(self, key_hash: str, expires_at: int) -> bool:
        # One autocommitted statement: of two replicas racing with one jti, the primary key
        # lets exactly one insert.
        async with self._connection() as conn:
            return (await conn.execute(q.ASSERTION_USE, (key_hash, expires_at))).rowcount == 1

    async def purge_assertions(self, before: int) -> int:
        total = 0
        async with self._connection() as conn:
            while (
                n := (await conn.execute(q.ASSERTIONS_PURGE, (before, PURGE_CHUNK))).rowcount
            ) > 0:
                total += n
        return total

    # -- shared secrets (the DPoP nonce key) ----------------------------------------------------

    async def shared_secret(self, name: str, candidate: str, at: int) -> str:
        # A racing insert committed after this statement's snapshot: the conflict skips ours and
        # the snapshot cannot see theirs. The next statement's snapshot does.
        for _ in range(3):
            row = await self._one(q.SECRET_SHARED, (name, candidate, at, name))
            if row is not None:
                return str(row[0])
        raise StorageUnavailable(f"shared secret {name} neither stored nor found")

    # -- signing keys (RFC 9701 §5) -------------------------------------------------------------

    async def signing_keys(self) -> list[SigningKey]:
        return [signing_key_from_row(row) for row in await self._all(q.SIGNING_KEYS_LIST)]

    async def add_first_signing_key(self, key: SigningKey) -> bool:
        # Read committed lets two replicas both see "none": the lock orders them.
        async with self._connection() as conn, conn.transaction():
            await conn.execute(q.ADVISORY_XACT_LOCK, (_KEYS_LOCK,))
            if await (await conn.execute(q.SIGNING_KEY_UNRETIRED)).fetchone() is not None:
                return False
            await conn.execute(q.SIGNING_KEY_INSERT, signing_key_row(key))
            return True

    async def rotate_signing_key(
        self, key: SigningKey, retire_at: int, *, audit: AuditEntry | None = None
    ) -> int:
        try:
            async with self._connection() as conn, conn.transaction():
                await conn.execute(q.ADVISORY_XACT_LOCK, (_KEYS_LOCK,))
                await conn.execute(q.SIGNING_KEYS_DROP, (key.created_at,))
                retired = (await conn.execute(q.SIGNING_KEYS_RETIRE, (retire_at,))).rowcount
                await conn.execute(q.SIGNING_KEY_INSERT, signing_key_row(key))
                await _audit(conn, audit)
        except psycopg.errors.UniqueViolation as exc:
            raise ValueError(f"signing key {key.kid} already stored") from exc
        return retired

    # -- events ------------------------------------------------------------------------------

    async def events_after(self, position: int, limit: int = 1000) -> list[RevocationEvent]:
        return [event_from_row(row) for row in await self._all(q.EVENTS_AFTER, (position, limit))]

    async def last_position(self) -> int:
        row = await self._one(q.LAST_POSITION, ())
        return int(row[0]) if row is not None else 0


_Secrets = tuple[str, str | None, int | None]  # current hash, previous hash, previous's end


async def _current_secrets(
    conn: _Conn, items: list[tuple[AccessToken, str | None]]
) -> dict[str, _Secrets]:
    """client_id → secrets of the enabled clients the guarded tokens name, row-locked."""
    wanted = sorted({t.client_id for t, h in items if h is not None})
    if not wanted:
        return {}
    rows = await (await conn.execute(q.CLIENTS_LOCK, (wanted,))).fetchall()
    return {row[0]: (row[1], row[2], row[3]) for row in rows}


def _holds(current: dict[str, _Secrets], token: AccessToken, secret_hash: str) -> bool:
    """The secret is the client's current one, or its previous one within the grace."""
    secrets = current.get(token.client_id)
    if secrets is None:
        return False
    now, previous, until = secrets
    return secret_hash == now or (
        secret_hash == previous and until is not None and token.issued_at < until
    )


async def _unlock_or_discard(conn: _Conn) -> None:
    """Release the purge lock; a connection that may still hold it is closed, never pooled."""
    with contextlib.suppress(psycopg.Error, OSError):
        row = await (await conn.execute(q.PURGE_UNLOCK, (_PURGE_LOCK,))).fetchone()
        if row is not None and row[0]:
            return
    await conn.close()  # the pool drops a closed connection; the server drops its locks


async def _audit(conn: _Conn, entry: AuditEntry | None) -> None:
    """Append an audit entry in the connection's current transaction."""
    if entry is not None:
        await conn.execute(q.AUDIT_INSERT, audit_row(entry))


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
        sql, params = q.TOKENS_INSERT_ONE, list(token_row(fresh[0]))
    else:
        sql = q.TOKENS_INSERT_MANY
        params = [list(c) for c in zip(*map(token_row, fresh), strict=True)]
    return {bytes(row[0]).hex() for row in await (await conn.execute(sql, params)).fetchall()}


async def _emit(
    conn: _Conn, kind: EventKind, client_id: str, at: int, token_hash: str | None = None
) -> None:
    """Append an event and notify listeners; the lock is held until commit (module doc)."""
    await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_EVENTS_LOCK,))
    await conn.execute(q.EVENTS_INSERT, (kind.value, client_id, token_hash, at, q.NOTIFY_CHANNEL))


@contextlib.contextmanager
def _outages_raised_as_unavailable() -> Iterator[None]:
    try:
        yield
    except _OUTAGES as exc:
        raise StorageUnavailable(f"PostgreSQL: {type(exc).__name__}: {exc}") from exc


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
