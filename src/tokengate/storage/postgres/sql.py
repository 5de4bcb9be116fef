"""PostgreSQL statements, their column lists from `schema`.

The coalesced paths (see `store`) have a form for a batch of one and a form for many: binding
an array costs ~100 µs more per round trip, so a lone call keeps the scalar statement.
"""

from __future__ import annotations

from tokengate.storage.schema import (
    ADMIN_TOKENS,
    ASSERTIONS,
    AUDIT,
    CLIENTS,
    EVENTS,
    POSTGRES,
    SECRETS,
    SIGNING_KEYS,
    TOKENS,
    insert_into,
    select,
)

NOTIFY_CHANNEL = "tokengate_events"

CLIENTS_GET = select(CLIENTS) + " WHERE client_id = %s"
CLIENTS_LIST = select(CLIENTS) + " ORDER BY created_at, client_id"
CLIENTS_INSERT = POSTGRES.insert(CLIENTS)
CLIENTS_LOCK = (
    "SELECT client_id, secret_hash, previous_secret_hash, previous_secret_expires_at"
    " FROM clients WHERE client_id = ANY(%s) AND NOT disabled ORDER BY client_id FOR SHARE"
)
CLIENTS_UPDATE = POSTGRES.update_client_metadata()
SECRET_SET = (
    "UPDATE clients SET previous_secret_hash = CASE WHEN %s > 0 THEN secret_hash END,"
    " previous_secret_expires_at = CASE WHEN %s > 0 THEN %s::bigint END,"
    " secret_hash = %s, secret_rotated_at = %s WHERE client_id = %s"
)
ACTIVITY = (
    "SELECT client_id, COUNT(*) FILTER (WHERE issued_at >= %s), MAX(issued_at)"
    " FROM tokens GROUP BY client_id"
)
ADMIN_TOKENS_INSERT = POSTGRES.insert(ADMIN_TOKENS)
ADMIN_TOKENS_GET = select(ADMIN_TOKENS) + " WHERE token_hash = %s"
ADMIN_TOKENS_LIST = select(ADMIN_TOKENS) + " ORDER BY created_at, token_id"
ADMIN_TOKENS_REVOKE = (
    "UPDATE admin_tokens SET revoked_at = %s WHERE token_id = %s AND revoked_at IS NULL"
)
AUDIT_INSERT = POSTGRES.insert(AUDIT)
AUDIT_AFTER = (
    select(AUDIT) + " WHERE position > %s AND occurred_at >= %s"
    " AND (%s::text IS NULL OR client_id = %s) ORDER BY position LIMIT %s"
)
TOKENS_GET_ONE = select(TOKENS) + " WHERE token_hash = %s"
TOKENS_GET_MANY = select(TOKENS) + " WHERE token_hash = ANY(%s)"
# ON CONFLICT covers token_hash (jti: 128 random bits, unindexed); skipped rows are not returned.
TOKENS_INSERT_ONE = POSTGRES.insert(TOKENS) + " ON CONFLICT DO NOTHING RETURNING token_hash"
# One multi-row INSERT: each parameter is one column's array, unnest() zips them into rows.
# S608 (here and below): built from `schema` identifiers and types, never from input.
TOKENS_INSERT_MANY = (
    f"{insert_into(TOKENS)} SELECT * FROM unnest("  # noqa: S608
    + ", ".join(f"%s::{POSTGRES.types[c.type].lower()}[]" for c in TOKENS.written)
    + ") ON CONFLICT DO NOTHING RETURNING token_hash"
)
# One keyset batch (see `tokengate.storage.purge`): rows found by ctid, so the delete costs no
# second lookup per row; a row updated meanwhile (revoked) is skipped and purged next run.
TOKENS_PURGE = (
    "WITH gone AS (DELETE FROM tokens WHERE ctid = ANY(ARRAY(SELECT ctid FROM tokens"
    " WHERE expires_at >= %s AND expires_at <= %s ORDER BY expires_at LIMIT %s))"
    " RETURNING expires_at) SELECT COUNT(*), MAX(expires_at) FROM gone"
)
PURGE_TRY_LOCK = "SELECT pg_try_advisory_lock(%s)"
PURGE_UNLOCK = "SELECT pg_advisory_unlock(%s)"
ASSERTION_USE = POSTGRES.insert(ASSERTIONS) + " ON CONFLICT DO NOTHING"
ASSERTIONS_PURGE = (
    "DELETE FROM assertions WHERE key_hash IN"
    " (SELECT key_hash FROM assertions WHERE expires_at <= %s LIMIT %s)"
)
# One statement: the row inserted, or (another caller was first) the row found.
SECRET_SHARED = (
    f"WITH added AS ({POSTGRES.insert(SECRETS)} ON CONFLICT DO NOTHING RETURNING value)"  # noqa: S608
    " SELECT value FROM added UNION ALL SELECT value FROM secrets WHERE name = %s LIMIT 1"
)
EVENTS_INSERT = (
    f"WITH e AS ({POSTGRES.insert(EVENTS)} RETURNING position)"  # noqa: S608
    " SELECT pg_notify(%s, position::text) FROM e"
)
EVENTS_AFTER = select(EVENTS) + " WHERE position > %s ORDER BY position LIMIT %s"
LAST_POSITION = "SELECT COALESCE(MAX(position), 0) FROM events"

SIGNING_KEYS_LIST = select(SIGNING_KEYS) + " ORDER BY created_at, kid"
SIGNING_KEY_INSERT = POSTGRES.insert(SIGNING_KEYS)
SIGNING_KEY_UNRETIRED = "SELECT 1 FROM signing_keys WHERE retire_at IS NULL LIMIT 1"
SIGNING_KEYS_DROP = "DELETE FROM signing_keys WHERE retire_at IS NOT NULL AND retire_at <= %s"
SIGNING_KEYS_RETIRE = "UPDATE signing_keys SET retire_at = %s WHERE retire_at IS NULL"
ADVISORY_XACT_LOCK = "SELECT pg_advisory_xact_lock(%s)"
