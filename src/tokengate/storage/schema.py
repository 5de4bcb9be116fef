"""The one description of tokengate's tables, and each SQL dialect's text generated from it.

Tables, columns (abstract types), primary keys and indexes are declared here once; the DDL of
SQLite and PostgreSQL, the column lists of every SELECT and INSERT, and the record ↔ row
converters (`rows`) are all derived from it. Column names are the record fields' names, in the
records' field order (`rows` checks this when it builds a converter).

How records map to columns: scopes are space-separated (RFC 6749 §3.3 scope tokens cannot hold
a space); audiences are a JSON array (an audience string is not guaranteed to be free of
spaces); booleans go in as Python bools (SQLite stores 1/0, PostgreSQL BOOLEAN) and come back
through `bool()`; a token's SHA-256 digest is stored as its 32 bytes (`DIGEST`: PostgreSQL
`BYTEA`, SQLite `BLOB`), not 64 hex characters, and records keep the hex form everywhere else.

The tables describe the *latest* schema version: an empty database gets them at once, an
older one is brought forward by `migrations`.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from tokengate.core.audit import Action, Outcome
from tokengate.core.models import AdminRole, EventKind


class Type(enum.Enum):
    """Abstract column types; each dialect names them its own way."""

    TEXT = "text"
    INTEGER = "integer"  # 64-bit: epoch seconds, TTLs
    BOOLEAN = "boolean"
    SERIAL = "serial"  # an increasing integer key the database assigns and never reuses
    DIGEST = "digest"  # a SHA-256 digest's 32 bytes


@dataclass(frozen=True, slots=True)
class Codec:
    """How one record field becomes a column value and back."""

    encode: Callable[[Any], Any]
    decode: Callable[[Any], Any]


def digest_bytes(hex_digest: str) -> bytes:
    """The 32 bytes of a SHA-256 hex digest as `hash_value` writes it (64 lower-case hex
    characters); `ValueError` for anything else, so no two strings share a stored key."""
    raw = bytes.fromhex(hex_digest)
    if len(raw) != 32 or raw.hex() != hex_digest:
        raise ValueError("not a SHA-256 hex digest")
    return raw


def digest_key(hex_digest: str) -> bytes | None:
    """`digest_bytes` for a lookup: None where no stored key can match."""
    try:
        return digest_bytes(hex_digest)
    except ValueError:
        return None


DIGEST = Codec(digest_bytes, bytes.hex)
SCOPES = Codec(lambda scopes: " ".join(sorted(scopes)), lambda text: frozenset(text.split()))


def audiences_text(audiences: Iterable[str]) -> str:
    """Audiences as their JSON array; no audience at all (most tokens) without the encoder,
    which costs ~5% of a token issuance."""
    return json.dumps(list(audiences)) if audiences else "[]"


def audiences_from_text(text: str) -> tuple[str, ...]:
    """The inverse of `audiences_text`."""
    return () if text == "[]" else tuple(json.loads(text))


AUDIENCES = Codec(audiences_text, audiences_from_text)
FLAG = Codec(lambda flag: flag, bool)
EVENT_KIND = Codec(lambda kind: kind.value, EventKind)
ADMIN_ROLE = Codec(lambda role: role.value, AdminRole)
ACTION = Codec(lambda action: action.value, Action)
OUTCOME = Codec(lambda outcome: outcome.value, Outcome)


@dataclass(frozen=True, slots=True)
class Column:
    """One column; `default` only where a row may be written without it."""

    name: str
    type: Type
    nullable: bool = False
    default: bool | int | str | None = None
    codec: Codec | None = None


@dataclass(frozen=True, slots=True)
class Index:
    """A secondary index."""

    name: str
    columns: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Table:
    """A table; `without_rowid` is SQLite's storage choice (PostgreSQL has no such thing)."""

    name: str
    columns: tuple[Column, ...]
    primary_key: str
    indexes: tuple[Index, ...] = ()
    without_rowid: bool = False

    @property
    def names(self) -> tuple[str, ...]:
        """Every column, in order: what a SELECT returns."""
        return tuple(c.name for c in self.columns)

    @property
    def written(self) -> tuple[Column, ...]:
        """The columns an INSERT supplies (the database assigns SERIAL keys)."""
        return tuple(c for c in self.columns if c.type is not Type.SERIAL)


CLIENTS = Table(
    "clients",
    (
        Column("client_id", Type.TEXT),
        Column("name", Type.TEXT),
        Column("secret_hash", Type.TEXT),
        Column("scopes", Type.TEXT, codec=SCOPES),
        Column("audiences", Type.TEXT, codec=AUDIENCES),
        Column("can_introspect", Type.BOOLEAN, codec=FLAG),
        Column("token_ttl", Type.INTEGER),
        Column("disabled", Type.BOOLEAN, default=False, codec=FLAG),
        Column("created_at", Type.INTEGER),
        Column("secret_rotated_at", Type.INTEGER),
        # Added by migration 2 (rotation with grace, RFC 7591/7592 registration).
        Column("previous_secret_hash", Type.TEXT, nullable=True),
        Column("previous_secret_expires_at", Type.INTEGER, nullable=True),
        Column("registration_token_hash", Type.TEXT, nullable=True),
        Column("auth_method", Type.TEXT, default="client_secret_basic"),
        # Added by migration 3 (private_key_jwt, RFC 7523 §2.2).
        Column("jwks", Type.TEXT, nullable=True),
        Column("jwks_uri", Type.TEXT, nullable=True),
        # Added by migration 5 (RFC 9449 §5.2 `dpop_bound_access_tokens`).
        Column("dpop_bound_access_tokens", Type.BOOLEAN, default=False, codec=FLAG),
    ),
    primary_key="client_id",
    # Looked up by primary key only: WITHOUT ROWID keeps each row in the key's B-tree, one
    # search per lookup instead of key index, then rowid table.
    without_rowid=True,
)

# What `update_client` replaces: the metadata, not the secrets, the disabled flag or times.
CLIENT_METADATA = (
    "name", "scopes", "audiences", "can_introspect", "token_ttl", "registration_token_hash",
    "auth_method", "jwks", "jwks_uri", "dpop_bound_access_tokens",
)  # fmt: skip

TOKENS = Table(
    "tokens",
    (
        # Migration 3: the digest's 32 bytes, not 64 hex characters (the key, and so the primary
        # key index, is ~40% of a row: measured 300 -> see README bytes per token).
        Column("token_hash", Type.DIGEST, codec=DIGEST),
        Column("jti", Type.TEXT),
        Column("client_id", Type.TEXT),
        Column("scopes", Type.TEXT, codec=SCOPES),
        Column("audiences", Type.TEXT, codec=AUDIENCES),
        Column("issued_at", Type.INTEGER),
        Column("expires_at", Type.INTEGER),
        Column("revoked_at", Type.INTEGER, nullable=True),
        # Added by migration 5: the RFC 7638 thumbprint of the DPoP key (RFC 9449 §6), or NULL.
        Column("jkt", Type.TEXT, nullable=True),
    ),
    primary_key="token_hash",
    # No index on jti: 128 random bits need no uniqueness check, and every index on a random
    # key dirties one more page per insert (measured: 60 -> 35-44 us per row at 100k rows).
    indexes=(
        Index("tokens_client_id", ("client_id",)),
        Index("tokens_expires_at", ("expires_at",)),
    ),
    # A rowid table: inserts append and indexes hold rowids, ~2x faster than WITHOUT ROWID.
    without_rowid=False,
)

EVENTS = Table(
    "events",
    (
        Column("position", Type.SERIAL),
        Column("kind", Type.TEXT, codec=EVENT_KIND),
        Column("client_id", Type.TEXT),
        Column("token_hash", Type.TEXT, nullable=True),
        Column("occurred_at", Type.INTEGER),
    ),
    primary_key="position",
)

ADMIN_TOKENS = Table(
    "admin_tokens",
    (
        Column("token_hash", Type.TEXT),
        Column("token_id", Type.TEXT),
        Column("role", Type.TEXT, codec=ADMIN_ROLE),
        Column("name", Type.TEXT),
        Column("created_at", Type.INTEGER),
        Column("expires_at", Type.INTEGER),
        Column("revoked_at", Type.INTEGER, nullable=True),
    ),
    primary_key="token_hash",
    without_rowid=True,
)

AUDIT = Table(
    "audit",
    (
        Column("position", Type.SERIAL),
        Column("occurred_at", Type.INTEGER),
        Column("actor", Type.TEXT),
        Column("action", Type.TEXT, codec=ACTION),
        Column("outcome", Type.TEXT, codec=OUTCOME),
        Column("client_id", Type.TEXT, nullable=True),
        Column("target", Type.TEXT, nullable=True),
        Column("detail", Type.TEXT),
    ),
    primary_key="position",
    indexes=(
        Index("audit_client_id", ("client_id",)),
        Index("audit_occurred_at", ("occurred_at",)),
    ),
)

# RFC 7523 §3 item 7: the `jti` of every client assertion seen, as SHA-256 of (client id, jti)
# (`client_assertion.replay_key`), kept until the assertion expires, so a replay is refused
# by every replica sharing the database. Added by migration 3.
ASSERTIONS = Table(
    "assertions",
    (
        Column("key_hash", Type.TEXT),
        Column("expires_at", Type.INTEGER),
    ),
    primary_key="key_hash",
    indexes=(Index("assertions_expires_at", ("expires_at",)),),
    without_rowid=True,  # looked up by key only; two B-trees per row instead of three
)

# Secrets every replica and worker must share, created once by whichever asks first (the DPoP
# nonce key, RFC 9449 §8: a nonce one replica issues is accepted by every other). Migration 5.
SECRETS = Table(
    "secrets",
    (
        Column("name", Type.TEXT),
        Column("value", Type.TEXT),
        Column("created_at", Type.INTEGER),
    ),
    primary_key="name",
    without_rowid=True,
)

# RFC 9701 §5: the server's own signing keys (`core.signing_keys`); the private JWK only sealed
# under a key-encryption key that is not in the database. A handful of rows, read whole.
SIGNING_KEYS = Table(
    "signing_keys",
    (
        Column("kid", Type.TEXT),
        Column("alg", Type.TEXT),
        Column("public_jwk", Type.TEXT),
        Column("sealed_private", Type.TEXT),
        Column("created_at", Type.INTEGER),
        Column("active_at", Type.INTEGER),
        Column("retire_at", Type.INTEGER, nullable=True),
    ),
    primary_key="kid",
    without_rowid=True,
)

TABLES = (CLIENTS, TOKENS, EVENTS, ADMIN_TOKENS, AUDIT, ASSERTIONS, SECRETS, SIGNING_KEYS)


@dataclass(frozen=True, slots=True)
class Dialect:
    """What differs between the SQL of two databases, as far as tokengate uses it."""

    name: str
    placeholder: str
    types: dict[Type, str]
    serial_key: str  # the whole column definition after the name of a SERIAL primary key
    false: str
    true: str
    rowid: bool  # tables have a hidden rowid unless declared WITHOUT ROWID (SQLite)

    def create_statements(self, tables: Iterable[Table] = TABLES) -> list[str]:
        """`CREATE ... IF NOT EXISTS` for each table and its indexes (idempotent)."""
        statements: list[str] = []
        for table in tables:
            statements.append(self._create_table(table))
            statements.extend(self.create_index(table, index) for index in table.indexes)
        return statements

    def create_index(self, table: Table, index: Index) -> str:
        """The `CREATE INDEX IF NOT EXISTS` statement of one index."""
        columns = ", ".join(index.columns)
        return f"CREATE INDEX IF NOT EXISTS {index.name} ON {table.name} ({columns})"

    def add_column(self, table: Table, name: str) -> str:
        """`ALTER TABLE t ADD COLUMN ...` for one of the table's (latest) columns."""
        column = next(c for c in table.columns if c.name == name)
        return f"ALTER TABLE {table.name} ADD COLUMN {self._column(table, column)}"

    def update_client_metadata(self) -> str:
        """`UPDATE clients SET <metadata> = ..., disabled = false WHERE client_id = ...`."""
        sets = ", ".join(f"{name} = {self.placeholder}" for name in CLIENT_METADATA)
        return (
            f"UPDATE clients SET {sets}, disabled = {self.false}"  # noqa: S608 (identifiers)
            f" WHERE client_id = {self.placeholder}"
        )

    def params(self, count: int) -> str:
        """`?, ?, ?` or `%s, %s, %s`."""
        return ", ".join([self.placeholder] * count)

    def insert(self, table: Table) -> str:
        """`INSERT INTO t (written columns) VALUES (placeholders)`."""
        return f"{insert_into(table)} VALUES ({self.params(len(table.written))})"

    def _create_table(self, table: Table) -> str:
        columns = ", ".join(self._column(table, c) for c in table.columns)
        suffix = " WITHOUT ROWID" if table.without_rowid and self.rowid else ""
        return f"CREATE TABLE IF NOT EXISTS {table.name} ({columns}){suffix}"

    def _column(self, table: Table, column: Column) -> str:
        if column.type is Type.SERIAL:
            return f"{column.name} {self.serial_key}"
        parts = [column.name, self.types[column.type]]
        if column.name == table.primary_key:
            parts.append("PRIMARY KEY")
        elif not column.nullable:
            parts.append("NOT NULL")
        if column.default is not None:
            parts += ["DEFAULT", self._literal(column.default)]
        return " ".join(parts)

    def _literal(self, value: bool | int | str) -> str:
        if isinstance(value, bool):
            return self.true if value else self.false
        if isinstance(value, str):  # only this module's constants, never input
            return "'" + value.replace("'", "''") + "'"
        return str(value)


SQLITE = Dialect(
    "sqlite",
    "?",
    {Type.TEXT: "TEXT", Type.INTEGER: "INTEGER", Type.BOOLEAN: "INTEGER", Type.DIGEST: "BLOB"},
    # AUTOINCREMENT: a position is never reused, even after the newest event is deleted.
    serial_key="INTEGER PRIMARY KEY AUTOINCREMENT",
    false="0",
    true="1",
    rowid=True,
)

POSTGRES = Dialect(
    "postgres",
    "%s",
    {Type.TEXT: "TEXT", Type.INTEGER: "BIGINT", Type.BOOLEAN: "BOOLEAN", Type.DIGEST: "BYTEA"},
    serial_key="BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
    false="FALSE",
    true="TRUE",
    rowid=False,
)


def column_list(columns: Iterable[Column]) -> str:
    """`a, b, c`."""
    return ", ".join(c.name for c in columns)


def select(table: Table) -> str:
    """`SELECT every column FROM t`, the order `rows` decodes."""
    # S608: the text is built from this module's identifiers, never from input.
    return f"SELECT {column_list(table.columns)} FROM {table.name}"  # noqa: S608


# Both dialects: the distinct scope strings of the clients (few: clients share scope sets).
CLIENT_SCOPES = f"SELECT DISTINCT scopes FROM {CLIENTS.name}"  # noqa: S608 (identifiers only)


def scopes_union(texts: Iterable[str]) -> frozenset[str]:
    """The scopes of every stored scope string (`CLIENT_SCOPES`'s rows), as one set."""
    return frozenset(scope for text in texts for scope in SCOPES.decode(text))


def insert_into(table: Table) -> str:
    """`INSERT INTO t (written columns)`, to which a VALUES or SELECT clause is added."""
    return f"INSERT INTO {table.name} ({column_list(table.written)})"
