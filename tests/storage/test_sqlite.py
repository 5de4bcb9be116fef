"""SQLite specifics: what lands on disk, its settings, `:memory:`, and several processes."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tokengate.core.credentials import hash_value, new_access_token, new_client_secret, new_jti
from tokengate.core.decoys import DECOY_CLIENT, DECOY_TOKEN
from tokengate.core.models import AccessToken, Client
from tokengate.storage.base import StorageUnavailable
from tokengate.storage.migrations import latest_version
from tokengate.storage.sqlite import SQLiteStore

SCHEMA_VERSION = latest_version()

pytestmark = pytest.mark.anyio

NOW = 1_700_000_000


def token_for(raw: str, client_id: str = "tgc_a") -> AccessToken:
    """The record the token endpoint stores for the raw token `raw`."""
    return AccessToken(
        hash_value(raw), new_jti(), client_id, frozenset({"read"}), (), NOW, NOW + 60
    )


def client_for(secret: str, client_id: str = "tgc_a") -> Client:
    """The record the CLI stores for a client whose secret is `secret`."""
    return Client(client_id, "demo", hash_value(secret), frozenset({"read"}))


def dump(path: Path) -> bytes:
    """The raw bytes of the database file and its WAL, as a stolen backup would hold them."""
    files = [path, path.with_name(path.name + "-wal")]
    return b"".join(f.read_bytes() for f in files if f.exists())


async def test_database_files_hold_hashes_never_raw_tokens_or_secrets(tmp_path: Path) -> None:
    """The .db and -wal bytes contain the SHA-256 hashes but no raw token or client secret."""
    path = tmp_path / "tokengate.db"
    secrets_ = [new_client_secret() for _ in range(3)]
    tokens = [new_access_token() for _ in range(50)]
    store = SQLiteStore(str(path))
    await store.open()
    for i, secret in enumerate(secrets_):
        await store.add_client(client_for(secret, f"tgc_{i}"))
    await asyncio.gather(*(store.add_token(token_for(raw)) for raw in tokens))
    await store.revoke_token(hash_value(tokens[0]), NOW + 1)
    await store.set_client_secret("tgc_0", hash_value(new_client_secret()), NOW + 2)
    snapshots = [dump(path)]  # while open: the records are still in the WAL
    await store.close()
    snapshots.append(dump(path))  # after close: checkpointed into the main file
    for data in snapshots:
        assert bytes.fromhex(hash_value(tokens[-1])) in data  # the dump really holds the records
        assert b"tgat_" not in data
        assert b"tgcs_" not in data
        for raw in (*secrets_, *tokens):
            assert raw.encode() not in data


async def test_file_uses_wal_full_sync_and_records_schema_version(tmp_path: Path) -> None:
    """The file is in WAL mode, commits fsync (synchronous=FULL), user_version is set."""
    path = tmp_path / "tokengate.db"
    store = SQLiteStore(str(path))
    await store.open()
    try:
        writer = store._writer  # the connection that commits; synchronous is per connection
        assert writer is not None
        assert writer.execute("PRAGMA synchronous").fetchone() == (2,)  # 2 = FULL
        with contextlib.closing(sqlite3.connect(path)) as other:
            assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)
            assert other.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    finally:
        await store.close()


async def test_newer_schema_version_is_refused(tmp_path: Path) -> None:
    """Opening a file written by a newer tokengate fails clearly instead of corrupting it."""
    path = tmp_path / "tokengate.db"
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    store = SQLiteStore(str(path))
    with pytest.raises(RuntimeError, match="newer than this tokengate"):
        await store.open()


async def test_memory_path_is_one_private_database() -> None:
    """`:memory:` works on one connection: concurrent writes, reads and events all agree."""
    store = SQLiteStore(":memory:")
    await store.open()
    try:
        tokens = [token_for(new_access_token()) for _ in range(100)]
        await asyncio.gather(*(store.add_token(t) for t in tokens))
        assert await asyncio.gather(*(store.get_token(t.token_hash) for t in tokens)) == tokens
        assert await store.revoke_token(tokens[0].token_hash, NOW) is True
        assert await store.last_position() == 1
    finally:
        await store.close()


async def test_closed_store_refuses_calls(tmp_path: Path) -> None:
    """Calls on a store that is not open raise RuntimeError instead of misbehaving."""
    store = SQLiteStore(str(tmp_path / "tokengate.db"))
    with pytest.raises(RuntimeError, match="not open"):
        await store.get_token("0" * 64)
    with pytest.raises(RuntimeError, match="not open"):
        await store.add_token(token_for(new_access_token()))


WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from tokengate.core.credentials import hash_value, new_access_token, new_jti
    from tokengate.core.models import AccessToken
    from tokengate.storage.sqlite import SQLiteStore

    async def main(path, n):
        store = SQLiteStore(path)
        await store.open()
        tokens = [
            AccessToken(hash_value(new_access_token()), new_jti(), "tgc_p", frozenset(), (), 0, 1)
            for _ in range(n)
        ]
        await asyncio.gather(*(store.add_token(t) for t in tokens))
        await store.revoke_token(tokens[0].token_hash, 1)
        await store.close()

    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
    """
)


def test_processes_sharing_one_new_file_never_see_database_locked(tmp_path: Path) -> None:
    """Four processes creating the schema and writing at once on one new file all succeed."""
    path = tmp_path / "shared.db"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), "200"], stderr=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    errors = [proc.communicate(timeout=60)[1] for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * 4, errors
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT COUNT(*) FROM tokens").fetchone() == (800,)
        assert conn.execute("SELECT COUNT(*) FROM events").fetchone() == (4,)


async def test_a_write_lock_held_past_busy_timeout_is_storage_unavailable(tmp_path: Path) -> None:
    """Another process holding the write lock too long: StorageUnavailable, the loop not blocked."""
    path = tmp_path / "tokengate.db"
    store = SQLiteStore(str(path), busy_timeout=0.2)
    await store.open()
    blocker = sqlite3.connect(path, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.ensure_future(tick())
        with pytest.raises(StorageUnavailable) as raised:
            await store.add_token(token_for(new_access_token()))
        ticker.cancel()
        assert isinstance(raised.value.__cause__, sqlite3.OperationalError)
        assert ticks >= 5  # the wait was asyncio.sleep backoff, not a blocking busy handler
        blocker.execute("ROLLBACK")
        await store.add_token(token := token_for(new_access_token()))  # works again
        assert await store.get_token(token.token_hash) == token
    finally:
        blocker.close()
        await store.close()


async def test_lookups_of_unknown_keys_return_none_never_the_decoy(tmp_path: Path) -> None:
    """A miss reads the decoy row (for timing) but answers None; the decoy's own keys too."""
    store = SQLiteStore(str(tmp_path / "decoy.db"))
    await store.open()
    try:
        assert await store.get_client("tgc_unknown") is None
        assert await store.get_client(DECOY_CLIENT.client_id) is None
        assert await store.get_token(hash_value("unknown")) is None
        assert await store.get_token(DECOY_TOKEN.token_hash) is None
    finally:
        await store.close()
