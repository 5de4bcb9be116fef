"""`tokengate keys list | rotate` and where the key-encryption key comes from."""

from __future__ import annotations

import asyncio
import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.support.postgres import fresh_database
from tokengate.cli import main
from tokengate.cli.key_encryption import KEK_ENV, resolve_kek
from tokengate.core import key_sealing
from tokengate.core.audit import Action, AuditEntry
from tokengate.storage import open_store


def keys(database: str, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run `tokengate keys ...` in process; (exit code, output)."""
    result = CliRunner().invoke(main, ["keys", *args, "--database", database], env=env)
    return result.exit_code, result.output


def audit(database: str) -> list[AuditEntry]:
    """The audit log of the database."""

    async def read() -> list[AuditEntry]:
        store = open_store(database)
        await store.open()
        try:
            return await store.audit_after()
        finally:
            await store.close()

    return asyncio.run(read())


@pytest.fixture
def postgres() -> Iterator[str]:
    """A fresh PostgreSQL database."""
    with fresh_database() as url:
        yield url


def test_rotate_then_list_on_sqlite(tmp_path: Path) -> None:
    """A fresh SQLite database gets a 0600 KEK file beside it; rotation is listed and audited."""
    database = f"sqlite:///{tmp_path / 't.db'}"
    assert keys(database, "list") == (0, "")
    code, out = keys(database, "rotate", "--delay", "0", "--alg", "ES256", "--json")
    assert code == 0, out
    made = json.loads(out)
    assert (made["alg"], made["state"]) == ("ES256", "signing")
    kek_file = tmp_path / "t.db.kek"
    assert stat.S_IMODE(kek_file.stat().st_mode) == 0o600
    code, out = keys(database, "rotate", "--json")
    pending = json.loads(out)
    assert pending["state"] == "pending"
    code, out = keys(database, "list", "--json")
    views = [json.loads(line) for line in out.splitlines()]
    assert [(v["kid"], v["state"]) for v in views] == [
        (made["kid"], "signing"),
        (pending["kid"], "pending"),
    ]
    assert views[0]["retire_at"] == pending["active_at"] + 3600
    assert "sealed" not in out
    assert '"d"' not in out
    assert [e.action for e in audit(database)] == [Action.SIGNING_KEY_ROTATED] * 2


def test_rotate_refuses_another_kek(tmp_path: Path) -> None:
    """A KEK that does not open the current key is refused (replicas could not use the new one)."""
    database = f"sqlite:///{tmp_path / 't.db'}"
    assert keys(database, "rotate", "--delay", "0")[0] == 0
    other = key_sealing.new_kek()
    code, out = keys(database, "rotate", env={KEK_ENV: other})
    assert code == 1
    assert "same one" in out


@pytest.mark.postgres
def test_postgres_needs_a_kek(postgres: str, tmp_path: Path) -> None:
    """PostgreSQL: no key is invented for the replicas; given one (file or env), it rotates."""
    code, out = keys(postgres, "rotate")
    assert code == 2
    assert KEK_ENV in out
    (kek := tmp_path / "kek").write_text(key_sealing.new_kek())
    assert keys(postgres, "rotate", "--key-encryption-key-file", str(kek))[0] == 0
    assert keys(postgres, "rotate", env={KEK_ENV: kek.read_text()})[0] == 0


def test_kek_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """File, then environment, then the file beside SQLite; memory gets a random one."""
    monkeypatch.delenv(KEK_ENV, raising=False)
    given = key_sealing.new_kek()
    (path := tmp_path / "kek").write_text(given + "\n")
    assert resolve_kek("postgresql://x/y", path) == key_sealing.parse_kek(given)
    assert resolve_kek("postgresql://x/y", None) is None
    monkeypatch.setenv(KEK_ENV, given)
    assert resolve_kek("postgresql://x/y", None) == key_sealing.parse_kek(given)
    monkeypatch.delenv(KEK_ENV)
    first = resolve_kek(f"sqlite:///{tmp_path / 'a.db'}", None)
    assert first == resolve_kek(f"sqlite:///{tmp_path / 'a.db'}", None)
    assert resolve_kek("memory://", None) != resolve_kek("memory://", None)
    path.write_text("not a key")
    with pytest.raises(Exception, match="32 bytes"):
        resolve_kek("memory://", path)
