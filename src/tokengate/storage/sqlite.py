"""SQLite backend, the default: one file shared by every server process and the CLI.

WAL lets readers run beside the single writer and `synchronous=FULL` makes each commit durable
before the method returns. Reads run on the event-loop thread over their own connection: a
primary-key SELECT costs ~10 µs, less than a hop to a thread and back. Writes use *group
commit*: every write queued while a transaction is being prepared joins it, so a burst of token
issuances shares one transaction and one fsync.

Group transactions are *built* on the loop thread and *committed* on a commit thread. Measured
under load, handing whole batches to a writer thread was ~1.5x slower: every SQLite call
releases and re-takes the GIL, and the writer thread then queues behind the busy event loop for
the GIL once per row. The COMMIT is one call that spends most of its time in fsync with the GIL
released, so it alone goes to a thread (measured: +17-25% token issuance under wrk): the loop
serves other requests meanwhile, and the writes they queue join the next batch. Two other
things would block the loop, and both are kept off it: waiting for another process's write
lock (the writer has no busy handler; a busy `BEGIN IMMEDIATE` is retried with `asyncio.sleep`
backoff up to `busy_timeout`) and WAL checkpoints (automatic checkpoints are off on the
writer; a background thread runs a PASSIVE checkpoint every second on its own connection).

Only hashes are stored (RFC 6749 §10.3, RFC 9700 §4.9.3); a revocation-type write appends its
event in the same transaction as the change it records.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from tokengate.core.models import AccessToken, Client, EventKind, RevocationEvent
from tokengate.storage.base import StaleClient
from tokengate.storage.rows import client_from_row, client_row, token_from_row, token_row

SCHEMA_VERSION = 1
PURGE_CHUNK = 5000  # rows per purge transaction, so a big purge never holds the lock long
MAX_BATCH = 1000  # writes per group transaction, so other processes wait for the lock briefly
CHECKPOINT_INTERVAL = 1.0  # seconds between background WAL checkpoints

_T = TypeVar("_T")
_Op = Callable[[sqlite3.Connection], Any]
_Outcome = tuple[bool, Any]  # (succeeded, result or exception)

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS clients (
        client_id TEXT PRIMARY KEY, name TEXT NOT NULL, secret_hash TEXT NOT NULL,
        scopes TEXT NOT NULL, audiences TEXT NOT NULL, can_introspect INTEGER NOT NULL,
        token_ttl INTEGER NOT NULL, disabled INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL, secret_rotated_at INTEGER NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS tokens (
        token_hash TEXT PRIMARY KEY, jti TEXT NOT NULL, client_id TEXT NOT NULL,
        scopes TEXT NOT NULL, audiences TEXT NOT NULL, issued_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL, revoked_at INTEGER
    )""",  # a rowid table: inserts append and indexes hold rowids, ~2x faster than WITHOUT ROWID
    # No index on jti: 128 random bits need no uniqueness check, and every index on a random
    # key dirties one more page per insert (measured: 60 -> 35-44 us per row at 100k rows).
    "CREATE INDEX IF NOT EXISTS tokens_client_id ON tokens (client_id)",
    "CREATE INDEX IF NOT EXISTS tokens_expires_at ON tokens (expires_at)",
    """CREATE TABLE IF NOT EXISTS events (
        position INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,
        client_id TEXT NOT NULL, token_hash TEXT, occurred_at INTEGER NOT NULL
    )""",
)

_CLIENTS_SELECT = (
    "SELECT client_id, name, secret_hash, scopes, audiences, can_introspect, token_ttl,"
    " disabled, created_at, secret_rotated_at FROM clients"
)
_CLIENTS_GET = _CLIENTS_SELECT + " WHERE client_id = ?"
_CLIENTS_LIST = _CLIENTS_SELECT + " ORDER BY created_at, client_id"
_CLIENTS_INSERT = (
    "INSERT INTO clients (client_id, name, secret_hash, scopes, audiences, can_introspect,"
    " token_ttl, disabled, created_at, secret_rotated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_TOKENS_GET = (
    "SELECT token_hash, jti, client_id, scopes, audiences, issued_at, expires_at, revoked_at"
    " FROM tokens WHERE token_hash = ?"
)
_TOKENS_INSERT = (
    "INSERT INTO tokens (token_hash, jti, client_id, scopes, audiences, issued_at, expires_at,"
    " revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
# Issue only against the client's current state: one atomic statement (writes are serialized).
_TOKENS_INSERT_GUARDED = (
    "INSERT INTO tokens (token_hash, jti, client_id, scopes, audiences, issued_at, expires_at,"
    " revoked_at) SELECT ?, ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM clients"
    " WHERE client_id = ? AND disabled = 0 AND secret_hash = ?)"
)
_EVENTS_INSERT = "INSERT INTO events (kind, client_id, token_hash, occurred_at) VALUES (?, ?, ?, ?)"
_EVENTS_AFTER = (
    "SELECT position, kind, client_id, token_hash, occurred_at FROM events"
    " WHERE position > ? ORDER BY position LIMIT ?"
)
_TOKENS_PURGE = (
    "DELETE FROM tokens WHERE token_hash IN"
    " (SELECT token_hash FROM tokens WHERE expires_at <= ? LIMIT ?)"
)


class SQLiteStore:
    """A `Store` in one SQLite file; `:memory:` gives one private connection (tests, demos)."""

    def __init__(self, path: str, *, busy_timeout: float = 10.0) -> None:
        self._path = path
        self._busy_timeout = busy_timeout
        self._in_memory = path in ("", ":memory:")
        self._reader: sqlite3.Connection | None = None
        self._writer: sqlite3.Connection | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._pending: list[tuple[_Op, asyncio.Future[Any]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._checkpointer: asyncio.Task[None] | None = None
        self._committer: ThreadPoolExecutor | None = None

    async def open(self) -> None:
        """Connect, switch to WAL and create the schema (safe when several processes race)."""
        if self._in_memory:
            conn = _connect(self._path, self._busy_timeout)
            _create_schema(conn)
            self._reader = self._writer = conn
            return
        thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tokengate-sqlite")
        loop = asyncio.get_running_loop()
        try:
            self._writer = await loop.run_in_executor(
                thread, _open_writer, self._path, self._busy_timeout
            )
            self._reader = await loop.run_in_executor(
                thread, _open_reader, self._path, self._busy_timeout
            )
        except BaseException:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
            thread.shutdown(wait=False)
            raise
        self._thread = thread
        self._committer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tokengate-commit")
        self._checkpointer = loop.create_task(self._checkpoint_forever(thread))

    async def close(self) -> None:
        """Commit every queued write, then close both connections."""
        if self._checkpointer is not None:
            self._checkpointer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checkpointer
            self._checkpointer = None
        while self._flusher is not None or self._pending:
            if self._flusher is None:  # the last flusher was cancelled with writes queued
                self._flusher = asyncio.get_running_loop().create_task(self._flush())
            await self._flusher
        reader, writer, thread = self._reader, self._writer, self._thread
        self._reader = self._writer = self._thread = None
        if reader is not None and reader is not writer:
            reader.close()
        if writer is not None:
            # The last connection to close checkpoints the WAL into the main file.
            await asyncio.get_running_loop().run_in_executor(thread, writer.close)
        if thread is not None:
            thread.shutdown(wait=True)
        if self._committer is not None:
            self._committer.shutdown(wait=True)
            self._committer = None

    # -- reads: on the event-loop thread ---------------------------------------------------

    @property
    def _read(self) -> sqlite3.Connection:
        if self._reader is None:
            raise RuntimeError("SQLiteStore is not open")
        return self._reader

    async def get_client(self, client_id: str) -> Client | None:
        rows = self._read.execute(_CLIENTS_GET, (client_id,)).fetchall()
        return client_from_row(rows[0]) if rows else None

    async def list_clients(self) -> list[Client]:
        return [client_from_row(row) for row in self._read.execute(_CLIENTS_LIST).fetchall()]

    async def get_token(self, token_hash: str) -> AccessToken | None:
        # fetchall, not fetchone: it steps the statement to its end, which ends the read
        # transaction at once instead of when the cursor is collected (it would pin the WAL).
        rows = self._read.execute(_TOKENS_GET, (token_hash,)).fetchall()
        return token_from_row(rows[0]) if rows else None

    async def events_after(self, position: int, limit: int = 1000) -> list[RevocationEvent]:
        rows = self._read.execute(_EVENTS_AFTER, (position, limit)).fetchall()
        return [RevocationEvent(p, EventKind(k), c, h, at) for p, k, c, h, at in rows]

    async def last_position(self) -> int:
        rows = self._read.execute("SELECT COALESCE(MAX(position), 0) FROM events").fetchall()
        return int(rows[0][0])

    # -- writes: queued for the writer thread, group-committed --------------------------------

    async def add_client(self, client: Client) -> None:
        await self._write(
            functools.partial(
                _insert, _CLIENTS_INSERT, client_row(client), f"client {client.client_id}"
            )
        )

    async def set_client_secret(self, client_id: str, secret_hash: str, at: int) -> bool:
        return await self._write(functools.partial(_set_secret, client_id, secret_hash, at))

    async def disable_client(self, client_id: str, at: int) -> bool:
        return await self._write(functools.partial(_disable_client, client_id, at))

    async def delete_client(self, client_id: str, at: int) -> bool:
        return await self._write(functools.partial(_delete_client, client_id, at))

    async def add_token(self, token: AccessToken, *, secret_hash: str | None = None) -> None:
        row = token_row(token)
        if secret_hash is None:
            await self._write(functools.partial(_insert, _TOKENS_INSERT, row, f"token {token.jti}"))
        else:
            guarded = (*row, token.client_id, secret_hash)
            await self._write(functools.partial(_insert_guarded, guarded, token))

    async def revoke_token(self, token_hash: str, at: int) -> bool:
        return await self._write(functools.partial(_revoke_token, token_hash, at))

    async def purge_expired(self, before: int) -> int:
        total = 0
        while (n := await self._write(functools.partial(_purge_chunk, before))) > 0:
            total += n
        return total

    async def _write(self, op: Callable[[sqlite3.Connection], _T]) -> _T:
        """Queue `op`; it runs in the next group transaction and this returns once committed."""
        if self._writer is None:
            raise RuntimeError("SQLiteStore is not open")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_T] = loop.create_future()
        self._pending.append((op, future))
        if self._flusher is None:
            # A task starts on the next loop iteration: every write queued in this one joins.
            self._flusher = loop.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        try:
            while self._pending:
                # A caller cancelled while queued is dropped: its write never happens.
                batch = [item for item in self._pending[:MAX_BATCH] if not item[1].done()]
                del self._pending[:MAX_BATCH]
                if batch:
                    await self._commit(batch)
        finally:
            self._flusher = None

    async def _commit(self, batch: list[tuple[_Op, asyncio.Future[Any]]]) -> None:
        ops = [op for op, _ in batch]
        writer = self._writer
        assert writer is not None  # close() waits for the flusher before closing
        try:
            outcomes = await self._run_waiting_for_lock(writer, ops)
        except asyncio.CancelledError:
            for _, future in batch:
                future.cancel()
            raise
        except Exception as exc:  # the transaction failed: nothing in it was committed
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), (ok, value) in zip(batch, outcomes, strict=True):
            if future.done():
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

    async def _run_waiting_for_lock(
        self, conn: sqlite3.Connection, ops: Sequence[_Op]
    ) -> list[_Outcome]:
        """One group transaction; another process's write lock is waited for without blocking."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._busy_timeout
        delay = 0.0005
        while True:
            try:
                outcomes = _run_ops(conn, ops)
                break
            except sqlite3.OperationalError as exc:  # rolled back: safe to run again
                if not _is_busy(exc) or loop.time() > deadline:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)
        if self._committer is None:
            _commit_or_roll_back(conn)
            return outcomes
        done = loop.run_in_executor(self._committer, _commit_or_roll_back, conn)
        try:
            await asyncio.shield(done)
        except asyncio.CancelledError:
            await asyncio.wait([done])  # the connection is busy until the commit returns
            raise
        return outcomes

    async def _checkpoint_forever(self, thread: ThreadPoolExecutor) -> None:
        """Copy the WAL back into the database off the loop thread (PASSIVE: never blocks)."""
        loop = asyncio.get_running_loop()
        conn = await loop.run_in_executor(thread, _connect, self._path, self._busy_timeout)
        try:
            while True:
                await asyncio.sleep(CHECKPOINT_INTERVAL)
                try:
                    await loop.run_in_executor(thread, _checkpoint, conn)
                except sqlite3.Error:  # busy or I/O trouble: try again next interval
                    continue
        finally:
            await asyncio.shield(loop.run_in_executor(thread, conn.close))


# -- inside a group transaction -----------------------------------------------------------------


def _run_ops(conn: sqlite3.Connection, ops: Sequence[_Op]) -> list[_Outcome]:
    """Open a transaction and run `ops` in it (the caller commits). A duplicate (`ValueError`)
    fails only its own op: SQLite undoes just the failing statement, and each op that can
    raise it is a single INSERT."""
    outcomes: list[_Outcome] = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        for op in ops:
            try:
                outcomes.append((True, op(conn)))
            except (ValueError, StaleClient) as exc:
                outcomes.append((False, exc))
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return outcomes


def _commit_or_roll_back(conn: sqlite3.Connection) -> None:
    try:
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _insert_guarded(row: tuple[Any, ...], token: AccessToken, conn: sqlite3.Connection) -> None:
    try:
        inserted = conn.execute(_TOKENS_INSERT_GUARDED, row).rowcount
    except sqlite3.IntegrityError as exc:
        raise ValueError(f"token {token.jti} already stored") from exc
    if inserted == 0:
        raise StaleClient(token.client_id)


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    return exc.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _checkpoint(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


def _insert(sql: str, row: tuple[Any, ...], what: str, conn: sqlite3.Connection) -> None:
    try:
        conn.execute(sql, row)
    except sqlite3.IntegrityError as exc:
        raise ValueError(f"{what} already stored") from exc


def _emit(
    conn: sqlite3.Connection, kind: EventKind, client_id: str, at: int, token_hash: str | None
) -> None:
    conn.execute(_EVENTS_INSERT, (kind.value, client_id, token_hash, at))


def _set_secret(client_id: str, secret_hash: str, at: int, conn: sqlite3.Connection) -> bool:
    sql = "UPDATE clients SET secret_hash = ?, secret_rotated_at = ? WHERE client_id = ?"
    if conn.execute(sql, (secret_hash, at, client_id)).rowcount == 0:
        return False
    _emit(conn, EventKind.SECRET_ROTATED, client_id, at, None)
    return True


def _disable_client(client_id: str, at: int, conn: sqlite3.Connection) -> bool:
    sql = "UPDATE clients SET disabled = 1 WHERE client_id = ?"
    if conn.execute(sql, (client_id,)).rowcount == 0:
        return False
    sql = "UPDATE tokens SET revoked_at = ? WHERE client_id = ? AND revoked_at IS NULL"
    conn.execute(sql, (at, client_id))
    _emit(conn, EventKind.CLIENT_DISABLED, client_id, at, None)
    return True


def _delete_client(client_id: str, at: int, conn: sqlite3.Connection) -> bool:
    if conn.execute("DELETE FROM clients WHERE client_id = ?", (client_id,)).rowcount == 0:
        return False
    conn.execute("DELETE FROM tokens WHERE client_id = ?", (client_id,))
    _emit(conn, EventKind.CLIENT_DELETED, client_id, at, None)
    return True


def _revoke_token(token_hash: str, at: int, conn: sqlite3.Connection) -> bool:
    sql = (
        "UPDATE tokens SET revoked_at = ? WHERE token_hash = ? AND revoked_at IS NULL"
        " RETURNING client_id"
    )
    rows = conn.execute(sql, (at, token_hash)).fetchall()
    if not rows:
        return False
    _emit(conn, EventKind.TOKEN_REVOKED, rows[0][0], at, token_hash)
    return True


def _purge_chunk(before: int, conn: sqlite3.Connection) -> int:
    return conn.execute(_TOKENS_PURGE, (before, PURGE_CHUNK)).rowcount


# -- connections and schema --------------------------------------------------------------------


def _connect(path: str, busy_timeout: float) -> sqlite3.Connection:
    # isolation_level=None: no implicit transactions; writes say BEGIN IMMEDIATE themselves.
    # check_same_thread=False: connections are opened on a helper thread, used on the loop's.
    return sqlite3.connect(
        path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
    )


def _open_writer(path: str, busy_timeout: float) -> sqlite3.Connection:
    conn = _connect(path, busy_timeout)
    try:
        _enable_wal(conn, path, busy_timeout)
        conn.execute("PRAGMA synchronous = FULL")
        _create_schema(conn)
        # From here on this connection is used on the event loop: never sleep in SQLite's busy
        # handler (the caller retries asynchronously) and never checkpoint inline.
        conn.execute("PRAGMA busy_timeout = 0")
        conn.execute("PRAGMA wal_autocheckpoint = 0")
    except BaseException:
        conn.close()
        raise
    return conn


def _enable_wal(conn: sqlite3.Connection, path: str, busy_timeout: float) -> None:
    # Switching to WAL takes an exclusive lock and, unlike other statements, may report
    # SQLITE_BUSY without calling the busy handler, so racing processes retry here.
    deadline = time.monotonic() + busy_timeout
    delay = 0.001
    while True:
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            break
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
    if str(mode).lower() != "wal":
        raise RuntimeError(f"SQLite database {path!r} cannot use WAL (journal_mode={mode})")


def _open_reader(path: str, busy_timeout: float) -> sqlite3.Connection:
    conn = _connect(path, busy_timeout)
    conn.execute("PRAGMA query_only = ON")
    return conn


def _create_schema(conn: sqlite3.Connection) -> None:
    """Create missing tables under the write lock; `user_version` records the schema."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        _check_version(int(conn.execute("PRAGMA user_version").fetchone()[0]))
        for statement in _SCHEMA:
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _check_version(version: int) -> None:
    if version > SCHEMA_VERSION:
        raise RuntimeError(
            f"database schema v{version} is newer than this tokengate (v{SCHEMA_VERSION})"
        )
