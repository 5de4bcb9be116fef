"""SQLite statements, and the writes that run inside a group transaction (on the loop thread).

Each op takes the writer connection, runs its statements and returns its result; a duplicate
raises `ValueError` and a stale guarded issue `StaleClient`, failing only that op (see
`transaction`). A revocation-type write appends its event in the same transaction.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from tokengate.core.models import AccessToken, EventKind
from tokengate.storage.base import StaleClient
from tokengate.storage.schema import CLIENTS, EVENTS, SQLITE, TOKENS, insert_into, select

PURGE_CHUNK = 5000  # rows per purge transaction, so a big purge never holds the lock long

CLIENTS_GET = select(CLIENTS) + " WHERE client_id = ?"
CLIENTS_LIST = select(CLIENTS) + " ORDER BY created_at, client_id"
TOKENS_GET = select(TOKENS) + " WHERE token_hash = ?"
EVENTS_AFTER = select(EVENTS) + " WHERE position > ? ORDER BY position LIMIT ?"
LAST_POSITION = "SELECT COALESCE(MAX(position), 0) FROM events"

_CLIENTS_INSERT = SQLITE.insert(CLIENTS)
_TOKENS_INSERT = SQLITE.insert(TOKENS)
# Issue only against the client's current state: one atomic statement (writes are serialized).
# S608: built from `schema` identifiers and placeholders, never from input.
_TOKENS_INSERT_GUARDED = (
    f"{insert_into(TOKENS)} SELECT {SQLITE.params(len(TOKENS.written))} WHERE EXISTS"  # noqa: S608
    " (SELECT 1 FROM clients WHERE client_id = ? AND disabled = 0 AND secret_hash = ?)"
)
_EVENTS_INSERT = SQLITE.insert(EVENTS)
_TOKENS_PURGE = (
    "DELETE FROM tokens WHERE token_hash IN"
    " (SELECT token_hash FROM tokens WHERE expires_at <= ? LIMIT ?)"
)


def insert_client(row: tuple[Any, ...], client_id: str, conn: sqlite3.Connection) -> None:
    """Insert a client row; `ValueError` if the id exists."""
    _insert(_CLIENTS_INSERT, row, f"client {client_id}", conn)


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


def set_secret(client_id: str, secret_hash: str, at: int, conn: sqlite3.Connection) -> bool:
    """Rotate the secret hash; emits SECRET_ROTATED."""
    sql = "UPDATE clients SET secret_hash = ?, secret_rotated_at = ? WHERE client_id = ?"
    if conn.execute(sql, (secret_hash, at, client_id)).rowcount == 0:
        return False
    _emit(conn, EventKind.SECRET_ROTATED, client_id, at, None)
    return True


def disable_client(client_id: str, at: int, conn: sqlite3.Connection) -> bool:
    """Disable the client and revoke its live tokens; emits CLIENT_DISABLED."""
    sql = "UPDATE clients SET disabled = 1 WHERE client_id = ?"
    if conn.execute(sql, (client_id,)).rowcount == 0:
        return False
    sql = "UPDATE tokens SET revoked_at = ? WHERE client_id = ? AND revoked_at IS NULL"
    conn.execute(sql, (at, client_id))
    _emit(conn, EventKind.CLIENT_DISABLED, client_id, at, None)
    return True


def delete_client(client_id: str, at: int, conn: sqlite3.Connection) -> bool:
    """Delete the client and its tokens; emits CLIENT_DELETED."""
    if conn.execute("DELETE FROM clients WHERE client_id = ?", (client_id,)).rowcount == 0:
        return False
    conn.execute("DELETE FROM tokens WHERE client_id = ?", (client_id,))
    _emit(conn, EventKind.CLIENT_DELETED, client_id, at, None)
    return True


def revoke_token(token_hash: str, at: int, conn: sqlite3.Connection) -> bool:
    """Mark the token revoked; emits TOKEN_REVOKED."""
    sql = (
        "UPDATE tokens SET revoked_at = ? WHERE token_hash = ? AND revoked_at IS NULL"
        " RETURNING client_id"
    )
    rows = conn.execute(sql, (at, token_hash)).fetchall()
    if not rows:
        return False
    _emit(conn, EventKind.TOKEN_REVOKED, rows[0][0], at, token_hash)
    return True


def purge_chunk(before: int, conn: sqlite3.Connection) -> int:
    """Delete up to PURGE_CHUNK expired tokens; returns how many."""
    return conn.execute(_TOKENS_PURGE, (before, PURGE_CHUNK)).rowcount


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
