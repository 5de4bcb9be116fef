"""Schema versions: databases of the first release open, upgrade and work; steps apply; newer is
refused."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.support.postgres import fresh_database
from tokengate.core import audit
from tokengate.core.credentials import hash_value, new_access_token, new_jti
from tokengate.core.models import AccessToken, AdminRole, AdminToken, EventKind
from tokengate.storage import migrations
from tokengate.storage.base import Store
from tokengate.storage.migrations import Migration, SchemaTooNew
from tokengate.storage.postgres import PostgresStore
from tokengate.storage.postgres.migrate import migrate as pg_migrate
from tokengate.storage.schema import POSTGRES, SQLITE, TOKENS, Index
from tokengate.storage.sqlite import SQLiteStore
from tokengate.storage.sqlite.connect import migrate as sqlite_migrate

pytestmark = pytest.mark.anyio

NOW = 1_700_000_000
SECRET_HASH = "5" * 64
TOKEN_HASH = "7" * 64

# -- frozen: the DDL and version markers of the first release (v1), copied verbatim ----------

RELEASE_1_SQLITE = (
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
    )""",
    "CREATE INDEX IF NOT EXISTS tokens_client_id ON tokens (client_id)",
    "CREATE INDEX IF NOT EXISTS tokens_expires_at ON tokens (expires_at)",
    """CREATE TABLE IF NOT EXISTS events (
        position INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,
        client_id TEXT NOT NULL, token_hash TEXT, occurred_at INTEGER NOT NULL
    )""",
    "PRAGMA user_version = 1",
)
RELEASE_1_POSTGRES = (
    "CREATE TABLE IF NOT EXISTS tokengate_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
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
    "INSERT INTO tokengate_meta (key, value) VALUES ('schema_version', '1')",
)
# Rows as the first release wrote them: a client, one of its tokens, and its rotation event.
RELEASE_1_ROWS = (
    "INSERT INTO clients VALUES ('tgc_old', 'Old', '{secret}', 'read write',"
    " '[\"https://api.example\"]', {true}, 600, {false}, 1, 1)",
    "INSERT INTO tokens VALUES ('{token}', 'jti-old', 'tgc_old', 'read',"
    " '[\"https://api.example\"]', 10, 9999999999, NULL)",
    "INSERT INTO events (kind, client_id, token_hash, occurred_at)"
    " VALUES ('secret_rotated', 'tgc_old', NULL, 5)",
)

# Keys migration 3 cannot turn into a digest (no lookup ever matched them): it drops them.
NOT_DIGESTS = ("7" * 63, "A" * 64, "legacy-" + "7" * 57)
JUNK_ROWS = tuple(
    f"INSERT INTO tokens VALUES ('{key}', 'jti-junk', 'tgc_old', 'read', '[]', 10, 20, NULL)"
    for key in NOT_DIGESTS
)

# A step the tests add on top of the real list, to see one applied.
LATEST = migrations.latest_version()
NEXT = LATEST + 1
JTI_INDEX = Index("tokens_jti_test", ("jti",))
STEP_NEXT = (
    *migrations.MIGRATIONS,
    Migration(NEXT, "test step", lambda d: [d.create_index(TOKENS, JTI_INDEX)]),
)
TOO_NEW = rf"v{NEXT} is newer than this tokengate \(v{LATEST}\)"


def old_rows(true: str, false: str) -> list[str]:
    """The first release's rows in a dialect's boolean literals."""
    fields = {"secret": SECRET_HASH, "token": TOKEN_HASH, "true": true, "false": false}
    return [statement.format(**fields) for statement in RELEASE_1_ROWS]


def sqlite_release_1(path: Path) -> None:
    """A SQLite file as the first release left it, holding its rows."""
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        for statement in (*RELEASE_1_SQLITE, *old_rows("1", "0"), *JUNK_ROWS):
            conn.execute(statement)


async def postgres_release_1(url: str) -> None:
    """A PostgreSQL database as the first release left it, holding its rows."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        for statement in (*RELEASE_1_POSTGRES, *old_rows("TRUE", "FALSE"), *JUNK_ROWS):
            await conn.execute(statement)  # type: ignore[arg-type]


@pytest.fixture
def pg_url() -> Iterator[str]:
    """The URL of a fresh, empty PostgreSQL database."""
    with fresh_database() as url:
        yield url


async def check_old_data_and_everything_works(store: Store) -> None:
    """The release-1 rows read back (new columns at their defaults), and issue, get, revoke,
    events_after, rotation with grace, admin tokens and the audit log all work."""
    client = await store.get_client("tgc_old")
    assert client is not None
    assert client.scopes == frozenset({"read", "write"})
    assert client.audiences == ("https://api.example",)
    assert (client.can_introspect, client.disabled) == (True, False)
    assert (client.previous_secret_hash, client.registration_token_hash) == (None, None)
    assert client.auth_method == "client_secret_basic"
    old = await store.get_token(TOKEN_HASH)
    assert old is not None
    assert (old.jti, old.scopes, old.revoked_at) == ("jti-old", frozenset({"read"}), None)
    [event] = await store.events_after(0)
    assert (event.kind, event.client_id) == (EventKind.SECRET_ROTATED, "tgc_old")
    new = AccessToken(
        hash_value(new_access_token()), new_jti(), "tgc_old", frozenset({"read"}), (), NOW, NOW + 60
    )
    await store.add_token(new, secret_hash=SECRET_HASH)
    assert await store.get_token(new.token_hash) == new
    assert await store.revoke_token(TOKEN_HASH, NOW) is True
    events = await store.events_after(event.position)
    assert [(e.kind, e.token_hash) for e in events] == [(EventKind.TOKEN_REVOKED, TOKEN_HASH)]
    assert await store.last_position() == events[0].position
    await check_new_features_work(store)


async def check_new_features_work(store: Store) -> None:
    """What migration 2 added: a rotation with grace, an admin token, audited changes."""
    note = audit.entry(audit.Action.CLIENT_SECRET_ROTATED, "cli", NOW, client_id="tgc_old")
    assert await store.set_client_secret("tgc_old", "6" * 64, NOW, grace=60, audit=note)
    rotated = await store.get_client("tgc_old")
    assert rotated is not None
    assert rotated.previous_secret_at(NOW) == SECRET_HASH
    admin = AdminToken("8" * 64, "tgat_id", AdminRole.REGISTER, "ci", NOW, NOW + 60)
    await store.add_admin_token(admin)
    assert await store.get_admin_token(admin.token_hash) == admin
    [logged] = await store.audit_after(0)
    assert (logged.action, logged.client_id) == (audit.Action.CLIENT_SECRET_ROTATED, "tgc_old")


def sqlite_shape(path: Path) -> list[object]:
    """Tables, their columns, primary keys, rowid choice and indexes, as SQLite reports them."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        # (schema, name, type, ncol, without rowid, strict); sqlite_sequence means AUTOINCREMENT
        tables = conn.execute("PRAGMA table_list").fetchall()
        shape: list[object] = sorted(tables)
        for name in sorted(t[1] for t in tables):
            shape.append(conn.execute(f"PRAGMA table_info({name})").fetchall())
            shape.append(sorted(conn.execute(f"PRAGMA index_list({name})").fetchall()))
        indexes = "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'index' ORDER BY 1"
        shape.append([r for r in conn.execute(indexes).fetchall() if r[2] is not None])
        return shape


async def postgres_shape(url: str) -> list[object]:
    """Columns (types, nullability, defaults, identity kind) and index definitions."""
    columns = (
        "SELECT table_name, column_name, data_type, is_nullable, column_default, is_identity,"
        " identity_generation"
        " FROM information_schema.columns WHERE table_schema = current_schema()"
        " ORDER BY table_name, ordinal_position"
    )
    indexes = "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() ORDER BY 1"
    async with await psycopg.AsyncConnection.connect(url) as conn:
        return [await (await conn.execute(q)).fetchall() for q in (columns, indexes)]


# -- SQLite ---------------------------------------------------------------------------------


async def test_sqlite_release_1_database_opens_and_works(tmp_path: Path) -> None:
    """A file the first release wrote (user_version 1) keeps its data and works as before."""
    path = tmp_path / "old.db"
    sqlite_release_1(path)
    store = SQLiteStore(str(path))
    await store.open()
    try:
        await check_old_data_and_everything_works(store)
    finally:
        await store.close()


async def test_sqlite_upgraded_release_1_schema_is_the_new_schema(tmp_path: Path) -> None:
    """A release-1 file, migrated, has the tables, columns, keys, rowid choice and indexes the
    generated DDL gives an empty file."""
    sqlite_release_1(old := tmp_path / "old.db")
    for path in (old, new := tmp_path / "new.db"):
        store = SQLiteStore(str(path))
        await store.open()
        await store.close()
    assert sqlite_shape(new) == sqlite_shape(old)


def test_sqlite_step_applies_once_and_records_its_version(tmp_path: Path) -> None:
    """Every step runs on a release-1 file, is recorded, and is not run again."""
    sqlite_release_1(path := tmp_path / "old.db")
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        sqlite_migrate(conn, STEP_NEXT)
        sqlite_migrate(conn, STEP_NEXT)  # already at the newest: nothing to do
        assert conn.execute("PRAGMA user_version").fetchone() == (NEXT,)
        names = {row[1] for row in conn.execute("PRAGMA index_list(tokens)").fetchall()}
        assert JTI_INDEX.name in names
        assert conn.execute("SELECT COUNT(*) FROM tokens").fetchone() == (1,)  # junk dropped


async def test_sqlite_database_of_a_newer_version_is_refused(tmp_path: Path) -> None:
    """After a step this code does not know, the store refuses to open the file."""
    sqlite_release_1(path := tmp_path / "old.db")
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        sqlite_migrate(conn, STEP_NEXT)
    with pytest.raises(SchemaTooNew, match=TOO_NEW):
        await SQLiteStore(str(path)).open()


async def test_sqlite_v3_stores_keys_as_32_bytes(tmp_path: Path) -> None:
    """Migration 3: the release-1 hex key is now its 32 bytes; keys no lookup could match are
    gone; the token still reads back under its hex hash."""
    sqlite_release_1(path := tmp_path / "old.db")
    store = SQLiteStore(str(path))
    await store.open()
    try:
        assert await store.get_token(TOKEN_HASH) is not None
    finally:
        await store.close()
    with contextlib.closing(sqlite3.connect(path)) as conn:
        keys = "SELECT typeof(token_hash), length(token_hash), hex(token_hash) FROM tokens"
        assert conn.execute(keys).fetchall() == [("blob", 32, TOKEN_HASH.upper())]


# -- PostgreSQL -----------------------------------------------------------------------------


@pytest.mark.postgres
async def test_postgres_v3_stores_keys_as_32_bytes(pg_url: str) -> None:
    """Migration 3: the release-1 hex key is now a 32-byte BYTEA; keys no lookup could match
    are gone; the token still reads back under its hex hash."""
    await postgres_release_1(pg_url)
    store = PostgresStore(pg_url)
    await store.open()
    try:
        assert await store.get_token(TOKEN_HASH) is not None
    finally:
        await store.close()
    async with await psycopg.AsyncConnection.connect(pg_url) as conn:
        keys = "SELECT pg_typeof(token_hash)::text, encode(token_hash, 'hex') FROM tokens"
        assert await (await conn.execute(keys)).fetchall() == [("bytea", TOKEN_HASH)]


@pytest.mark.postgres
async def test_postgres_release_1_database_opens_and_works(pg_url: str) -> None:
    """A database the first release wrote (schema_version '1') keeps its data and works."""
    await postgres_release_1(pg_url)
    store = PostgresStore(pg_url)
    await store.open()
    try:
        await check_old_data_and_everything_works(store)
    finally:
        await store.close()


@pytest.mark.postgres
async def test_postgres_upgraded_release_1_schema_is_the_new_schema(pg_url: str) -> None:
    """A release-1 database, migrated, has the columns, types, defaults and indexes the
    generated DDL gives an empty one."""
    await postgres_release_1(pg_url)
    store = PostgresStore(pg_url)
    await store.open()
    await store.close()
    old = await postgres_shape(pg_url)
    with fresh_database() as fresh:
        store = PostgresStore(fresh)
        await store.open()
        await store.close()
        assert await postgres_shape(fresh) == old


@pytest.mark.postgres
async def test_postgres_step_applies_once_and_records_its_version(pg_url: str) -> None:
    """Every step runs on a release-1 database, is recorded; then older code refuses it."""
    await postgres_release_1(pg_url)
    for _ in range(2):  # the second run finds the newest version and does nothing
        async with await psycopg.AsyncConnection.connect(pg_url) as conn, conn.transaction():
            await pg_migrate(conn, STEP_NEXT)
    async with await psycopg.AsyncConnection.connect(pg_url) as conn:
        meta = "SELECT value FROM tokengate_meta WHERE key = 'schema_version'"
        assert await (await conn.execute(meta)).fetchall() == [(str(NEXT),)]
        index = "SELECT 1 FROM pg_indexes WHERE indexname = %s"
        assert await (await conn.execute(index, (JTI_INDEX.name,))).fetchall() == [(1,)]
    with pytest.raises(SchemaTooNew, match=TOO_NEW):
        await PostgresStore(pg_url).open()


# -- the plan, without a database ------------------------------------------------------------


def test_plan_creates_the_latest_tables_in_an_empty_database() -> None:
    """Version 0 gets the current tables at once; the latest version gets nothing."""
    assert migrations.plan(0, SQLITE) == SQLITE.create_statements()
    assert migrations.plan(0, POSTGRES) == POSTGRES.create_statements()
    assert migrations.plan(migrations.latest_version(), SQLITE) == []


def test_plan_runs_only_the_steps_after_the_version_found() -> None:
    """From the latest version only the next step runs; from the next nothing does; past it the
    database is too new; from v1 every step runs, in order."""
    index = SQLITE.create_index(TOKENS, JTI_INDEX)
    assert migrations.plan(LATEST, SQLITE, STEP_NEXT) == [index]
    assert migrations.plan(NEXT, SQLITE, STEP_NEXT) == []
    with pytest.raises(SchemaTooNew):
        migrations.plan(NEXT + 1, SQLITE, STEP_NEXT)
    every = [s for m in migrations.MIGRATIONS for s in m.statements(SQLITE)]
    assert migrations.plan(1, SQLITE, STEP_NEXT) == [*every, index]


def test_the_real_migration_list_is_in_order() -> None:
    """The shipped steps number 2, 3, 4... with no gap; a gap is caught."""
    migrations.check_sequence()
    with pytest.raises(ValueError, match="migration versions"):
        migrations.check_sequence((Migration(3, "gap", lambda d: []),))
