"""Versioned forward migrations, one list for both SQL dialects.

A database records the schema version it holds (SQLite: `PRAGMA user_version`; PostgreSQL: the
`tokengate_meta` row `schema_version`, which is how version 1, the first release, marked them).
On open, each backend reads that version under its schema lock (SQLite `BEGIN IMMEDIATE`,
PostgreSQL an advisory lock), runs the statements `plan` returns and records the new version in
the same transaction, so racing first starts apply each step once. Version 0 is an empty
database: it gets the latest tables of `schema` at once. A database newer than this code is
refused: an older tokengate must not write rows a newer one does not expect.

To change the schema: change `schema`'s tables (the latest shape, what an empty database
gets) and append a `Migration` whose statements take a database from the previous version to
it; `tests/storage/test_migrations.py` checks both paths end in the same tables.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tokengate.storage.schema import (
    ADMIN_TOKENS,
    ASSERTIONS,
    AUDIT,
    CLIENTS,
    SECRETS,
    SIGNING_KEYS,
    TOKENS,
    Dialect,
    Table,
    insert_into,
)

FIRST_VERSION = 1  # the schema of the first release, created before migrations existed


@dataclass(frozen=True, slots=True)
class Migration:
    """The statements that take a database from `version - 1` to `version`."""

    version: int
    why: str
    statements: Callable[[Dialect], Sequence[str]]


def _v2(d: Dialect) -> list[str]:
    # Named columns, not "the columns after the tenth": a later step may add more.
    added = ["previous_secret_hash", "previous_secret_expires_at"]
    added += ["registration_token_hash", "auth_method"]
    return [d.add_column(CLIENTS, name) for name in added] + d.create_statements(
        (ADMIN_TOKENS, AUDIT)
    )


def _v3_private_key_jwt(d: Dialect) -> list[str]:
    # Self-contained: names its own columns and table, so it can be renumbered at a merge.
    added = [d.add_column(CLIENTS, name) for name in ("jwks", "jwks_uri")]
    return added + d.create_statements((ASSERTIONS,))


# Migration 4 decodes hex on SQLite through this function, which `connect.migrate` registers
# (SQLite's own `unhex` needs 3.41): the 32 bytes of 64 lower-case hex characters, else NULL.
SQLITE_UNHEX = "tokengate_unhex"


def _v4_digest_keys(d: Dialect) -> list[str]:
    # Rows whose key is not what `hash_value` writes (64 lower-case hex characters) matched no
    # lookup before; they are dropped rather than given a key some lookup could match.
    if d.name == "postgres":
        return [
            "DELETE FROM tokens WHERE token_hash !~ '^[0-9a-f]{64}$'",
            "ALTER TABLE tokens ALTER COLUMN token_hash TYPE BYTEA USING decode(token_hash, 'hex')",
        ]
    # SQLite cannot change a column's type: rebuild the table under its own name, with the
    # columns it had at version 4 (a later step adds its own).
    tokens = _until(TOKENS, "revoked_at")
    rest = ", ".join(c.name for c in tokens.written[1:])
    # S608: built from `schema` identifiers, never from input.
    copy = f"{insert_into(tokens)} SELECT {SQLITE_UNHEX}(token_hash), {rest} FROM tokens_v2"  # noqa: S608
    return [
        *(f"DROP INDEX IF EXISTS {index.name}" for index in TOKENS.indexes),
        "ALTER TABLE tokens RENAME TO tokens_v2",
        *d.create_statements((tokens,)),
        f"{copy} WHERE {SQLITE_UNHEX}(token_hash) IS NOT NULL",
        "DROP TABLE tokens_v2",
    ]


def _until(table: Table, last: str) -> Table:
    """`table` with its columns up to and including `last`: its shape at an older version."""
    names = table.names
    return dataclasses.replace(table, columns=table.columns[: names.index(last) + 1])


def _v5_dpop(d: Dialect) -> list[str]:
    # Self-contained: names its own columns and table, so it can be renumbered at a merge.
    added = [d.add_column(TOKENS, "jkt"), d.add_column(CLIENTS, "dpop_bound_access_tokens")]
    return added + d.create_statements((SECRETS,))


def _signing_keys(d: Dialect) -> list[str]:
    # Self-contained (its own table only), so it can be renumbered at a merge.
    return d.create_statements((SIGNING_KEYS,))


# Versions after the first, in order.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(2, "rotation with grace, RFC 7591/7592 registration, admin tokens, audit log", _v2),
    Migration(
        3,
        "private_key_jwt: client JWKS columns and the assertion replay table",
        _v3_private_key_jwt,
    ),
    Migration(
        4, "token hashes as their 32 bytes: a smaller key and primary-key index", _v4_digest_keys
    ),
    Migration(
        5, "DPoP (RFC 9449): token key thumbprints, DPoP-bound clients, shared secrets", _v5_dpop
    ),
    Migration(6, "RFC 9701 signed introspection: the server's signing keys", _signing_keys),
)


class SchemaTooNew(RuntimeError):
    """The database was written by a newer tokengate."""

    def __init__(self, found: int, latest: int) -> None:
        super().__init__(f"database schema v{found} is newer than this tokengate (v{latest})")


def latest_version(migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """The version this code writes: the last migration's, or the first release's."""
    return migrations[-1].version if migrations else FIRST_VERSION


def plan(found: int, dialect: Dialect, migrations: Sequence[Migration] = MIGRATIONS) -> list[str]:
    """The statements that bring a database at version `found` to the latest version.

    Raises `SchemaTooNew` for a database newer than the code.
    """
    latest = latest_version(migrations)
    if found > latest:
        raise SchemaTooNew(found, latest)
    if found == 0:
        return dialect.create_statements()
    return [s for m in migrations if m.version > found for s in m.statements(dialect)]


def check_sequence(migrations: Sequence[Migration] = MIGRATIONS) -> None:
    """Raise `ValueError` unless the versions run 2, 3, 4... without a gap or repeat."""
    expected = list(range(FIRST_VERSION + 1, FIRST_VERSION + 1 + len(migrations)))
    if [m.version for m in migrations] != expected:
        raise ValueError(f"migration versions must be {expected}")
