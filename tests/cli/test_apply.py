"""`tokengate apply`: reconciling clients to a TOML file, on every durable backend, and every
refusal of a bad file."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.support.postgres import fresh_database
from tests.support.servers import TOKENGATE
from tokengate.cli import main
from tokengate.cli.apply import check_secret
from tokengate.core.credentials import hash_value
from tokengate.core.models import Client
from tokengate.storage import open_store

FILE = """
[[client]]
client_id = "billing"
name = "Billing"
scope = "invoices:read invoices:write"
audiences = ["https://api.example"]
introspect = false
token_ttl = 600
secret_env = "BILLING_SECRET"

[[client]]
client_id = "edge"
scope = ""
introspect = true
dpop_bound_access_tokens = true
secret_file = "{secret_file}"
"""


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database URL of each durable kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'apply.db'}"
        return
    with fresh_database() as url:
        yield url


@pytest.fixture
def declared(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """The example file, its secret file, and the environment holding the other secret."""
    (secret_file := tmp_path / "edge.secret").write_text(secrets.token_urlsafe(40) + "\n")
    (path := tmp_path / "clients.toml").write_text(FILE.format(secret_file=secret_file))
    return path, {"BILLING_SECRET": secrets.token_urlsafe(40)}


def apply(database: str, path: Path, env: dict[str, str], *extra: str) -> tuple[int, str]:
    """Run `tokengate apply` in process; (exit code, output)."""
    result = CliRunner().invoke(main, ["apply", str(path), "--database", database, *extra], env=env)
    return result.exit_code, result.output


def stored(database: str) -> dict[str, Client]:
    """The clients in the database, by id."""

    async def read() -> list[Client]:
        store = open_store(database)
        await store.open()
        try:
            return await store.list_clients()
        finally:
            await store.close()

    return {c.client_id: c for c in asyncio.run(read())}


def test_apply_creates_then_changes_nothing(
    database: str, declared: tuple[Path, dict[str, str]]
) -> None:
    """The first run creates both clients as declared; the second says "no changes"."""
    path, env = declared
    code, out = apply(database, path, env)
    assert code == 0, out
    assert "+ create billing" in out
    clients = stored(database)
    billing = clients["billing"]
    assert (billing.name, billing.token_ttl, billing.audiences) == (
        "Billing",
        600,
        ("https://api.example",),
    )
    assert billing.scopes == frozenset({"invoices:read", "invoices:write"})
    assert billing.secret_hash == hash_value(env["BILLING_SECRET"])
    assert (clients["edge"].name, clients["edge"].can_introspect) == ("edge", True)
    assert (billing.dpop_bound_access_tokens, clients["edge"].dpop_bound_access_tokens) == (
        False,
        True,
    )
    assert apply(database, path, env) == (0, "no changes\n")


def test_dry_run_prints_the_diff_and_changes_nothing(
    database: str, declared: tuple[Path, dict[str, str]]
) -> None:
    """--dry-run names each change (never a secret) and leaves the database as it was."""
    path, env = declared
    apply(database, path, env)
    path.write_text(path.read_text().replace("token_ttl = 600", "token_ttl = 60"))
    env = env | {"BILLING_SECRET": secrets.token_urlsafe(40)}
    code, out = apply(database, path, env, "--dry-run")
    assert code == 0
    assert "~ update billing (token_ttl: 600 -> 60)" in out
    assert "~ secret billing" in out
    assert env["BILLING_SECRET"] not in out
    assert "would make 2 change(s)" in out
    assert stored(database)["billing"].token_ttl == 600
    code, out = apply(database, path, env)
    assert stored(database)["billing"].token_ttl == 60
    assert stored(database)["billing"].secret_hash == hash_value(env["BILLING_SECRET"])


def test_prune_disables_what_the_file_does_not_name_and_apply_reenables(
    database: str, declared: tuple[Path, dict[str, str]]
) -> None:
    """--prune disables clients missing from the file; naming one again re-enables it."""
    path, env = declared
    apply(database, path, env)
    text = path.read_text()
    path.write_text(text.split('[[client]]\nclient_id = "edge"')[0])
    code, out = apply(database, path, env, "--prune")
    assert (code, "- disable edge" in out) == (0, True)
    assert stored(database)["edge"].disabled
    path.write_text(text)
    code, out = apply(database, path, env)
    assert "~ update edge (disabled: True -> False)" in out
    assert not stored(database)["edge"].disabled


def test_concurrent_applies_converge(
    database: str, declared: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    """Four applies of one file at once all succeed and leave exactly the declared clients."""
    path, env = declared
    procs = [
        subprocess.Popen([*TOKENGATE, "apply", str(path), "--database", database],
                         env={**os.environ, **env}, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
        for _ in range(4)
    ]  # fmt: skip
    for proc in procs:
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
    clients = stored(database)
    assert sorted(clients) == ["billing", "edge"]
    assert clients["billing"].secret_hash == hash_value(env["BILLING_SECRET"])
    assert apply(database, path, env) == (0, "no changes\n")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("[[client]]\nclient_id = 'a'\nsecret_env = 'S'\nsecret_file = 'f'\n",
                     "exactly one of secret_env or secret_file", id="two-secrets"),
        pytest.param("[[client]]\nclient_id = 'a'\n", "exactly one", id="no-secret"),
        pytest.param("[[client]]\nclient_id = 'a'\nsecret_env = 'UNSET_X'\n", "is not set",
                     id="unset-env"),
        pytest.param("[[client]]\nclient_id = 'a'\nsecret_env = 'SHORT'\n", "32 to 512",
                     id="short-secret"),
        pytest.param("[[client]]\nclient_id = 'a'\nsecret_env = 'LOW'\n", "high-entropy",
                     id="low-entropy"),
        pytest.param("[[client]]\nclient_id = 'a'\nsecret_file = '/nonexistent'\n",
                     "cannot read", id="missing-file"),
        pytest.param("[[client]]\nclient_id = 'a b'\nsecret_env = 'S'\n", "client_id must be",
                     id="bad-id"),
        pytest.param("[[client]]\nsecret_env = 'S'\n", "client_id must be", id="no-id"),
        pytest.param("[[client]]\nclient_id = 'a'\nsecret_env = 'S'\ncolour = 1\n",
                     "unknown keys", id="unknown-key"),
        pytest.param("[[client]]\nclient_id = 'a'\nsecret_env = 'S'\nscope = 3\n",
                     "scope must be", id="scope-type"),
        pytest.param("[[client]]\nclient_id = 'a'\nsecret_env = 'S'\naudiences = ['x']\n",
                     "absolute URIs", id="audience"),
        pytest.param("[[client]]\nclient_id = 'a'\nsecret_env = 'S'\ntoken_ttl = 0\n",
                     "token_ttl", id="ttl"),
        pytest.param("[[client]]\nclient_id = 'a'\nsecret_env = 'S'\nintrospect = 'y'\n",
                     "introspect must be", id="flag"),
        pytest.param("[[client]]\nclient_id = 'a'\nsecret_env = 'S'\n"
                     "dpop_bound_access_tokens = 1\n", "dpop_bound_access_tokens must be",
                     id="dpop-flag"),
        pytest.param("[[client]]\nclient_id = 'a'\nsecret_env = 'S'\n"
                     "[[client]]\nclient_id = 'a'\nsecret_env = 'S'\n", "appears twice",
                     id="duplicate"),
        pytest.param("[server]\nx = 1\n", "only [[client]] tables", id="other-table"),
        pytest.param("client = 3\n", "only [[client]] tables", id="client-not-array"),
        pytest.param("[[client]\n", "", id="not-toml"),
    ],
)  # fmt: skip
def test_bad_files_are_refused_and_change_nothing(tmp_path: Path, text: str, message: str) -> None:
    """Each problem is an error naming its client, and nothing is written."""
    (path := tmp_path / "bad.toml").write_text(text)
    database = f"sqlite:///{tmp_path / 'bad.db'}"
    env = {"S": secrets.token_urlsafe(40), "SHORT": "abc", "LOW": "ab" * 20}
    code, out = apply(database, path, env)
    assert code == 1
    assert message in out
    assert not (tmp_path / "bad.db").exists()


@pytest.mark.parametrize(
    "secret",
    [
        "a" * 40,
        "password" * 5,
        "0123456789" * 4,
        "Aa1!" * 10,
        "x" * 600,
        "abcdefghijklmnopqrstuvwx" * 3,
    ],
)
def test_weak_secrets_are_refused(secret: str) -> None:
    """Repetitive, small-alphabet, short-period or overlong secrets are refused."""
    with pytest.raises(Exception, match="secret"):
        check_secret(secret, "here")


def test_generated_secrets_pass() -> None:
    """What `secrets.token_urlsafe(32)` and our own client secrets look like is accepted."""
    assert check_secret(secrets.token_urlsafe(32), "here")
    for _ in range(200):  # a hex secret seldom holds all 16 digits: that must not matter
        assert check_secret(secrets.token_hex(32), "here")
