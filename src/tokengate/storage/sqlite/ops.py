"""SQLite statements, and the writes that run inside a group transaction (on the loop thread).

Each op takes the writer connection, runs its statements and returns its result; a duplicate
raises `ValueError` and a stale guarded issue `StaleClient`, failing only that op (see
`transaction`). A revocation-type write appends its event in the same transaction.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from typing import Any

from tokengate.core.audit import AuditEntry
from tokengate.core.models import AccessToken, EventKind
from tokengate.storage.base import StaleClient
from tokengate.storage.rows import DECOY_CLIENT_ROW, DECOY_TOKEN_ROW, audit_row
from tokengate.storage.schema import (
    ADMIN_TOKENS,
    ASSERTIONS,
    AUDIT,
    CLIENTS,
    EVENTS,
    SECRETS,
    SIGNING_KEYS,
    SQLITE,
    TOKENS,
    digest_key,
    insert_into,
    select,
)

PURGE_CHUNK = 5000  # rows per purge transaction, so a big purge never holds the lock long


def _literal(value: Any) -> str:
    """An SQL literal of one of our own constants (never input)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool | int):
        return str(int(value))
    if isinstance(value, bytes):
        return f"X'{value.hex()}'"
    return "'" + str(value).replace("'", "''") + "'"


def or_decoy(lookup: str, decoy: tuple[Any, ...], rowid_table: str | None = None) -> str:
    """`lookup` of at most one row as `SELECT 1, ...`, else the `decoy` row as `SELECT 0, ...`:
    exactly one row, found or not, at nearly the same cost (reading a row costs ~2 us more than
    finding none; see `tokengate.core.decoys`). In a rowid table a hit seeks twice (key index,
    then the row): the decoy seeks a row of `rowid_table` at random too. UNION ALL runs its
    parts in order: a hit stops at LIMIT 1 (were the order ever reversed, a hit would read as a
    miss: fail closed)."""
    found = lookup.replace("SELECT ", "SELECT 1, ", 1)
    where = ""
    if rowid_table is not None:  # ifnull(...) >= 0 is always true: only the seek matters
        where = (
            f" WHERE ifnull((SELECT rowid FROM {rowid_table} WHERE rowid >= abs(random()) %"  # noqa: S608 (identifiers)
            f" ifnull((SELECT max(rowid) FROM {rowid_table}), 1) LIMIT 1), 0) >= 0"
        )
    return f"{found} UNION ALL SELECT 0, {', '.join(map(_literal, decoy))}{where} LIMIT 1"


CLIENTS_GET = or_decoy(select(CLIENTS) + " WHERE client_id = ?", DECOY_CLIENT_ROW)
CLIENTS_LIST = select(CLIENTS) + " ORDER BY created_at, client_id"
TOKENS_GET = or_decoy(select(TOKENS) + " WHERE token_hash = ?", DECOY_TOKEN_ROW, TOKENS.name)
EVENTS_AFTER = select(EVENTS) + " WHERE position > ? ORDER BY position LIMIT ?"
LAST_POSITION = "SELECT COALESCE(MAX(position), 0) FROM events"
ADMIN_TOKENS_GET = select(ADMIN_TOKENS) + " WHERE token_hash = ?"
ADMIN_TOKENS_LIST = select(ADMIN_TOKENS) + " ORDER BY created_at, token_id"
_ADMIN_TOKENS_REVOKE = (
    "UPDATE admin_tokens SET revoked_at = ? WHERE token_id = ? AND revoked_at IS NULL"
)
AUDIT_AFTER = (
    select(AUDIT) + " WHERE position > ? AND occurred_at >= ? AND (? IS NULL OR client_id = ?)"
    " ORDER BY position LIMIT ?"
)
ACTIVITY = (
    "SELECT client_id, SUM(CASE WHEN issued_at >= ? THEN 1 ELSE 0 END), MAX(issued_at)"
    " FROM tokens GROUP BY client_id"
)

_CLIENTS_INSERT = SQLITE.insert(CLIENTS)
_TOKENS_INSERT = SQLITE.insert(TOKENS)
# Issue only against the client's current state: one atomic statement (writes are serialized).
# S608: built from `schema` identifiers and placeholders, never from input.
_TOKENS_INSERT_GUARDED = (
    f"{insert_into(TOKENS)} SELECT {SQLITE.params(len(TOKENS.written))} WHERE EXISTS"  # noqa: S608
    " (SELECT 1 FROM clients WHERE client_id = ? AND disabled = 0 AND (secret_hash = ?"
    " OR (previous_secret_hash = ? AND previous_secret_expires_at > ?)))"
)
_ADMIN_TOKENS_INSERT = SQLITE.insert(ADMIN_TOKENS)
_AUDIT_INSERT = SQLITE.insert(AUDIT)
_CLIENTS_UPDATE = SQLITE.update_client_metadata()
_SECRET_SET = (
    "UPDATE clients SET previous_secret_hash = CASE WHEN ? > 0 THEN secret_hash END,"
    " previous_secret_expires_at = CASE WHEN ? > 0 THEN ? END,"
    " secret_hash = ?, secret_rotated_at = ? WHERE client_id = ?"
)
_EVENTS_INSERT = SQLITE.insert(EVENTS)
_ASSERTION_USE = SQLITE.insert(ASSERTIONS) + " ON CONFLICT DO NOTHING"
_SECRET_ADD = SQLITE.insert(SECRETS) + " ON CONFLICT DO NOTHING"
_SECRET_GET = "SELECT value FROM secrets WHERE name = ?"
_ASSERTIONS_PURGE = (
    "DELETE FROM assertions WHERE key_hash IN"
    " (SELECT key_hash FROM assertions WHERE expires_at <= ? LIMIT ?)"
)

SIGNING_KEYS_LIST = select(SIGNING_KEYS) + " ORDER BY created_at, kid"
# S608: built from `schema` identifiers and placeholders, never from input.
_SIGNING_KEY_FIRST = (
    f"{insert_into(SIGNING_KEYS)} SELECT {SQLITE.params(len(SIGNING_KEYS.written))}"  # noqa: S608
    " WHERE NOT EXISTS (SELECT 1 FROM signing_keys WHERE retire_at IS NULL)"
)
_SIGNING_KEY_INSERT = SQLITE.insert(SIGNING_KEYS)
_SIGNING_KEYS_DROP = "DELETE FROM signing_keys WHERE retire_at IS NOT NULL AND retire_at <= ?"
_SIGNING_KEYS_RETIRE = "UPDATE signing_keys SET retire_at = ? WHERE retire_at IS NULL"


def insert_client(
    row: tuple[Any, ...], client_id: str, audit: AuditEntry | None, conn: sqlite3.Connection
) -> None:
    """Insert a client row; `ValueError` if the id exists."""
    _insert(_CLIENTS_INSERT, row, f"client {client_id}", conn)
    append_audit(audit, conn)


def update_client(
    params: tuple[Any, ...], client_id: str, at: int, audit: AuditEntry | None,
    conn: sqlite3.Connection,
) -> bool:  # fmt: skip
    """Replace a client's metadata (`rows.client_update_params`); emits CLIENT_UPDATED."""
    if conn.execute(_CLIENTS_UPDATE, params).rowcount == 0:
        return False
    _emit(conn, EventKind.CLIENT_UPDATED, client_id, at, None)
    append_audit(audit, conn)
    return True


def insert_admin_token(
    row: tuple[Any, ...], token_id: str, audit: AuditEntry | None, conn: sqlite3.Connection
) -> None:
    """Insert an admin token row; `ValueError` if the hash exists."""
    _insert(_ADMIN_TOKENS_INSERT, row, f"admin token {token_id}", conn)
    append_audit(audit, conn)


def revoke_admin_token(
    token_id: str, at: int, audit: AuditEntry | None, conn: sqlite3.Connection
) -> bool:
    """Mark an admin token revoked; False if there is no usable-or-expired one by that id."""
    if conn.execute(_ADMIN_TOKENS_REVOKE, (at, token_id)).rowcount == 0:
        return False
    append_audit(audit, conn)
    return True


def append_audit(audit: AuditEntry | None, conn: sqlite3.Connection) -> None:
    """Append an audit entry (in the caller's transaction)."""
    if audit is not None:
        conn.execute(_AUDIT_INSERT, audit_row(audit))


def insert_token(row: tuple[Any, ...], token: AccessToken, conn: sqlite3.Connection) -> None:
    """Insert a token row unchecked; `ValueError` if the hash exists."""
    _insert(_TOKENS_INSERT, row, f"token {token.jti}", conn)


def insert_token_guarded(
    row: tuple[Any, ...], token: AccessToken, conn: sqlite3.Connection
) -> None:
    """Insert only if the row's last two values still name an enabled client and its secret."""
    try:
        inserted = conn.execute(_TOKENS_INSERT_GUARDED, row).rowcount
    except sqlite3.IntegrityError as exc:
        raise ValueError(f"token {token.jti} already stored") from exc
    if inserted == 0:
        raise StaleClient(token.client_id)


def set_secret(
    change: tuple[str, str, int, int], audit: AuditEntry | None, conn: sqlite3.Connection
) -> bool:
    """Rotate to (client_id, secret_hash, at, grace): the old secret is kept `grace` seconds;
    emits SECRET_ROTATED."""
    client_id, secret_hash, at, grace = change
    params = (grace, grace, at + grace, secret_hash, at, client_id)
    if conn.execute(_SECRET_SET, params).rowcount == 0:
        return False
    _emit(conn, EventKind.SECRET_ROTATED, client_id, at, None)
    append_audit(audit, conn)
    return True


def disable_client(
    client_id: str, at: int, audit: AuditEntry | None, conn: sqlite3.Connection
) -> bool:
    """Disable the client and revoke its live tokens; emits CLIENT_DISABLED."""
    sql = "UPDATE clients SET disabled = 1 WHERE client_id = ?"
    if conn.execute(sql, (client_id,)).rowcount == 0:
        return False
    sql = "UPDATE tokens SET revoked_at = ? WHERE client_id = ? AND revoked_at IS NULL"
    conn.execute(sql, (at, client_id))
    _emit(conn, EventKind.CLIENT_DISABLED, client_id, at, None)
    append_audit(audit, conn)
    return True


def delete_client(
    client_id: str, at: int, audit: AuditEntry | None, conn: sqlite3.Connection
) -> bool:
    """Delete the client and its tokens; emits CLIENT_DELETED."""
    if conn.execute("DELETE FROM clients WHERE client_id = ?", (client_id,)).rowcount == 0:
        return False
    conn.execute("DELETE FROM tokens WHERE client_id = ?", (client_id,))
    _emit(conn, EventKind.CLIENT_DELETED, client_id, at, None)
    append_audit(audit, conn)
    return True


def revoke_token(
    token_hash: str, at: int, audit: AuditEntry | None, conn: sqlite3.Connection
) -> bool:
    """Mark the token revoked; emits TOKEN_REVOKED."""
    key = digest_key(token_hash)
    if key is None:
        return False
    sql = (
        "UPDATE tokens SET revoked_at = ? WHERE token_hash = ? AND revoked_at IS NULL"
        " RETURNING client_id"
    )
    rows = conn.execute(sql, (at, key)).fetchall()
    if not rows:
        return False
    _emit(conn, EventKind.TOKEN_REVOKED, rows[0][0], at, token_hash)
    if audit is not None:
        append_audit(dataclasses.replace(audit, client_id=rows[0][0]), conn)
    return True


def use_assertion(key_hash: str, expires_at: int, conn: sqlite3.Connection) -> bool:
    """Record an assertion's replay key; False if it was already recorded."""
    return bool(conn.execute(_ASSERTION_USE, (key_hash, expires_at)).rowcount)


def purge_assertions_chunk(before: int, conn: sqlite3.Connection) -> int:
    """Delete up to PURGE_CHUNK expired assertion keys; returns how many."""
    return conn.execute(_ASSERTIONS_PURGE, (before, PURGE_CHUNK)).rowcount


def shared_secret(name: str, candidate: str, at: int, conn: sqlite3.Connection) -> str:
    """The secret named `name`, `candidate` stored first when there is none."""
    conn.execute(_SECRET_ADD, (name, candidate, at))
    return str(conn.execute(_SECRET_GET, (name,)).fetchone()[0])


def _insert(sql: str, row: tuple[Any, ...], what: str, conn: sqlite3.Connection) -> None:
    try:
        conn.execute(sql, row)
    except sqlite3.IntegrityError as exc:
        raise ValueError(f"{what} already stored") from exc


def _emit(
    conn: sqlite3.Connection, kind: EventKind, client_id: str, at: int, token_hash: str | None
) -> None:
    # In the order of EVENTS.written: kind, client_id, token_hash, occurred_at.
    conn.execute(_EVENTS_INSERT, (kind.value, client_id, token_hash, at))


def add_first_signing_key(row: tuple[Any, ...], conn: sqlite3.Connection) -> bool:
    """Insert the key unless an unretired one exists (writes are serialized: atomic)."""
    return bool(conn.execute(_SIGNING_KEY_FIRST, row).rowcount)


def rotate_signing_key(
    row: tuple[Any, ...],
    created_at: int,
    retire_at: int,
    audit: AuditEntry | None,
    conn: sqlite3.Connection,
) -> int:
    """Drop long-retired keys, retire the unretired ones, insert the new one."""
    conn.execute(_SIGNING_KEYS_DROP, (created_at,))
    retired = conn.execute(_SIGNING_KEYS_RETIRE, (retire_at,)).rowcount
    _insert(_SIGNING_KEY_INSERT, row, f"signing key {row[0]}", conn)
    append_audit(audit, conn)
    return int(retired)
