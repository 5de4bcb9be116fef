"""SQLite backend, the default: one file shared by every server process and the CLI.

WAL lets readers run beside the single writer and `synchronous=FULL` makes each commit durable
before the method returns. Reads run on the event-loop thread over their own connection: a
primary-key SELECT costs ~10 µs, less than a hop to a thread and back. Writes use *group
commit* (`group_commit`): every write queued while a transaction is being prepared joins it,
so a burst of token issuances shares one transaction and one fsync.

Group transactions are *built* on the loop thread and *committed* on a commit thread
(`transaction`). Measured under load, handing whole batches to a writer thread was ~1.5x
slower: every SQLite call releases and re-takes the GIL, and the writer thread then queues
behind the busy event loop for the GIL once per row. The COMMIT is one call that spends most
of its time in fsync with the GIL released, so it alone goes to a thread (measured: +17-25%
token issuance under wrk): the loop serves other requests meanwhile, and the writes they queue
join the next batch. Two other things would block the loop, and both are kept off it: waiting
for another process's write lock (the writer has no busy handler; a busy `BEGIN IMMEDIATE` is
retried with `asyncio.sleep` backoff up to `busy_timeout`, see `busy`) and WAL checkpoints
(automatic checkpoints are off on the writer; `checkpoint` runs a PASSIVE one every second on
its own connection, and keeps the `-wal` file under `SQLiteSettings.wal_limit` by pausing
writes for a TRUNCATE one). A caller cancelled while its write is queued is dropped; a
duplicate or stale-client write fails alone; a failed transaction fails its whole batch.

Files this process cannot read and write are refused at `open`, naming the file (`files`). An
`OperationalError` (locked past `busy_timeout`, I/O error, disk full, read-only file) is
logged with the database's path and raised as `StorageUnavailable`. Only hashes are stored
(RFC 6749 §10.3, RFC 9700 §4.9.3); a revocation-type write appends its event in the same
transaction as the change it records.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from tokengate.core.audit import AuditEntry
from tokengate.core.models import AccessToken, AdminToken, Client, RevocationEvent
from tokengate.core.signing_keys import SigningKey
from tokengate.storage.base import DEFAULT_PACE, ClientActivity, PurgePace, StorageUnavailable
from tokengate.storage.group_commit import GroupCommit
from tokengate.storage.purge import paced
from tokengate.storage.rows import (
    admin_token_from_row,
    admin_token_row,
    audit_from_row,
    client_from_row,
    client_row,
    client_update_params,
    event_from_row,
    found_client,
    found_token,
    signing_key_from_row,
    signing_key_row,
    token_row,
)
from tokengate.storage.schema import CLIENT_SCOPES, digest_key, scopes_union
from tokengate.storage.sqlite import ops
from tokengate.storage.sqlite.checkpoint import WalBound
from tokengate.storage.sqlite.connect import connect, migrate, open_reader, open_writer
from tokengate.storage.sqlite.files import FailureLog, unusable
from tokengate.storage.sqlite.purge import delete_batch, purge_file
from tokengate.storage.sqlite.settings import SQLiteSettings
from tokengate.storage.sqlite.transaction import Op, run_group

MAX_BATCH = 1000  # writes per group transaction, so other processes wait for the lock briefly

_T = TypeVar("_T")


class SQLiteStore:
    """A `Store` in one SQLite file; `:memory:` gives one private connection (tests, demos)."""

    def __init__(
        self,
        path: str,
        *,
        busy_timeout: float = 10.0,
        settings: SQLiteSettings | None = None,
    ) -> None:
        self._path = path
        self._busy_timeout = busy_timeout
        self.settings = settings or SQLiteSettings()
        self._in_memory = path in ("", ":memory:")
        self._failures = FailureLog(path, exclusive=self.settings.exclusive)
        self._reader: sqlite3.Connection | None = None
        self._writer: sqlite3.Connection | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._writes = GroupCommit(self._commit, max_batch=MAX_BATCH, max_in_flight=1, gather=True)
        self.wal: WalBound | None = None
        self._checkpointer: asyncio.Task[None] | None = None
        self._committer: ThreadPoolExecutor | None = None

    async def open(self) -> None:
        """Check the files, connect, switch to WAL and migrate the schema (safe when several
        processes race); a file this process cannot use is refused by name."""
        if not self._in_memory:
            problem = unusable(self._path, exclusive=self.settings.exclusive)
            if problem is not None:
                raise StorageUnavailable(f"SQLite {self._path}: {problem}")
        try:
            await self._open()
        except sqlite3.OperationalError as exc:
            raise StorageUnavailable(self._failures.describe(exc)) from exc

    async def _open(self) -> None:
        if self._in_memory:
            conn = connect(self._path, self._busy_timeout)
            migrate(conn)
            self._reader = self._writer = conn
            return
        thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tokengate-sqlite")
        loop = asyncio.get_running_loop()
        path, timeout, exclusive = self._path, self._busy_timeout, self.settings.exclusive
        makers = (
            functools.partial(open_writer, exclusive=exclusive, wal_limit=self.settings.wal_limit),
            functools.partial(open_reader, exclusive=exclusive),
            functools.partial(connect, exclusive=exclusive),  # the checkpointer's
        )
        opened: list[sqlite3.Connection] = []
        try:
            for make in makers:  # one by one: on failure, `opened` holds what to close
                opened.append(await loop.run_in_executor(thread, make, path, timeout))  # noqa: PERF401
        except BaseException:
            for conn in opened:
                conn.close()
            thread.shutdown(wait=False)
            raise
        self._writer, self._reader, checkpointing = opened
        self._thread = thread
        self._committer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tokengate-commit")
        self.wal = WalBound(checkpointing, path, self.settings.wal_limit, thread)
        self._checkpointer = loop.create_task(self.wal.run_forever())

    async def close(self) -> None:
        """Commit every queued write, then close the connections."""
        if self._checkpointer is not None:
            self._checkpointer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checkpointer
            self._checkpointer = None
        await self._writes.drain()
        if self.wal is not None:
            await self.wal.close()
            self.wal = None
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

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        if self._reader is None:
            raise RuntimeError("SQLiteStore is not open")
        try:
            # fetchall, not fetchone: it steps the statement to its end, which ends the read
            # transaction at once instead of when the cursor is collected (it would pin the WAL).
            return self._reader.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            raise StorageUnavailable(self._failures.report(exc)) from exc

    async def get_client(self, client_id: str) -> Client | None:
        return found_client(self._rows(ops.CLIENTS_GET, (client_id,))[0])

    async def list_clients(self) -> list[Client]:
        return [client_from_row(row) for row in self._rows(ops.CLIENTS_LIST)]

    async def client_scopes(self) -> frozenset[str]:
        return scopes_union(row[0] for row in self._rows(CLIENT_SCOPES))

    async def get_token(self, token_hash: str) -> AccessToken | None:
        key = digest_key(token_hash)  # b"" is no stored key: the decoy row, at a hit's cost
        return found_token(self._rows(ops.TOKENS_GET, (key if key is not None else b"",))[0])

    async def events_after(self, position: int, limit: int = 1000) -> list[RevocationEvent]:
        return [event_from_row(row) for row in self._rows(ops.EVENTS_AFTER, (position, limit))]

    async def last_position(self) -> int:
        return int(self._rows(ops.LAST_POSITION)[0][0])

    async def get_admin_token(self, token_hash: str) -> AdminToken | None:
        rows = self._rows(ops.ADMIN_TOKENS_GET, (token_hash,))
        return admin_token_from_row(rows[0]) if rows else None

    async def list_admin_tokens(self) -> list[AdminToken]:
        return [admin_token_from_row(row) for row in self._rows(ops.ADMIN_TOKENS_LIST)]

    async def audit_after(
        self,
        position: int = 0,
        *,
        since: int = 0,
        client_id: str | None = None,
        limit: int = 1000,
    ) -> list[AuditEntry]:
        params = (position, since, client_id, client_id, limit)
        return [audit_from_row(row) for row in self._rows(ops.AUDIT_AFTER, params)]

    async def client_activity(self, since: int) -> dict[str, ClientActivity]:
        rows = self._rows(ops.ACTIVITY, (since,))
        return {row[0]: ClientActivity(int(row[1]), row[2]) for row in rows}

    # -- writes: group-committed --------------------------------------------------------------

    async def add_client(self, client: Client, *, audit: AuditEntry | None = None) -> None:
        row = client_row(client)
        await self._write(functools.partial(ops.insert_client, row, client.client_id, audit))

    async def update_client(
        self, client: Client, at: int, *, audit: AuditEntry | None = None
    ) -> bool:
        if client.disabled:
            raise ValueError("disable a client with disable_client")
        params = client_update_params(client)
        op = functools.partial(ops.update_client, params, client.client_id, at, audit)
        return await self._write(op)

    async def set_client_secret(
        self,
        client_id: str,
        secret_hash: str,
        at: int,
        *,
        grace: int = 0,
        audit: AuditEntry | None = None,
    ) -> bool:
        op = functools.partial(ops.set_secret, (client_id, secret_hash, at, grace), audit)
        return await self._write(op)

    async def disable_client(
        self, client_id: str, at: int, *, audit: AuditEntry | None = None
    ) -> bool:
        return await self._write(functools.partial(ops.disable_client, client_id, at, audit))

    async def delete_client(
        self, client_id: str, at: int, *, audit: AuditEntry | None = None
    ) -> bool:
        return await self._write(functools.partial(ops.delete_client, client_id, at, audit))

    async def add_admin_token(self, token: AdminToken, *, audit: AuditEntry | None = None) -> None:
        row = admin_token_row(token)
        await self._write(functools.partial(ops.insert_admin_token, row, token.token_id, audit))

    async def revoke_admin_token(
        self, token_id: str, at: int, *, audit: AuditEntry | None = None
    ) -> bool:
        return await self._write(functools.partial(ops.revoke_admin_token, token_id, at, audit))

    async def append_audit(self, entry: AuditEntry) -> None:
        await self._write(functools.partial(ops.append_audit, entry))

    async def add_token(self, token: AccessToken, *, secret_hash: str | None = None) -> None:
        row = token_row(token)
        if secret_hash is None:
            await self._write(functools.partial(ops.insert_token, row, token))
        else:
            guarded = (*row, token.client_id, secret_hash, secret_hash, token.issued_at)
            await self._write(functools.partial(ops.insert_token_guarded, guarded, token))

    async def revoke_token(
        self, token_hash: str, at: int, *, audit: AuditEntry | None = None
    ) -> bool:
        return await self._write(functools.partial(ops.revoke_token, token_hash, at, audit))

    async def purge_expired(self, before: int, *, pace: PurgePace = DEFAULT_PACE) -> int:
        if self._in_memory:  # one private connection, no other process: batches run inline

            async def inline(cursor: int) -> tuple[int, int]:
                assert self._writer is not None
                return delete_batch(self._writer, cursor, before, pace.batch)

            return await paced(inline, pace)
        if self._thread is None:
            raise RuntimeError("SQLiteStore is not open")
        return await purge_file(
            self._path,
            self._busy_timeout,
            self._thread,
            before,
            pace,
            exclusive=self.settings.exclusive,
        )

    async def use_assertion(self, key_hash: str, expires_at: int) -> bool:
        return await self._write(functools.partial(ops.use_assertion, key_hash, expires_at))

    async def shared_secret(self, name: str, candidate: str, at: int) -> str:
        return await self._write(functools.partial(ops.shared_secret, name, candidate, at))

    async def purge_assertions(self, before: int) -> int:
        total = 0
        op = functools.partial(ops.purge_assertions_chunk, before)
        while (n := await self._write(op)) > 0:
            total += n
        return total

    async def signing_keys(self) -> list[SigningKey]:
        return [signing_key_from_row(row) for row in self._rows(ops.SIGNING_KEYS_LIST)]

    async def add_first_signing_key(self, key: SigningKey) -> bool:
        row = signing_key_row(key)
        return await self._write(functools.partial(ops.add_first_signing_key, row))

    async def rotate_signing_key(
        self, key: SigningKey, retire_at: int, *, audit: AuditEntry | None = None
    ) -> int:
        op = functools.partial(
            ops.rotate_signing_key, signing_key_row(key), key.created_at, retire_at, audit
        )
        return await self._write(op)

    async def _write(self, op: Callable[[sqlite3.Connection], _T]) -> _T:
        """Queue `op`; it runs in the next group transaction and this returns once committed."""
        if self._writer is None:
            raise RuntimeError("SQLiteStore is not open")
        result: _T = await self._writes.submit(op)
        return result

    async def _commit(self, batch: list[Op]) -> list[Any]:
        writer = self._writer
        assert writer is not None  # close() drains the writes before closing
        try:
            if self.wal is None:  # `:memory:`
                return await run_group(writer, batch, self._busy_timeout, None)
            async with self.wal.writing():
                return await run_group(writer, batch, self._busy_timeout, self._committer)
        except sqlite3.OperationalError as exc:  # nothing in the transaction was committed
            raise StorageUnavailable(self._failures.report(exc)) from exc
