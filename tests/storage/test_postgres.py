"""PostgreSQL specifics: NOTIFY on revocation, URL forms, schemas, timeouts, versioning."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import psycopg
import psycopg_pool
import pytest

from tests.support.postgres import fresh_database
from tokengate.core.credentials import hash_value, new_access_token, new_jti
from tokengate.core.models import AccessToken, Client
from tokengate.storage.base import StorageUnavailable
from tokengate.storage.migrations import latest_version
from tokengate.storage.postgres import PostgresStore
from tokengate.storage.postgres.sql import NOTIFY_CHANNEL
from tokengate.storage.postgres.store import _conninfo

SCHEMA_VERSION = latest_version()

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

NOW = 1_700_000_000


@pytest.fixture
def url() -> Iterator[str]:
    """The URL of a fresh, empty database."""
    with fresh_database() as fresh:
        yield fresh


def make_token(client_id: str = "tgc_a") -> AccessToken:
    """A token record for `client_id`."""
    return AccessToken(
        hash_value(new_access_token()), new_jti(), client_id, frozenset({"read"}), (), NOW, NOW + 60
    )


async def test_every_revocation_kind_notifies_its_position(url: str) -> None:
    """Each event-emitting write NOTIFYs `tokengate_events` with its position, on commit."""
    store = PostgresStore(url)
    await store.open()
    listener = await psycopg.AsyncConnection.connect(url, autocommit=True)
    try:
        await listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
        await store.add_client(Client("tgc_a", "a", "0" * 64, frozenset()))
        await store.add_client(Client("tgc_b", "b", "0" * 64, frozenset()))
        token = make_token()
        await store.add_token(token)
        await store.revoke_token(token.token_hash, NOW)
        await store.set_client_secret("tgc_a", "1" * 64, NOW)
        await store.disable_client("tgc_a", NOW)
        await store.delete_client("tgc_b", NOW)
        payloads = [n.payload async for n in listener.notifies(timeout=5.0, stop_after=4)]
        positions = [str(e.position) for e in await store.events_after(0)]
        assert payloads == positions
        assert len(positions) == 4
    finally:
        await listener.close()
        await store.close()


async def test_postgres_scheme_alias_is_accepted(url: str) -> None:
    """A `postgres://` URL works like `postgresql://`."""
    store = PostgresStore(url.replace("postgresql://", "postgres://", 1))
    await store.open()
    try:
        token = make_token()
        await store.add_token(token)
        assert await store.get_token(token.token_hash) == token
    finally:
        await store.close()


async def test_search_path_option_selects_the_schema(url: str) -> None:
    """`?options=-csearch_path%3Dtg` puts the tables in the existing schema `tg`."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute("CREATE SCHEMA tg")
    store = PostgresStore(url + "?options=-csearch_path%3Dtg")
    await store.open()
    await store.close()
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute(
            "SELECT table_schema FROM information_schema.tables WHERE table_name = 'tokens'"
        )
        assert await cur.fetchall() == [("tg",)]


async def test_newer_schema_version_is_refused(url: str) -> None:
    """Opening a database written by a newer tokengate fails clearly."""
    store = PostgresStore(url)
    await store.open()
    await store.close()
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(
            "UPDATE tokengate_meta SET value = %s WHERE key = 'schema_version'",
            (str(SCHEMA_VERSION + 1),),
        )
    with pytest.raises(RuntimeError, match="newer than this tokengate"):
        await PostgresStore(url).open()


async def test_unreachable_server_fails_fast() -> None:
    """open() on a port nobody listens on raises within seconds instead of hanging."""
    store = PostgresStore("postgresql://postgres@127.0.0.1:9/none", connect_timeout=1.0)
    started = time.monotonic()
    with pytest.raises(StorageUnavailable) as raised:
        await store.open()
    assert isinstance(raised.value.__cause__, psycopg_pool.PoolTimeout)
    assert time.monotonic() - started < 10


def test_session_timeouts_are_added_unless_the_url_sets_them() -> None:
    """Every session gets statement and idle-in-transaction timeouts; URL options win."""
    info = _conninfo("postgresql://u@h/db?options=-csearch_path%3Dtg", 5.0, 2.5)
    assert "search_path=tg" in info
    assert "statement_timeout=2500" in info
    assert "connect_timeout=5" in info
    own = _conninfo("postgres://u@h/db?options=-cstatement_timeout%3D99", 5.0, 2.5)
    assert "statement_timeout=99" in own
    assert "statement_timeout=2500" not in own


async def test_wait_for_change_wakes_on_another_stores_event(url: str) -> None:
    """LISTEN: a revocation committed by another store wakes `wait_for_change` at once."""
    writer, follower = PostgresStore(url), PostgresStore(url)
    await writer.open()
    await follower.open()
    try:
        await follower.wait_for_change(0.01)  # establishes the LISTEN connection
        await writer.add_client(Client("tgc_a", "a", "0" * 64, frozenset()))
        token = make_token()
        await writer.add_token(token)
        waiting = asyncio.ensure_future(follower.wait_for_change(10.0))
        await asyncio.sleep(0.05)
        started = time.monotonic()
        await writer.revoke_token(token.token_hash, NOW)
        await asyncio.wait_for(waiting, timeout=5.0)
        assert time.monotonic() - started < 1.0
        timed = time.monotonic()
        await follower.wait_for_change(0.2)  # nothing new: returns after the timeout
        assert time.monotonic() - timed >= 0.15
    finally:
        await writer.close()
        await follower.close()


async def test_a_lost_connection_is_storage_unavailable(url: str) -> None:
    """A pooled connection the server killed fails as StorageUnavailable; the next call works."""
    store = PostgresStore(url, min_size=1, max_size=1)
    await store.open()
    try:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as admin:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        with pytest.raises(StorageUnavailable) as raised:
            await store.get_token("0" * 64)
        assert isinstance(raised.value.__cause__, psycopg.OperationalError)
        assert await store.get_token("0" * 64) is None  # the pool replaced the connection
    finally:
        await store.close()
